"""The accelerator measurements in one command: tables into a folder, a summary on stdout.

  python -m memobench.bench.accelerator --out_dir=/tmp/accel            # ~6-8 min on one GPU
  python -m memobench.bench.accelerator --out_dir=/tmp/accel --tiny     # CPU dry run, ~1 min

Everything issue 26 asks of an accelerator, measured in one process (so the
ratios are comparable) and in this order, each part under its own time budget
so that the whole call stays within `--budget_s` (default 480 s; a part that
runs out says so in its table rather than overrunning):

  peak       the device's f32 and bf16 matmul FLOP/s (peak.py), the MFU denominators
  models     memobench's train step per model (MLPs, small AlexNet, small Inception,
             WRN-28-1) at batch 128 and 512, float32 and bfloat16 (`model.dtype`),
             fused (K steps in one lax.fori_loop) and unfused (a Python loop of
             jitted steps): ms/step, images/s, MFU against the peak of its dtype
  cifar10    `--spec=cifar10_randpix` end to end (run.run_spec) on a CIFAR-10-shaped
             TFDS dataset of 50,000 + 10,000 generated 32x32x3 images
             (generated_tfds.py; CIFAR-10 itself cannot be downloaded there): time
             per epoch, time to fit (or the epochs it had, when it did not fit)
  estimator  the Feldman & Zhang subsample estimator on mnist5k: 1, 64 and 2,000
             models (Feldman & Zhang's MNIST demo trained 2,000 models "in a few
             hours" on one GPU), model-steps/s and models per hour
  seeds      `--seeds=32` of mnist5k_clean: one vmapped program against 32 runs
             one after another (run.run_seeds)

Each part writes <part>.md (a markdown table) into --out_dir, and results.json
holds every raw figure and the environment. Where a wheel memobench needs is
missing from an accelerator image, scripts/accelerator_wheels.sh fetches
Python 3.12 wheels to install with --no-deps (docs/BENCHMARKS.md, "The
accelerator command").
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Any, Callable

from absl import app, flags, logging

from memobench import cli
from memobench.bench import library, peak, step_timing
from memobench.bench.common import Table, log


@dataclasses.dataclass(frozen=True)
class AcceleratorConfig:
  models: tuple[str, ...]
  batches: tuple[int, ...]
  dtypes: tuple[str, ...]
  num_train: int               # resident synthetic training set of the models table
  chunk_steps: int             # steps per timed program (fused) or repeat (unfused)
  repeats: int
  step_budget_s: float         # one timing stops repeating after this long
  peak: peak.PeakConfig
  cifar_train: int             # generated images (CIFAR-10: 50,000 + 10,000)
  cifar_test: int
  cifar_spec: str
  cifar_overrides: tuple[str, ...]
  estimator_spec: str
  estimator_models: tuple[int, ...]
  estimator_epochs: int
  seeds_spec: str
  seeds: int
  seeds_overrides: tuple[str, ...]
  # Seconds each part may start measuring in, of the whole call's budget (fractions).
  shares: tuple[tuple[str, float], ...] = (("peak", 0.05), ("models", 0.4), ("cifar10", 0.2),
                                           ("estimator", 0.15), ("seeds", 0.2))


FULL = AcceleratorConfig(
    models=("mlp1x512", "mlp3x512", "alexnet", "inception", "wrn28_1"), batches=(128, 512),
    dtypes=("float32", "bfloat16"), num_train=50_000, chunk_steps=20, repeats=5,
    step_budget_s=3.0, peak=peak.FULL, cifar_train=50_000, cifar_test=10_000,
    cifar_spec="cifar10_randpix", cifar_overrides=("budget.max_epochs=60",),
    estimator_spec="mnist5k_partial20", estimator_models=(1, 64, 2000), estimator_epochs=10,
    seeds_spec="mnist5k_clean", seeds=32, seeds_overrides=())
# The CPU dry run of the suite: every part, tiny sizes.
TINY = AcceleratorConfig(
    models=("mlp1x512",), batches=(8,), dtypes=("float32", "bfloat16"),
    num_train=64, chunk_steps=2, repeats=1, step_budget_s=0.5,
    peak=dataclasses.replace(peak.QUICK, accelerator_matmul_sizes=None), cifar_train=96,
    cifar_test=32, cifar_spec="cifar10_randpix",
    cifar_overrides=("model.name=mlp1x512", "budget.batch_size=16", "budget.max_epochs=2",
                     "budget.eval_every_steps=6", "analysis.effective_rank=false"),
    estimator_spec="digits_partial20", estimator_models=(1, 3), estimator_epochs=1,
    seeds_spec="digits_clean", seeds=2,
    seeds_overrides=("budget.max_steps=22", "budget.eval_every_steps=11",
                     "analysis.effective_rank=false"))


class Budget:
  """The call's deadline, shared out: a part may start a measurement until its own deadline."""

  def __init__(self, total_s: float, shares: tuple[tuple[str, float], ...]):
    self.t0, self.total_s = time.perf_counter(), total_s
    self.ends, acc = {}, 0.0
    for name, share in shares:
      acc += share
      self.ends[name] = acc * total_s

  def left(self, part: str) -> float:
    return self.ends[part] - (time.perf_counter() - self.t0)


