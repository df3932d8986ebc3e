"""Section `estimator`: the Feldman & Zhang subsample memorization estimator, end to end.

`python -m memobench.memorization --spec=mnist5k_partial20 --models=200
--epochs=10` as a function call (memorization.run): 200 models on 70% subsets,
all in one program, 10 epochs; wall time from loading the data to the written
scores, with the program's compile and training times. Skipped in --quick mode
(a smoke run has no time for 200 models) and when memobench.memorization does
not exist.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

from memobench.bench import library
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class EstimatorConfig:
  spec: str
  models: int                 # 0: skipped
  subset_fraction: float
  epochs: int
  # The same models' training again in slices of this many per vmapped slice
  # (train_group(members_per_slice=...)), against one vmap of all: models per
  # CPU-hour of each (None: not measured).
  members_per_slice: int | None = 1


FULL = EstimatorConfig(spec="mnist5k_partial20", models=200, subset_fraction=0.7, epochs=10)
QUICK = EstimatorConfig(spec="mnist5k_partial20", models=0, subset_fraction=0.7, epochs=0)


def run(ctx: Context, cfg: EstimatorConfig) -> Report:
  table = Table(f"Feldman & Zhang subsample estimator ({cfg.spec}, "
                f"{100 * cfg.subset_fraction:.0f}% subsets, all models in one program)",
                ["models", "epochs", "steps per model", "compile s", "train s",
                 "wall s (incl. data, scoring)", "model-steps/s"])
  if cfg.models <= 0:
    table.notes.append("Skipped in --quick mode.")
    return table
  if not library.has_memorization():
    table.notes.append("Skipped: memobench.memorization does not exist yet.")
    return table
  log(f"estimator: {cfg.models} models, {cfg.epochs} epochs")
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    summary = library.subsample_estimator(library.get_spec(cfg.spec), cfg.models,
                                          cfg.subset_fraction, cfg.epochs, workdir)
    wall = time.perf_counter() - t0
  timing, est = summary["timing"], summary["estimator"]
  model_steps = cfg.models * est["steps_per_model"]
  ctx.out["estimator"] = {"spec": cfg.spec, "models": cfg.models, "epochs": cfg.epochs,
                          "steps_per_model": est["steps_per_model"],
                          "compile_s": timing["ensemble_compile_s"],
                          "train_s": timing["ensemble_train_s"], "wall_s": wall}
  table.add(cfg.models, cfg.epochs, est["steps_per_model"], timing["ensemble_compile_s"],
            timing["ensemble_train_s"], wall, model_steps / timing["ensemble_train_s"])
  table.notes.append(f"`python -m memobench.memorization --spec={cfg.spec} "
                     f"--models={cfg.models} --epochs={cfg.epochs}` "
                     "as a function call (memorization.run); wall time from loading the "
                     "data to the written scores.")
  if cfg.members_per_slice is not None:
    rates = {}
    for label, slices in (("one vmap of all models", None),
                          (f"slices of {cfg.members_per_slice}", cfg.members_per_slice)):
      log(f"estimator: {cfg.models} models' training, {label}")
      r = library.estimator_models(library.get_spec(cfg.spec), cfg.models, cfg.epochs,
                                   cfg.subset_fraction, members_per_slice=slices)
      rates[label] = r
      ctx.out.setdefault("estimator_programs", []).append(dict(members_per_slice=slices, **r))
    rows = ", ".join(f"{label}: train {r['train_s']:.0f} s, {r['train_cpu_s']:.0f} CPU-s, "
                     f"{3600 * cfg.models / r['train_cpu_s']:,.0f} models per CPU-hour"
                     for label, r in rates.items())
    table.notes.append(f"The same {cfg.models} models' training alone "
                       f"(training.loop.train_group, evaluations included): {rows}.")
  return table


SECTION = Section(name="estimator", title="the Feldman & Zhang subsample estimator "
                  "(memobench.memorization), full runs only", quick=QUICK, full=FULL, run=run)
