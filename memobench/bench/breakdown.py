"""Section `breakdown`: where an MLP step's time goes, measured by ablation.

For mlp1x512 and mlp3x512: the step's matmuls alone (same shapes: forward,
weight gradients, input gradients except the data's, in one jitted call), the
batch gather alone, and memobench's whole fused step, against the f32 matmul
peak (section `peak`). What the step spends beyond its matmuls is the gather,
elementwise work and loop overhead; what the matmuls reach against the
square-matmul peak bounds the step's MFU. (No trace viewer is needed: each part
is timed on its own.) A second table profiles memobench's fused mlp1x512 step
with JAX's profiler: the time of every HLO operation XLA:CPU ran (its fastest
call, times its calls per step), so that what is not a matmul is named.
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
  profile_chunks: int = 6     # fused chunks traced by the profiler (0: no profile table)


# The whole step is timed as the models table times it: same data, same chunk.
FULL = BreakdownConfig(batch=128, num_train=mfu.FULL.num_train, chunk_steps=mfu.FULL.chunk_steps,
                       repeats=5, budget_s=8.0)
QUICK = BreakdownConfig(batch=32, num_train=mfu.QUICK.num_train,
                        chunk_steps=mfu.QUICK.chunk_steps, repeats=2, budget_s=1.0,
                        profile_chunks=1)


def profile_ops(spec, data, chunk_steps: int, chunks: int) -> list[tuple[str, float, int]]:
  """(HLO op, its fastest call in seconds, calls per step) of the fused step, from a trace.

  The loop's fused chunk traced by jax.profiler for `chunks` calls; each
  operation's fastest call is its cost without interference (a shared machine
  slows some calls). An Eigen matmul (XLA:CPU's `dot`) hands part of its work to
  a thread pool the trace does not show, so its entry is a lower bound.
  """
  # pylint: disable=import-outside-toplevel
  import collections
  import glob
  import tempfile

  import jax
  steps, data, state = library.prepared_steps(spec, data)
  compiled = library.fused_chunk(steps, chunk_steps).lower(
      state, data, steps.epoch_order(0), True).compile()
  order = steps.epoch_order(0)
  state, order = jax.block_until_ready(compiled(state, data, order, True))
  durations = collections.defaultdict(list)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      for _ in range(chunks):
        state, order = jax.block_until_ready(compiled(state, data, order, True))
    (path,) = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
    profile = jax.profiler.ProfileData.from_file(path)
  for plane in profile.planes:
    for line in plane.lines:
      if not line.name.startswith("tf_XLA"):  # XLA's executor threads, not Python's
        continue
      for event in line.events:
        if not event.name.startswith(("ThunkExecutor", "Threadpool", "SlinkyThreadPool",
                                      "end:", "while")):
          durations[event.name].append(event.duration_ns / 1e9)
  per_step = chunks * chunk_steps
  return sorted(((name, min(d), round(len(d) / per_step, 3)) for name, d in durations.items()),
                key=lambda r: -r[1] * r[2])


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
  profile = []
  if cfg.profile_chunks:
    log(f"breakdown: profiling the mlp1x512 step (batch {batch})")
    profile = profile_ops(library.bench_spec("mlp1x512", batch),
                          step_timing.model_data(cfg.num_train, batch), cfg.chunk_steps,
                          cfg.profile_chunks)
    ctx.out["profile"] = [dict(op=n, min_s=t, calls_per_step=c) for n, t, c in profile]
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
    if not profile:
      return t
    whole = next(r["step_s"] for r in rows if r["model"] == "mlp1x512")
    shown = [p for p in profile if p[1] * p[2] >= 0.005 * whole][:14]
    p = Table(f"Profile of the mlp1x512 step (batch {batch}, jax.profiler, fastest call of "
              "each HLO operation)", ["HLO operation", "calls per step", "fastest call us",
                                      "us per step", "share of the whole step"])
    for name, seconds, calls in shown:
      p.add(name, calls, seconds * 1e6, seconds * calls * 1e6,
            f"{100 * seconds * calls / whole:.0f}%")
    traced = sum(s_ * c for _, s_, c in profile)
    p.notes.append(
        f"Whole step {whole * 1e3:.2f} ms (table above); the operations shown are those over "
        f"0.5% of it; all traced operations add up to {traced * 1e3:.2f} ms. Names are XLA's: "
        "`ynn_fusion*` run in YNNPACK (the forward matmuls, the bias-gradient reductions), "
        "`dot*` in Eigen (the weight gradients, x^T dh, whose operand is transposed; an Eigen "
        "dot's work on its thread pool is not traced, so its entry is a lower bound and the "
        "rest of the step is largely it), `multiply_add_fusion*` the SGD-momentum update "
        "(momentum, then parameters: two passes over each weight), `gather*` the batch "
        "gather. Reproduce: memobench.bench.breakdown.profile_ops.")
    return [t, p]
  return table


SECTION = Section(name="breakdown", title="where an MLP step's time goes: matmuls alone, "
                  "batch gather alone, whole step", quick=QUICK, full=FULL, run=run)