# --------------------------------------------------------------------------
# The parts
# --------------------------------------------------------------------------


def measure_peak(cfg: AcceleratorConfig, out: dict[str, Any], budget: Budget) -> Table:
  sizes = peak.matmul_sizes(cfg.peak)
  t = Table("Peak matmul throughput", ["dtype", *[f"n={n} GFLOP/s" for n in sizes],
                                       "peak GFLOP/s"])
  for dtype in ("float32", "bfloat16"):
    try:
      rates = [peak.matmul_flops(n, dtype, cfg.peak.repeats, cfg.peak.budget_s) for n in sizes]
    except Exception as e:  # pylint: disable=broad-except  (no bf16 dots on this backend)
      t.notes.append(f"{dtype}: not supported here ({type(e).__name__}).")
      continue
    out.setdefault("peak_flops", {})[dtype] = max(rates)
    t.add(dtype, *[r / 1e9 for r in rates], max(rates) / 1e9)
  del budget
  t.notes.append("One jitted n x n @ n x n product (2n^3 FLOPs); the peak is the best size. "
                 "On a GPU JAX's default matmul precision applies (TF32 where the device has it).")
  return t


def model_spec(model: str, batch: int, dtype: str):
  spec = library.bench_spec(model, batch)
  return dataclasses.replace(spec, model=dataclasses.replace(spec.model, dtype=dtype))


def measure_models(cfg: AcceleratorConfig, out: dict[str, Any], budget: Budget) -> Table:
  t = Table(f"memobench train step per model (28x28x3, resident training set of "
            f"{cfg.num_train:,})",
            ["model", "batch", "dtype", "fused ms/step", "unfused ms/step", "fused images/s",
             "fused / unfused", "GFLOP/step", "MFU (fused) vs peak of its dtype",
             "compile s (fused/unfused)"])
  peaks, skipped = out.get("peak_flops", {}), []
  rows = out.setdefault("models", [])
  for model in cfg.models:
    for batch in cfg.batches:
      for dtype in cfg.dtypes:
        if budget.left("models") <= 0:
          skipped.append(f"{model}/{batch}/{dtype}")
          continue
        log(f"accelerator models: {model} batch {batch} {dtype}")
        spec = model_spec(model, batch, dtype)
        data = step_timing.model_data(cfg.num_train, batch)
        timed = {mode: step_timing.time_steps(spec, data, mode, cfg.chunk_steps, cfg.repeats,
                                              cfg.step_budget_s) for mode in ("scan", "loop")}
        flops = timed["loop"].flops_per_step
        fused, unfused = timed["scan"].sec_per_step, timed["loop"].sec_per_step
        mfu = flops / fused / peaks[dtype] if flops and peaks.get(dtype) else None
        rows.append(dict(model=model, batch=batch, dtype=dtype, fused_s=fused,
                         unfused_s=unfused, flops_per_step=flops, mfu=mfu,
                         compile_s=[timed["scan"].compile_s, timed["loop"].compile_s]))
        t.add(model, batch, dtype, fused * 1e3, unfused * 1e3, batch / fused,
              f"{unfused / fused:.2f}x", flops / 1e9 if flops else None,
              f"{100 * mfu:.0f}%" if mfu else None,
              f"{timed['scan'].compile_s:.1f}/{timed['loop'].compile_s:.1f}")
  t.notes.append(f"Fused: {cfg.chunk_steps} steps in one lax.fori_loop (what the loop runs for "
                 "models it fuses); unfused: a Python loop of one jitted step. bfloat16 is "
                 "`model.dtype=bfloat16` (bf16 layers, float32 parameters, optimizer and loss). "
                 "FLOPs: XLA's cost analysis of the compiled step.")
  if skipped:
    t.notes.append("Not measured (the part's time budget was spent): " + ", ".join(skipped))
  return t


