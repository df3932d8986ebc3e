"""Section `breakdown`: where an MLP step's time goes, measured by ablation.

For mlp1x512 and mlp3x512: the step's matmuls alone (same shapes: forward,
weight gradients, input gradients except the data's, in one jitted call), the
batch gather alone, and memobench's whole fused step, against the f32 matmul
peak (section `peak`). What the step spends beyond its matmuls is the gather,
elementwise work and loop overhead; what the matmuls reach against the
square-matmul peak bounds the step's MFU. (No trace viewer is needed: each part
is timed on its own.)
"""

from __future__ import annotations

import dataclasses

from memobench.bench import library, mfu, peak, step_timing
from memobench.bench.common import Context, Report, Section, Table, log
from memobench.bench.timing import timed_after_warmup


@dataclasses.dataclass(frozen=True)
class BreakdownConfig:
  batch: int
  num_train: int              # resident synthetic training set (as the models section's)
  chunk_steps: int            # steps of the whole step's fused chunk (as the models section's)
  repeats: int
  budget_s: float


# The whole step is timed as the models table times it: same data, same chunk.
FULL = BreakdownConfig(batch=128, num_train=mfu.FULL.num_train, chunk_steps=mfu.FULL.chunk_steps,
                       repeats=5, budget_s=8.0)
QUICK = BreakdownConfig(batch=32, num_train=mfu.QUICK.num_train,
                        chunk_steps=mfu.QUICK.chunk_steps, repeats=2, budget_s=1.0)


def run(ctx: Context, cfg: BreakdownConfig) -> Report:
  """Ablation profile of one mlp1x512 / mlp3x512 step: matmuls alone, gather alone, whole step."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  batch, d = cfg.batch, 28 * 28 * 3
  rows = []
  for model, hidden in step_timing.MLP_HIDDEN.items():
    log(f"breakdown: {model} batch {batch}")
    dims = [d, *hidden, 10]
    key = jax.random.key(0)
    acts = [jax.random.normal(key, (batch, n)) for n in dims]
    weights = [jax.random.normal(key, (i, o)) for i, o in zip(dims[:-1], dims[1:])]
    def matmuls(acts, weights):
      outs = []
      for layer, w in enumerate(weights):
        outs.append(acts[layer] @ w)                  # forward
        outs.append(acts[layer].T @ acts[layer + 1])  # weight gradient
        if layer:
          outs.append(acts[layer + 1] @ w.T)          # input gradient (not of the data)
      return outs
    flops = sum(2 * batch * i * o * (3 if layer else 2)
                for layer, (i, o) in enumerate(zip(dims[:-1], dims[1:])))
    compiled = jax.jit(matmuls).lower(acts, weights).compile()
    t_mm = timed_after_warmup(lambda: jax.block_until_ready(compiled(acts, weights)),  # noqa: B023
                              cfg.repeats * 4, cfg.budget_s)
    data = step_timing.model_data(cfg.num_train, batch)
    x = jax.device_put(data.x_train)
    idx = jnp.arange(batch) * 7
    gather = jax.jit(lambda x, i: x[i]).lower(x, idx).compile()
    t_gather = timed_after_warmup(lambda: jax.block_until_ready(gather(x, idx)),  # noqa: B023
                                  cfg.repeats * 4, cfg.budget_s)
    step = step_timing.time_steps(library.bench_spec(model, batch), data, "scan",
                                  cfg.chunk_steps, cfg.repeats, cfg.budget_s)
    rows.append(dict(model=model, batch=batch, matmul_flops=flops, matmul_s=t_mm,
                     gather_s=t_gather, step_s=step.sec_per_step))
  ctx.out["breakdown"] = rows
  peak.remeasure(ctx)

  def table() -> Table:  # after every section: against the best-sampled peak
    f32_peak = peak.f32_peak(ctx.out)
    t = Table(f"Where an MLP step's time goes (batch {batch}, 28x28x3 inputs)",
              ["model", "matmuls alone ms", "their GFLOP/s", "% of f32 peak",
               "batch gather ms", "whole step ms", "matmul share of the step"])
    for r in rows:
      rate = r["matmul_flops"] / r["matmul_s"]
      t.add(r["model"], r["matmul_s"] * 1e3, rate / 1e9,
            f"{100 * rate / f32_peak:.0f}%" if f32_peak else None, r["gather_s"] * 1e3,
            r["step_s"] * 1e3, f"{100 * r['matmul_s'] / r['step_s']:.0f}%")
    t.notes.append("Matmuls alone: the step's matmuls with the same shapes (forward, weight "
                   "gradients, input gradients except the data's) in one jitted call. Whole "
                   "step: memobench's fused step (models table). What the step spends beyond "
                   "its matmuls is the gather, elementwise work (ReLU, softmax, SGD momentum) "
                   "and loop overhead; what the matmuls reach against the square-matmul peak "
                   "bounds the step's MFU.")
    return t
  return table


SECTION = Section(name="breakdown", title="where an MLP step's time goes: matmuls alone, "
                  "batch gather alone, whole step", quick=QUICK, full=FULL, run=run)
