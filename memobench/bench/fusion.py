"""Section `fusion`: step fusion per model on this backend, and what memobench chose.

Per model, memobench's train step run K at a time three ways: a Python loop of
jitted steps (blocking every 16 steps, memobench's CPU rendezvous guard), K
steps unrolled in one jit, and K steps in one lax.fori_loop (as
train.fused_steps fuses), against the mode train.uses_fused_steps picks here.
Convolutions inside a CPU loop body run ~10x slower or worse (DESIGN.md and
docs/BENCHMARKS.md, "CNN step fusion"), so a convolutional model's fused loop is
timed only when ~10x its Python loop fits the budget, and once.
"""

from __future__ import annotations

import dataclasses

from memobench.bench import library, mfu, step_timing
from memobench.bench.common import Context, Report, Section, Table, log

MODES = ("loop", "unrolled", "scan")


@dataclasses.dataclass(frozen=True)
class FusionConfig:
  mlp_batch: int
  mlp_k: int                  # steps per program of an MLP
  conv_batch: int
  conv_k: int                 # ... and of a convolutional model
  scan_budget_s: float        # a conv model's (slow) lax.scan is timed only within this
  num_train: int              # resident training set (as the models section's)
  repeats: int
  budget_s: float


FULL = FusionConfig(mlp_batch=128, mlp_k=8, conv_batch=8, conv_k=2, scan_budget_s=40.0,
                    num_train=mfu.FULL.num_train, repeats=5, budget_s=8.0)
QUICK = FusionConfig(mlp_batch=32, mlp_k=2, conv_batch=8, conv_k=2, scan_budget_s=20.0,
                     num_train=mfu.QUICK.num_train, repeats=2, budget_s=1.0)


def run(ctx: Context, cfg: FusionConfig) -> Report:
  table = Table("Step fusion per model (K steps per program)",
                ["model", "batch", "K", "python loop ms/step", "unrolled ms/step",
                 "lax.scan ms/step", "fastest", "memobench uses",
                 "compile s (loop/unrolled/scan)"])
  skipped = []
  for model in ctx.models:
    conv = step_timing.is_convolutional(model)
    batch, k = (cfg.conv_batch, cfg.conv_k) if conv else (cfg.mlp_batch, cfg.mlp_k)
    spec, data = library.bench_spec(model, batch), step_timing.model_data(cfg.num_train, batch)
    timings = {}
    for mode in MODES:
      # Convolutions in a CPU loop body run ~10x slower (DESIGN.md): time the scan
      # only when ~10x the Python loop fits the budget, once.
      if (conv and mode == "scan" and
          10 * k * timings["loop"].sec_per_step > cfg.scan_budget_s):
        skipped.append(f"{model} (est. {10 * k * timings['loop'].sec_per_step:.0f} s)")
        continue
      log(f"fusion: {model} {mode} x{k}")
      timings[mode] = step_timing.time_steps(spec, data, mode, k, 1 if conv else cfg.repeats,
                                             cfg.budget_s)
    fastest = min(timings, key=lambda m: timings[m].sec_per_step)
    used = step_timing.memobench_mode(model)
    ctx.out.setdefault("fusion", []).append(dict(
        model=model, batch=batch, k=k, fastest=fastest, memobench=used,
        **{f"{m}_sec_per_step": t.sec_per_step for m, t in timings.items()},
        **{f"{m}_compile_s": t.compile_s for m, t in timings.items()}))
    table.add(model, batch, k,
              *[timings[m].sec_per_step * 1e3 if m in timings else None for m in MODES],
              fastest, used,
              "/".join(f"{timings[m].compile_s:.1f}" if m in timings else "-" for m in MODES))
  table.notes.append("The Python loop blocks every 16 steps (memobench's CPU rendezvous "
                     "guard); `lax.scan` is a lax.fori_loop of the step, as memobench fuses; "
                     "`unrolled` is K steps traced one after the other in one jit. Each "
                     "epoch's batch order is computed once in every mode. Convolutional "
                     "models: one timed run (after a warm-up when fast enough).")
  if skipped:
    table.notes.append("lax.scan not timed (10x the Python loop, as measured for small CNNs "
                       "on CPU, would exceed the harness budget): " + ", ".join(skipped) + ".")
  return table


SECTION = Section(name="fusion", title="step fusion per model: Python loop, unrolled jit, "
                  "lax.fori_loop", quick=QUICK, full=FULL, run=run)