def measure_cifar10(cfg: AcceleratorConfig, out: dict[str, Any], budget: Budget,
                    data_dir: str) -> Table:
  from memobench.bench import generated_tfds  # pylint: disable=import-outside-toplevel
  from memobench.data import tfds_data  # pylint: disable=import-outside-toplevel
  t = Table(f"{cfg.cifar_spec} end to end on {cfg.cifar_train:,} + {cfg.cifar_test:,} "
            "generated 32x32x3 images",
            ["spec", "model", "epochs run", "steps to fit", "time to fit s", "time per epoch s",
             "compile s", "wall s", "final train acc", "data generation s"])
  t0 = time.perf_counter()
  if not tfds_data.builder("cifar10", data_dir).is_prepared():
    log(f"accelerator cifar10: writing {cfg.cifar_train + cfg.cifar_test:,} generated images")
    generated_tfds.write_prepared("cifar10", data_dir, cfg.cifar_train, cfg.cifar_test)
  gen_s = time.perf_counter() - t0
  spec, applied = library.with_overrides(library.get_spec(cfg.cifar_spec),
                                         list(cfg.cifar_overrides))
  if budget.left("cifar10") <= 0:
    t.notes.append("Not measured: the part's time budget was spent generating the data.")
    return t
  log(f"accelerator cifar10: {spec.name} ({', '.join(cfg.cifar_overrides)})")
  with tempfile.TemporaryDirectory() as workdir:
    result = library.run_spec(spec, workdir, applied, data_dir)
  timing, metrics = result["timing"], result["metrics"]
  epochs, steps = result["run"]["epochs"], result["run"]["steps"]
  # Training time (steps x batch / images per second) over the epochs trained.
  per_epoch = steps * spec.budget.batch_size / timing["images_per_sec"] / epochs
  row = dict(spec=spec.name, model=spec.model.name, epochs=epochs, steps=steps,
             steps_to_fit=metrics.get("steps_to_fit"), time_to_fit_s=timing.get("time_to_fit_s"),
             epoch_s=per_epoch, compile_s=timing.get("compile_s"), wall_s=timing.get("wall_s"),
             train_accuracy=metrics.get("train_accuracy"), generation_s=gen_s)
  out["cifar10"] = row
  t.add(spec.name, spec.model.name, f"{epochs:.1f}", row["steps_to_fit"] or "not fitted",
        row["time_to_fit_s"], per_epoch, row["compile_s"], row["wall_s"],
        row["train_accuracy"], gen_s)
  t.notes.append("run.run_spec (what `python -m memobench.main --spec=... --data_dir=...` "
                 "runs) with " + (", ".join(cfg.cifar_overrides) or "the spec's budget")
                 + "; random pixels (Zhang et al.'s randpix) on random labels of generated "
                 "images: the fitting time is that of noise, not of CIFAR-10. Time per epoch: "
                 "training time over epochs trained.")
  return t


