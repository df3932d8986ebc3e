"""memobench's train step, timed as its loop runs it or in another fusion mode.

Shared by the sections that time the real step (models, breakdown, order,
torch, fusion): the step is memobench's own (train.make_steps: batch gathered
from the resident dataset, forward, backward, SGD momentum), on resident random
data shaped like Zhang et al.'s CIFAR-10 inputs (28x28x3), so that a section's
figures are memobench's and not a re-implementation's.

Fusion modes (`time_steps`):
  loop                 a Python loop of one jitted step, blocking every
                       programs._MAX_QUEUED_STEPS steps (the loop's unfused path)
  unrolled             K steps traced one after the other in one jit
  scan                 K steps in one lax.fori_loop, each chunk handing its epoch's batch
                       order to the next (steps.fused_steps_carrying_order, the fused path)
  scan_order_per_step  the same loop with every step computing the epoch's
                       batch order itself (the loop before the harness)
"""

from __future__ import annotations

import dataclasses
import functools
import time

from memobench.bench import library
from memobench.bench.common import BenchError
from memobench.bench.timing import timed_after_warmup

# The MLPs of Zhang et al. (hidden widths), which the breakdown and PyTorch
# sections rebuild layer by layer and the targets hold to the matmul peak.
MLP_HIDDEN = {"mlp1x512": (512,), "mlp3x512": (512, 512, 512)}
INPUT_SHAPE = (28, 28, 3)


@functools.lru_cache(maxsize=2)
def synthetic_data(input_shape: tuple[int, ...], num_train: int, num_classes: int = 10,
                   seed: int = 0):
  """Resident random data shaped like Zhang et al.'s CIFAR-10 inputs (28x28x3)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.RandomState(seed)
  x = rng.standard_normal((num_train, *input_shape)).astype(np.float32)
  y = rng.randint(0, num_classes, num_train).astype(np.int32)
  return library.clean_data(x, y, x[:256], y[:256], num_classes)


def model_data(num_train: int, batch: int):
  """The models' synthetic training set: `num_train` examples, at least 4 batches."""
  return synthetic_data(INPUT_SHAPE, max(num_train, 4 * batch))


@dataclasses.dataclass
class StepTiming:
  mode: str                 # loop | unrolled | scan | scan_order_per_step
  k: int                    # steps per timed program (per repeat for `loop`)
  sec_per_step: float
  compile_s: float
  flops_per_step: float | None = None  # XLA cost analysis of the compiled step (loop mode)


def compiled_flops(compiled) -> float | None:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per computation
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def step_flops(spec, data) -> float | None:
  """FLOPs of one memobench train step, from XLA's cost analysis of the compiled step."""
  import jax  # pylint: disable=import-outside-toplevel
  steps, data, state = library.prepared_steps(spec, data)
  return compiled_flops(jax.jit(steps.train_step).lower(state, data).compile())


def time_steps(spec, data, mode: str, k: int, repeats: int, budget_s: float) -> StepTiming:
  """Times memobench's train step run `k` at a time in one of the fusion modes.

  Every mode computes the epoch's batch order once per epoch, as memobench's
  loop does, except `scan_order_per_step`: the step computing it itself (the
  loop before the harness showed its cost).
  """
  import jax  # pylint: disable=import-outside-toplevel
  steps, data, state = library.prepared_steps(spec, data)
  spe = steps.schedule.steps_per_epoch
  t0 = time.perf_counter()
  if mode == "loop":  # as the loop's unfused path
    compiled = jax.jit(steps.train_step, donate_argnums=0).lower(
        state, data, steps.epoch_order(0)).compile()
    order_fn = jax.jit(steps.epoch_order)
    block_every = library.max_queued_steps()
    counter = [0]
    def run(state):
      for i in range(k):
        if i == 0 or counter[0] % spe == 0:
          order = order_fn(counter[0] // spe)
        state = compiled(state, data, order)
        counter[0] += 1
        if (i + 1) % block_every == 0:
          jax.block_until_ready(state.step)
      return state
  elif mode == "scan":  # as the loop's fused path: chunks hand the epoch's order on
    chunk = library.fused_chunk(steps, k)
    compiled = chunk.lower(state, data, steps.epoch_order(0), True).compile()
    carried = {"order": steps.epoch_order(0), "epoch": 0, "step": 0}
    def run(state):
      step = carried["step"]
      valid = carried["epoch"] == step // spe
      state, carried["order"] = compiled(state, data, carried["order"], valid)
      carried["step"], carried["epoch"] = step + k, (step + k) // spe
      return state
  else:
    def unrolled(state, data):
      order = steps.epoch_order(state.step // spe)
      for i in range(k):
        if i:
          order = jax.lax.cond(state.step % spe == 0,
                               lambda s=state: steps.epoch_order(s.step // spe),
                               lambda o=order: o)
        state = steps.train_step(state, data, order)
      return state
    def scan_order_per_step(state, data):
      return jax.lax.fori_loop(0, k, lambda _, s: steps.train_step(s, data), state)
    fns = {"unrolled": unrolled, "scan_order_per_step": scan_order_per_step}
    if mode not in fns:
      raise BenchError(f"unknown fusion mode {mode!r}")
    compiled = jax.jit(fns[mode], donate_argnums=0).lower(state, data).compile()
    run = lambda state: compiled(state, data)  # noqa: E731
  compile_s = time.perf_counter() - t0
  flops = compiled_flops(compiled) if mode == "loop" else None
  holder = [state]
  def timed():
    holder[0] = jax.block_until_ready(run(holder[0]))
  return StepTiming(mode, k, timed_after_warmup(timed, repeats, budget_s) / k, compile_s, flops)


def memobench_mode(model: str) -> str:
  """The fusion memobench's loop uses for `model` on this backend (train.uses_fused_steps)."""
  return "scan" if library.uses_fused_steps(library.bench_spec(model, 1)) else "loop"


def is_convolutional(model: str) -> bool:
  return library.has_convolutions(model)
