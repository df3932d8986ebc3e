"""Section `population`: models per CPU-hour of the estimator population, end to end.

`python -m memobench.memorization --design=balanced` as a function call
(memorization.run): K models in one vmapped program, every estimator of the
table scored from their outputs. For each configuration: the training
program's wall and CPU seconds (all threads) and compile seconds, the whole
call's wall and CPU seconds (data, compile, training, outputs, scoring,
files), and from them models per CPU-hour and per wall-hour. The published
anchors the note compares with are GPU figures of other models and data:
Jiang et al.'s C-score MNIST demo (>= 900 models per V100-hour) and ML Privacy
Meter's reference models with hlb-CIFAR10 (~100 models per GPU-hour). Skipped
in --quick mode (tests/test_population.py trains populations end to end).
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time

from memobench.bench import library
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class PopulationCase:
  spec: str
  overrides: tuple[str, ...]
  models: int
  epochs: int


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
  cases: tuple[PopulationCase, ...]


# The estimator benchmark's digits population (experiments/memorization_estimators.py:
# 500 examples, 100 epochs, K = 128), and an MNIST one like the C-score demo's data
# (mnist5k's 4,000 training images, 10 epochs).
FULL = PopulationConfig(cases=(
    PopulationCase("digits_partial40", ("dataset.train_size=500", "budget.batch_size=64"),
                   models=128, epochs=100),
    PopulationCase("mnist5k_partial20", (), models=64, epochs=10),
))
QUICK = PopulationConfig(cases=())


def _cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def run(ctx: Context, cfg: PopulationConfig) -> Report:
  table = Table("Estimator population (balanced design, all models in one program, every "
                "estimator scored)",
                ["spec", "models", "epochs", "steps per model", "compile s", "train s",
                 "train CPU-s", "models / CPU-hour (training)", "call wall s",
                 "call CPU-s", "models / CPU-hour (end to end)",
                 "model-epochs / CPU-hour (end to end)", "models / wall-hour (end to end)"])
  if not cfg.cases:
    table.notes.append("Skipped in --quick mode.")
    return table
  rows = []
  for case in cfg.cases:
    spec, _ = library.with_overrides(library.get_spec(case.spec), list(case.overrides))
    log(f"population: {case.spec}, {case.models} models, {case.epochs} epochs")
    with tempfile.TemporaryDirectory() as workdir:
      t0, c0 = time.perf_counter(), _cpu_s()
      summary = library.population_estimator(spec, case.models, case.epochs, workdir)
      wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    timing = summary["timing"]
    train_cpu = timing["ensemble_train_cpu_s"]
    row = {"spec": case.spec, "overrides": list(case.overrides), "models": case.models,
           "epochs": case.epochs, "steps_per_model": summary["estimator"]["steps_per_model"],
           "compile_s": timing["ensemble_compile_s"], "train_s": timing["ensemble_train_s"],
           "train_cpu_s": train_cpu, "call_wall_s": wall, "call_cpu_s": cpu,
           "models_per_cpu_hour_training": case.models * 3600 / max(train_cpu, 1e-9),
           "models_per_cpu_hour": case.models * 3600 / max(cpu, 1e-9),
           "model_epochs_per_cpu_hour": case.models * case.epochs * 3600 / max(cpu, 1e-9),
           "models_per_wall_hour": case.models * 3600 / max(wall, 1e-9),
           "estimators": sorted(k for k in summary["estimators"] if k != "skipped")}
    rows.append(row)
    table.add(case.spec, case.models, case.epochs, row["steps_per_model"], row["compile_s"],
              row["train_s"], train_cpu, row["models_per_cpu_hour_training"], wall, cpu,
              row["models_per_cpu_hour"], row["model_epochs_per_cpu_hour"],
              row["models_per_wall_hour"])
  ctx.out["population"] = rows
  table.notes.append(
      "`python -m memobench.memorization --design=balanced --models=K --epochs=E` as a "
      "function call; CPU-s are this process's (all threads, resource.getrusage). Published "
      "anchors, on GPUs and other models: Jiang et al.'s C-score MNIST demo >= 900 models per "
      "V100-hour; ML Privacy Meter with hlb-CIFAR10 ~100 models per GPU-hour. They are not "
      "the same work per model: compare per model-epoch and per FLOP, not per model.")
  return table


SECTION = Section(name="population", title="the estimator population (memobench.memorization "
                  "--design=balanced): models per CPU-hour, full runs only", quick=QUICK,
                  full=FULL, run=run)