def measure_estimator(cfg: AcceleratorConfig, out: dict[str, Any], budget: Budget) -> Table:
  t = Table(f"Feldman & Zhang subsample estimator on {cfg.estimator_spec} "
            f"({cfg.estimator_epochs} epochs, 70% subsets, all models in one program)",
            ["models", "steps per model", "compile s", "train s", "model-steps/s",
             "models per hour"])
  spec = library.get_spec(cfg.estimator_spec)
  for k in cfg.estimator_models:
    if budget.left("estimator") <= 0:
      t.notes.append(f"{k} models: not measured (the part's time budget was spent).")
      continue
    log(f"accelerator estimator: {k} models")
    r = library.estimator_models(spec, k, cfg.estimator_epochs)
    rate = k * r["steps_per_model"] / r["train_s"]
    out.setdefault("estimator", []).append(dict(models=k, **r, model_steps_per_s=rate))
    t.add(k, r["steps_per_model"], r["compile_s"], r["train_s"], rate,
          3600 * k / (r["train_s"] + r["compile_s"]))
  t.notes.append("The estimator's training (estimators/subsample.py: each model on its own "
                 "random 70% subset, its own initialisation and batch order) through "
                 "training.loop.train_group, every model in one vmapped program; train s is the "
                 "loop's training time, evaluations included. Target (issue 26): 2,000 models "
                 "in under 2 minutes.")
  return t


def measure_seeds(cfg: AcceleratorConfig, out: dict[str, Any], budget: Budget) -> Table:
  t = Table(f"--seeds={cfg.seeds} of {cfg.seeds_spec}: one vmapped program vs one run after "
            "another", ["mode", "wall s", "compile s", "steps to fit (first 8 seeds)"])
  spec, applied = library.with_overrides(library.get_spec(cfg.seeds_spec),
                                         list(cfg.seeds_overrides))
  seed_specs = [dataclasses.replace(spec, seed=s) for s in range(cfg.seeds)]
  walls = {}
  for mode in ("true", "false"):
    if budget.left("seeds") <= 0:
      t.notes.append(f"vmap={mode}: not measured (the part's time budget was spent).")
      continue
    log(f"accelerator seeds: {cfg.seeds} seeds, vmap={mode}")
    with tempfile.TemporaryDirectory() as root:
      t0 = time.perf_counter()
      results = library.run_seeds(seed_specs, [os.path.join(root, f"s{s}")
                                               for s in range(cfg.seeds)], applied, vmap=mode)
      walls[mode] = time.perf_counter() - t0
    compile_s = (results[0]["timing"]["compile_s"] if mode == "true"
                 else sum(r["timing"]["compile_s"] for r in results))
    fits = [r["metrics"]["steps_to_fit"] for r in results]
    out.setdefault("seeds", {})[mode] = dict(wall_s=walls[mode], compile_s=compile_s,
                                             steps_to_fit=fits)
    t.add("vmapped" if mode == "true" else "sequential", walls[mode], compile_s,
          ", ".join(str(f) for f in fits[:8]))
  if len(walls) == 2:
    out["seeds"]["speedup"] = walls["false"] / walls["true"]
    t.notes.append(f"vmapped / sequential speed-up: {walls['false'] / walls['true']:.2f}x "
                   "(run.run_seeds in-process: data, compilation, training, evaluation, result "
                   "files).")
  return t


PARTS: dict[str, Callable[..., Table]] = {
    "peak": measure_peak, "models": measure_models, "cifar10": measure_cifar10,
    "estimator": measure_estimator, "seeds": measure_seeds}


