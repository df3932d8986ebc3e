"""Section `models`: memobench's train step per model and batch size, images/s and MFU.

Per model and batch size: memobench's train step as its loop runs it (a fused
`lax.fori_loop` chunk, or a Python loop of jitted steps where
train.uses_fused_steps says so), images/s, model-FLOPs utilisation and compile
time, on a CIFAR-10-sized resident training set (50,000 x 28x28x3). FLOPs per
step come from XLA's cost analysis of the compiled single train step (forward,
backward and optimizer update); MFU is their rate against the f32 matmul peak
(section `peak`), sampled again after each model so that a busy moment of the
machine does not inflate it.
"""

from __future__ import annotations

import dataclasses

from memobench.bench import library, peak, step_timing
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class ModelsConfig:
  num_train: int              # resident synthetic training set
  mlp_batches: tuple[int, ...]
  conv_batches: tuple[int, ...]
  # Steps of one timed repeat (a fused chunk has this many steps, as memobench's
  # loop fuses eval_every_steps steps).
  chunk_steps: int
  conv_chunk_steps: int
  repeats: int
  budget_s: float             # a measurement stops repeating after this long


FULL = ModelsConfig(num_train=50_000, mlp_batches=(32, 128, 512), conv_batches=(32,),
                    chunk_steps=32, conv_chunk_steps=2, repeats=5, budget_s=8.0)
QUICK = ModelsConfig(num_train=256, mlp_batches=(32,), conv_batches=(8,), chunk_steps=4,
                     conv_chunk_steps=2, repeats=2, budget_s=1.0)


def run(ctx: Context, cfg: ModelsConfig) -> Report:
  out = ctx.out
  out["num_train"] = cfg.num_train
  out.setdefault("models", [])
  for model in ctx.models:
    conv = step_timing.is_convolutional(model)
    mode = step_timing.memobench_mode(model)
    for batch in (cfg.conv_batches if conv else cfg.mlp_batches):
      log(f"models: {model} batch {batch} ({mode})")
      spec = library.bench_spec(model, batch)
      data = step_timing.model_data(cfg.num_train, batch)
      k = cfg.conv_chunk_steps if conv else cfg.chunk_steps
      t = step_timing.time_steps(spec, data, mode, k, cfg.repeats, cfg.budget_s)
      flops = t.flops_per_step or step_timing.step_flops(spec, data)
      out["models"].append(dict(
          model=model, batch=batch, mode=mode, k=k, sec_per_step=t.sec_per_step,
          images_per_s=batch / t.sec_per_step, flops_per_step=flops, compile_s=t.compile_s))
    peak.remeasure(ctx)
  return lambda: table(ctx, cfg)


def table(ctx: Context, cfg: ModelsConfig) -> Table:
  """The models table; MFU against the final (best-sampled) f32 peak."""
  out = ctx.out
  f32_peak = peak.f32_peak(out)
  t = Table(f"memobench train step per model (28x28x3 inputs, SGD momentum, resident "
            f"training set of {cfg.num_train:,})",
            ["model", "batch", "fusion", "ms/step", "images/s", "GFLOP/step",
             "GFLOP/s", "MFU vs f32 peak", "compile s"])
  for m in out.get("models", []):
    flops = m["flops_per_step"]
    rate = flops / m["sec_per_step"] if flops else None
    m["mfu"] = rate / f32_peak if rate and f32_peak else None  # read by the targets table
    t.add(m["model"], m["batch"], f"{m['mode']} x{m['k']}", m["sec_per_step"] * 1e3,
          m["images_per_s"], flops / 1e9 if flops else None, rate / 1e9 if rate else None,
          f"{100 * m['mfu']:.0f}%" if m["mfu"] else None, m["compile_s"])
  t.notes.append(
      "FLOPs: XLA's cost analysis of the compiled single train step (forward, backward, "
      "SGD-momentum update, batch gather); MFU = FLOP/s / measured f32 matmul peak. "
      "`fusion` is what memobench's loop runs on this backend (`scan xK`: K steps in one "
      "lax.fori_loop program; `loop xK`: a Python loop of jitted steps). Compile s: "
      "lowering + XLA compilation of that program.")
  if ctx.skipped_models:
    t.notes.append(f"Not registered in memobench.models at measurement time, so "
                   f"skipped: {', '.join(ctx.skipped_models)}.")
  return t


SECTION = Section(name="models", title="memobench's train step per model: images/s, MFU, "
                  "compile time", quick=QUICK, full=FULL, run=run)