def summary(out: dict[str, Any]) -> list[str]:
  """The lines printed at the end: the headline figure of every part."""
  lines = [f"accelerator run on {out['environment']['backend']} "
           f"({out['environment']['device_kind']}), {out['wall_s']:.0f} s"]
  for dtype, rate in out.get("peak_flops", {}).items():
    lines.append(f"  peak {dtype}: {rate / 1e12:.2f} TFLOP/s")
  for m in out.get("models", []):
    mfu = f", MFU {100 * m['mfu']:.0f}%" if m["mfu"] else ""
    lines.append(f"  {m['model']} b{m['batch']} {m['dtype']}: {m['batch'] / m['fused_s']:,.0f} "
                 f"img/s fused ({m['unfused_s'] / m['fused_s']:.2f}x unfused){mfu}")
  c = out.get("cifar10")
  if c:
    fit = (f"fit at step {c['steps_to_fit']} in {c['time_to_fit_s']:.0f} s"
           if c["steps_to_fit"] else f"not fitted in {c['epochs']} epochs")
    lines.append(f"  {c['spec']}: {c['epoch_s']:.1f} s/epoch, {fit}")
  for e in out.get("estimator", []):
    lines.append(f"  estimator {e['models']} models: train {e['train_s']:.1f} s "
                 f"(+{e['compile_s']:.1f} s compile), {e['model_steps_per_s']:,.0f} model-steps/s")
  s = out.get("seeds", {})
  if "speedup" in s:
    lines.append(f"  --seeds: vmapped {s['true']['wall_s']:.1f} s vs sequential "
                 f"{s['false']['wall_s']:.1f} s ({s['speedup']:.2f}x)")
  return lines


def run(cfg: AcceleratorConfig, out_dir: str, data_dir: str, budget_s: float,
        parts: list[str]) -> dict[str, Any]:
  """Measures `parts` in order, writing <part>.md and results.json into out_dir."""
  t0 = time.perf_counter()
  budget = Budget(budget_s, cfg.shares)
  out: dict[str, Any] = {"environment": library.environment(), "config": dataclasses.asdict(cfg)}
  os.makedirs(out_dir, exist_ok=True)
  for name in parts:
    args = (cfg, out, budget) + ((data_dir,) if name == "cifar10" else ())
    table = PARTS[name](*args)
    library.write_text(os.path.join(out_dir, f"{name}.md"), table.markdown())
    out["wall_s"] = time.perf_counter() - t0
    library.write_json(os.path.join(out_dir, "results.json"), out)
  return out


_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the tables and results.json.")
_TINY = flags.DEFINE_boolean("tiny", False, "Tiny sizes: the CPU dry run.")
_BUDGET = flags.DEFINE_float("budget_s", 480.0, "Seconds for the whole call (shared by parts).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the generated CIFAR-10-shaped TFDS "
                                "dataset is written (reused when present); default: "
                                "<out_dir>/tfds.")
_PARTS = flags.DEFINE_list("parts", None, f"Parts to run (default: all): {','.join(PARTS)}.")


def main(argv):
  logging.set_verbosity(logging.WARNING)
  if len(argv) > 1:
    cli.fail("memobench.bench.accelerator", f"unexpected arguments: {' '.join(argv[1:])}", 2)
  if not _OUT_DIR.value:
    cli.fail("memobench.bench.accelerator", "--out_dir is required", 2)
  parts = _PARTS.value or list(PARTS)
  unknown = [p for p in parts if p not in PARTS]
  if unknown:
    cli.fail("memobench.bench.accelerator",
             f"--parts: unknown {', '.join(unknown)}; known: {', '.join(PARTS)}", 2)
  out = run(TINY if _TINY.value else FULL, _OUT_DIR.value,
            _DATA_DIR.value or os.path.join(_OUT_DIR.value, "tfds"), _BUDGET.value, parts)
  print("\n".join(summary(out)))
  print(f"tables: {', '.join(os.path.join(_OUT_DIR.value, p + '.md') for p in parts)}; "
        f"raw: {os.path.join(_OUT_DIR.value, 'results.json')}")
  sys.stdout.flush()


def entry():
  app.run(main, flags_parser=cli.flags_parser("memobench.bench.accelerator"))


if __name__ == "__main__":
  entry()
