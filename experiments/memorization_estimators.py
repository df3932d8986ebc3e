"""Which memorization score is right? Every estimator scored against exact leave-one-out.

Command (default: digits, label noise partial40, the first 500 training
examples, MLP 1x512, SGD lr 0.1 momentum 0.9 x0.99/epoch, batch 64, 20 epochs;
probe set m = 200, S = 8 LOO seeds, subsample estimator up to K = 256):

    python experiments/memorization_estimators.py            # -> /tmp/memobench/experiments/memorization_estimators/digits
    python experiments/memorization_estimators.py --dataset=mnist1d
    python experiments/memorization_estimators.py --quick    # smoke test, seconds

Runtime: 4m28s wall (348 CPU-s) for the default on the idle 2-core machine
(2026-12-02, nothing cached), inside the 10-minute target: exact LOO (S = 8,
4 cells of 402 vmapped runs) 213 s, the subsample estimator (256 models) 31 s,
the one-run proxies 4 s in all, scoring and figures the rest (summary.json
`cost.<estimator>.seconds`). By model-steps the default is 225,120 LOO +
25,600 subsample + ~1,000 other steps of a 38k-parameter MLP; mnist1d (40-d
inputs, batch 128, same --train_size) needs ~0.6x the FLOPs of digits (an
estimate from the shapes, not measured).

Measured (digits_partial40, first 500 training examples, 20 epochs, probe
m = 200 = 100 corrupted + 100 clean, S = 8 LOO seeds):
  ground truth: mem_LOO mean 0.23 (corrupted) vs 0.14 (clean); loss_LOO
  2.17 vs 0.35; split-half reliability (Spearman-Brown, averaged over all 35
  balanced splits) 0.89 [0.85, 0.91] for mem_LOO, 0.996 for loss_LOO; mean se
  of mem_LOO 0.059. The full runs get 59% of the probe set right on its
  training labels (corrupted labels are only partly memorized at this
  budget), so many corrupted examples have mem_LOO = 0: neither run fits them.

  estimator            Spearman  Spearman  Pearson  AUC vs    top-10%  model-
                       mem_LOO   loss_LOO  mem_LOO  corrupt.  overlap  steps
  fz_subsample (K=256)  0.84      0.38      0.89     0.62      0.60    25,600
  turnover_loss         0.10      0.81      0.03     0.96      0.00       140
  turnover_accuracy     0.19      0.42      0.17     0.61      0.11       140
  first_learned         0.06      0.75     -0.07     0.95      0.00       140
  stable_learned        0.15      0.81      0.25     0.94      0.04       140
  cumulative_accuracy   0.10      0.85      0.08     0.99      0.00       140
  forgetting            0.12      0.78     -0.17     0.92      0.00       140
  final_loss            0.06      0.83     -0.13     0.96      0.00       140
  el2n (epoch 2, 4 runs) 0.12     0.82      0.19     0.99      0.00        56
  grand (epoch 2, 4 runs) 0.16    0.80      0.18     0.98      0.00        56
  tracin                0.15      0.89      0.06     0.98      0.00       140

  FZ convergence, Spearman with mem_LOO: K = 8: 0.75, 16: 0.76, 32: 0.82,
  64: 0.81, 128: 0.83, 256: 0.84 (mean 95% half-width 0.61, 0.36, 0.21,
  0.13, 0.084, 0.056). Stopping rule (half-width <= 0.1): K = 128 (0.83).
  (With S = 6 the same table read 0.83 for the subsample estimator and
  0.06-0.18 for the proxies: the ranking is stable in S.)

The claim tested (the issue's premise; Feldman & Zhang 2020 Sec. 3 and
Jiang et al. 2021): cheap one-run proxies disagree with the subsample
estimator. Agrees: only the subsample estimator ranks exact LOO memorization
(rho 0.84, near the ground truth's own reliability, 0.89); every one-run
proxy ranks the LOO *loss* change (rho 0.75-0.89; turnover_accuracy 0.42)
and finds the planted label noise (AUC 0.92-0.99) but hardly ranks mem_LOO
(rho 0.06-0.19), because they score every hard example high whether or not
the run memorizes it, while mem_LOO is 0 for a corrupted example that
neither run fits. The subsample estimator is the worst corruption detector
(AUC 0.62) for the same reason. The ground truth's reliability bounds every
correlation with mem_LOO.

Ground truth (estimators/leave_one_out.py): for each of S seeds, one run on the
training set and, per probe example i, a run without i that is otherwise
identical (same init and batch order, i's slot weighted 0 in the loss); all
through training.loop.train_group, (m + 1) x (seeds per group) vmapped members
per program. mem_LOO(i) = mean_s [correct_i(with) - correct_i(without)] and
the loss form loss_LOO(i) = mean_s [loss_i(without) - loss_i(with)]. Its
precision: split-half reliability over seeds, Spearman-Brown corrected.

Estimators, on the same probe set (higher = more memorized for each):
  fz_subsample      Feldman & Zhang 2020 subsample estimator (estimators/subsample.py),
                    K models on 70% subsets, the same epochs; fz_convergence: the
                    first K of the 256 models for K in 8..256
  turnover_loss, turnover_accuracy   turn-over dropout self-influence (rate 0.5, one run)
  first_learned, stable_learned       epoch first / stably predicted right (never: last+1)
  cumulative_accuracy                 1 - the fraction of evaluations predicted right
  forgetting                          Toneva et al.'s forgetting score (never learned: max)
  final_loss                          the final per-example loss (one run)
  el2n, grand                         Paul et al. 2021, at --early_epoch, mean over
                                      --proxy_seeds runs
  tracin                              TracInCP self-influence over the per-epoch checkpoints
The one-run scores (estimators/proxies.py) come from the first of --proxy_seeds
vmapped runs evaluated every epoch; their seconds are that program's training
time prorated by model-steps (per model; for EL2N/GraNd the steps up to
--early_epoch, times the seeds), plus the score's own computation.

Each estimator: Spearman and Pearson correlation with both LOO forms (95%
intervals: bootstrap over probe examples), ROC AUC against the planted
corruption, and the overlap of its top 10% with the LOO top 10%.

Stopping rule for the subsample estimator: add models (doubling K) until the
mean over the probe set of the per-example 95% half-width 1.96 * mem_se
(Jeffreys se, estimators/subsample.py) is at most --halfwidth (0.1, a tenth of
the score's range); fz_stop_rule gives the K it picks and its Spearman.

Cells (experiments/driver.py; each a computed cell, resumed by its config hash):
loo_seeds<a>-<b> (a group of LOO seeds), subsample, proxies, turnover, and
table (scores.parquet: every per-example score on the probe set,
memobench.example_table, in cells/table/). Outputs in the workdir:
correlations.png (heatmap), compute.png (Spearman vs cost), summary.json.
`--print_config` lists the knobs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from experiments import driver, knobs
from experiments.cells import ComputedCell
from experiments.knobs import knob

K_GRID = (8, 16, 32, 64, 128, 256)
ESTIMATORS = ("fz_subsample", "turnover_loss", "turnover_accuracy", "first_learned",
              "stable_learned", "cumulative_accuracy", "forgetting", "final_loss", "el2n",
              "grand", "tracin")
PROXIES = ESTIMATORS[1:]


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset: the spec is <dataset>_<corruption>")
  corruption: str = knob("partial40", "label corruption (partialNN)")
  train_size: int = knob(500, "first N training examples", lo=1)
  epochs: int = knob(20, "epochs of every model", lo=1)
  probe: int = knob(200, "probe set size m", lo=2)
  seeds: int = knob(8, "exact-LOO training seeds (>= 2: the se and reliability need two)",
                    lo=2)
  models: int = knob(256, "the subsample estimator's largest K", lo=2)
  proxy_seeds: int = knob(4, "runs averaged for EL2N/GraNd", lo=1)
  early_epoch: int | None = knob(None, "epoch of EL2N/GraNd (none: a tenth of epochs, >= 1)",
                                 lo=1)
  seeds_per_group: int = knob(2, "LOO seeds per vmapped program ((m + 1) members each)", lo=1)
  halfwidth: float = knob(0.1, "the subsample stopping rule's target half-width", lo=1e-9)
  seed: int = knob(0, "corruption and probe set seed", lo=0, hi=2**32 - 1)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides (key=value)")
  quick: bool = False


QUICK = Config(train_size=128, epochs=3, probe=6, models=8, proxy_seeds=2, seeds=2,
               seeds_per_group=2, quick=True)


def early_epoch(config) -> int:
  return config.early_epoch if config.early_epoch is not None else max(1, config.epochs // 10)


def check(config: Config) -> None:
  if early_epoch(config) > config.epochs:
    raise knobs.KnobError(f"early_epoch={config.early_epoch} must be at most epochs="
                          f"{config.epochs}")
  if config.probe > config.train_size:
    raise knobs.KnobError(f"probe={config.probe} exceeds train_size={config.train_size}")


# --------------------------------------------------------------------------
# The task every cell trains on, and the cells
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Task:
  """What every cell's data depends on: the spec, its corruption seed, the probe set."""
  dataset: str
  corruption: str
  train_size: int
  epochs: int
  probe: int
  seed: int
  spec_overrides: tuple[str, ...]


def task_of(config: Config) -> Task:
  return Task(config.dataset, config.corruption, config.train_size, config.epochs,
              config.probe, config.seed, config.spec_overrides)


def spec_of(task: Task):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(
      catalogue.get(f"{task.dataset}_{task.corruption}"),
      [f"dataset.train_size={task.train_size}", "analysis.dynamics=false",
       "analysis.effective_rank=false", *task.spec_overrides])
  return workload.validate(spec)


def load_task(task: Task, data_dir: str | None):
  """(spec, dataset, corrupted data, probe indices) of the task."""
  from memobench import workload  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  spec = spec_of(task)
  dataset = datasets.load(spec.dataset, data_dir)
  data = workload.resolve(spec, dataset=dataset).corrupted_data(task.seed)
  probe = loo.select_probe(np.asarray(data.label_changed), task.probe, task.seed)
  return spec, dataset, data, probe


def _lists(arrays: dict[str, Any]) -> dict[str, Any]:
  """numpy values as JSON (lists, numbers) for a cell's record."""
  return {k: np.asarray(v).tolist() for k, v in arrays.items()}


@dataclasses.dataclass(frozen=True)
class LooCell:
  task: Task
  seeds: tuple[int, ...]  # 0-based LOO seed indices (keys loo.seed_keys: s + 1)


def compute_loo(config: LooCell, ctx) -> dict[str, Any]:
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  workload = loo.fixed_budget_workload(spec, config.task.epochs, dataset)
  keys = loo.seed_keys(config.task.seed, max(config.seeds) + 1)
  arrays = loo.train_seeds(workload, data, probe, [keys[s] for s in config.seeds],
                           ctx.vmap != "false")
  return {**_lists(arrays), "probe": probe.tolist(),
          "corrupted": np.asarray(data.label_changed)[probe].tolist(),
          "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class SubsampleCell:
  task: Task
  models: int


def compute_subsample(config: SubsampleCell, ctx) -> dict[str, Any]:
  """The K models; per K of the doubling grid (and all K), mem and mem_se on the probe set."""
  from memobench.estimators import subsample  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  ensemble_config = subsample.EnsembleConfig(models=config.models, epochs=config.task.epochs)
  workload = subsample.estimator_workload(spec, ensemble_config, dataset)
  ensemble = subsample.train_models(workload, data,
                                    subsample.model_keys(config.task.seed, config.models),
                                    ctx.vmap != "false")
  correct = ensemble.train_predictions == np.asarray(data.y_train)[None]
  by_k = {}
  for k in sorted({*[k for k in K_GRID if k <= config.models], config.models}):
    s = subsample.subsample_memorization(correct[:k], ensemble.in_subset[:k])
    by_k[str(k)] = _lists({"mem": s["mem"][probe], "mem_se": s["mem_se"][probe]})
  return {"by_k": by_k, "steps_per_model": int(workload.schedule.total_steps),
          "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class ProxyCell:
  task: Task
  proxy_seeds: int
  early_epoch: int


def _context(config, ctx):
  from memobench.estimators import base  # pylint: disable=import-outside-toplevel
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  options = {"examples": probe}
  if isinstance(config, ProxyCell):
    options.update(proxy_seeds=config.proxy_seeds, early_epoch=config.early_epoch)
  return base.RunContext(spec, dataset, data, config.task.seed, config.task.epochs, options,
                         vmapped=ctx.vmap != "false")


def compute_proxies(config: ProxyCell, ctx) -> dict[str, Any]:
  """--proxy_seeds runs evaluated every epoch: dynamics, final loss, EL2N/GraNd, TracIn."""
  from memobench.estimators import proxies  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  record = proxies.PROXY_RUNS.train(_context(config, ctx))
  return {**_lists(record.arrays), "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class TurnoverCell:
  task: Task


def compute_turnover(config: TurnoverCell, ctx) -> dict[str, Any]:
  from memobench.estimators import proxies  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  record = proxies.TURNOVER.train(_context(config, ctx))
  return {**_lists(record.arrays), "stage_s": time.perf_counter() - t0}


def loo_groups(config) -> list[tuple[int, ...]]:
  return [tuple(range(g, min(g + config.seeds_per_group, config.seeds)))
          for g in range(0, config.seeds, config.seeds_per_group)]


def loo_key(group: tuple[int, ...]) -> str:
  return f"loo_seeds{group[0] + 1}-{group[-1] + 1}"


@dataclasses.dataclass(frozen=True)
class TableCell:
  task: Task
  loo_keys: tuple[str, ...]
  models: int
  proxy_seeds: int
  early_epoch: int
  seeds: int


def compute_table(config: TableCell, ctx) -> dict[str, Any]:
  """Every per-example score on the probe set as rows of scores.parquet (in the cell's folder)."""
  from memobench import example_table, specs  # pylint: disable=import-outside-toplevel
  spec, _, data, probe = load_task(config.task, ctx.data_dir)
  records = {k: v.record for k, v in ctx.inputs.items()}
  truth, _ = ground_truth(records, config.loo_keys)
  scores, _ = estimator_scores(records, config.task.epochs, config.proxy_seeds, config.models)
  fz_se = np.asarray(records["subsample"]["by_k"][str(config.models)]["mem_se"], np.float64)
  table_config = {"spec": f"{config.task.dataset}_{config.task.corruption}",
                  "spec_hash": specs.spec_hash(spec), "epochs": config.task.epochs,
                  "probe": config.task.probe, "seeds": config.seeds, "seed": config.task.seed,
                  "models": config.models, "proxy_seeds": config.proxy_seeds,
                  "early_epoch": config.early_epoch, "train_size": config.task.train_size}
  x = np.asarray(data.x_train)[probe]
  original = np.asarray(data.y_train_original)[probe]
  keys = example_table.example_key(x, original)
  common = dict(dataset=spec.dataset.name, keys=keys, original_labels=original,
                labels=np.asarray(data.y_train)[probe],
                label_changed=np.asarray(data.label_changed)[probe], indices=probe,
                config=table_config)
  tables = [example_table.rows(estimator="loo.mem", scores=truth["mem"],
                               standard_errors=truth["mem_se"], **common),
            example_table.rows(estimator="loo.loss", scores=truth["loss"],
                               standard_errors=truth["loss_se"], **common)]
  for name, values in scores.items():
    tables.append(example_table.rows(estimator=f"estimators.{name}", scores=values,
                                     standard_errors=fz_se if name == "fz_subsample" else None,
                                     **common))
  table = example_table.concat(tables)
  example_table.write(os.path.join(ctx.folder, example_table.SCORES_FILE), table)
  return {"file": example_table.SCORES_FILE, "rows": int(len(table["score"]))}


def grid(config: Config) -> list[ComputedCell]:
  task = task_of(config)
  groups = loo_groups(config)
  early = early_epoch(config)
  cells = [ComputedCell(loo_key(g), compute_loo, LooCell(task, g)) for g in groups]
  cells += [ComputedCell("subsample", compute_subsample, SubsampleCell(task, config.models)),
            ComputedCell("proxies", compute_proxies, ProxyCell(task, config.proxy_seeds, early)),
            ComputedCell("turnover", compute_turnover, TurnoverCell(task))]
  needs = tuple(c.key for c in cells)
  cells.append(ComputedCell("table", compute_table,
                            TableCell(task, tuple(loo_key(g) for g in groups), config.models,
                                      config.proxy_seeds, early, config.seeds), needs=needs))
  return cells


# --------------------------------------------------------------------------
# Scoring (pure: records -> numbers)
# --------------------------------------------------------------------------


def ground_truth(records, loo_keys) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(mem_LOO and its loss form, the per-seed arrays) from the LOO cells' records."""
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  per_seed = {k: np.concatenate([np.asarray(records[g][k]) for g in loo_keys])
              for k in ("correct_with", "correct_without", "loss_with", "loss_without")}
  return loo.memorization(**per_seed), per_seed


def estimator_scores(records, epochs: int, proxy_seeds: int, models: int):
  """{estimator: (probe,) scores, higher = more memorized}; {estimator: (model_steps, seconds)}."""
  from memobench.estimators import base, proxies  # pylint: disable=import-outside-toplevel
  fz = records["subsample"]
  context = base.RunContext(None, None, None, 0, epochs, {"proxy_seeds": proxy_seeds})
  proxy_record = base.RunsRecord({k: np.asarray(v) for k, v in records["proxies"].items()}, 0,
                                 0.0)
  turn_record = base.RunsRecord({k: np.asarray(v) for k, v in records["turnover"].items()}, 0,
                                0.0)
  scores = {"fz_subsample": np.asarray(fz["by_k"][str(models)]["mem"], np.float64)}
  cost = {"fz_subsample": (models * int(fz["steps_per_model"]), float(fz["stage_s"]))}
  by_name = {e.name: e for e in proxies.ESTIMATORS}
  for name in PROXIES:
    estimator = by_name[name]
    record = turn_record if estimator.runs is proxies.TURNOVER else proxy_record
    s = estimator.from_runs(record, context)
    scores[name] = s.score
    cost[name] = (s.summary["cost"]["model_steps"], s.summary["cost"]["seconds"])
  return scores, cost


def fz_convergence(fz, truth, corrupted, config):
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  out, stop = {}, None
  k_steps = int(fz["steps_per_model"])
  for k in [k for k in K_GRID if k <= config.models] or [config.models]:
    mem = np.asarray(fz["by_k"][str(k)]["mem"], np.float64)
    se = np.asarray(fz["by_k"][str(k)]["mem_se"], np.float64)
    c = loo.compare(mem, truth, corrupted, seed=config.seed)
    halfwidth = float(np.nanmean(1.96 * se))
    out[str(k)] = {"spearman": c["spearman_mem"], "spearman_loss": c["spearman_loss"],
                   "pearson": c["pearson_mem"], "auc_vs_corruption": c["auc_vs_corruption"],
                   "examples_scored": int(np.isfinite(mem).sum()),
                   "mean_halfwidth95": halfwidth, "model_steps": k * k_steps,
                   "seconds": float(fz["stage_s"]) * k / config.models}
    if stop is None and halfwidth <= config.halfwidth:
      stop = k
  rule = {"rule": f"smallest K of the doubling grid whose mean per-example 95% half-width "
                  f"1.96 * mem_se over the probe set is <= {config.halfwidth}",
          "K": stop, "spearman": out[str(stop)]["spearman"]["mean"] if stop else None}
  return out, rule


def stat_over(values):
  from memobench import leaderboard  # pylint: disable=import-outside-toplevel
  return leaderboard.summarize(np.asarray(values, np.float64).tolist())


def summarize(config: Config, records: dict) -> dict:
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  from memobench.metrics import stats  # pylint: disable=import-outside-toplevel
  groups = [loo_key(g) for g in loo_groups(config)]
  truth, per_seed = ground_truth(records, groups)
  corrupted = np.asarray(records[groups[0]]["corrupted"], bool)
  spec = spec_of(task_of(config))
  scores, cost = estimator_scores(records, config.epochs, config.proxy_seeds, config.models)
  comparisons = {e: loo.compare(scores[e], truth, corrupted, seed=config.seed)
                 for e in ESTIMATORS}
  convergence, stop_rule = fz_convergence(records["subsample"], truth, corrupted, config)
  cost_json = {e: {"model_steps": cost[e][0], "seconds": cost[e][1]} for e in ESTIMATORS}
  cost_json["loo"] = {"model_steps": int(sum(int(records[g]["model_steps"]) for g in groups)),
                      "seconds": float(sum(float(records[g]["stage_s"]) for g in groups))}
  reliability = loo.split_half_reliability(
      np.asarray(per_seed["correct_with"], float) - np.asarray(per_seed["correct_without"],
                                                               float), seed=config.seed)
  reliability_loss = loo.split_half_reliability(
      per_seed["loss_without"] - per_seed["loss_with"], seed=config.seed)
  name = f"{config.dataset}_{config.corruption}"
  return {
      "experiment": "memorization_estimators",
      "config": {"spec": name, "spec_hash": specs.spec_hash(spec), "epochs": config.epochs,
                 "probe": config.probe, "seeds": config.seeds, "seed": config.seed,
                 "models": config.models, "proxy_seeds": config.proxy_seeds,
                 "early_epoch": early_epoch(config), "train_size": config.train_size,
                 "dataset": config.dataset, "corruption": config.corruption,
                 "model": spec.model.name, "batch_size": spec.budget.batch_size,
                 "quick": config.quick, "probe_corrupted": int(corrupted.sum())},
      "loo": {
          "reliability": reliability, "reliability_loss": reliability_loss,
          "mean_by_group": {"clean": stat_over(truth["mem"][~corrupted]),
                            "corrupted": stat_over(truth["mem"][corrupted])},
          "loss_mean_by_group": {"clean": stat_over(truth["loss"][~corrupted]),
                                 "corrupted": stat_over(truth["loss"][corrupted])},
          "mean_se": float(np.mean(truth["mem_se"])),
          "auc_vs_corruption": {"mem": stats.roc_auc(truth["mem"], corrupted),
                                "loss": stats.roc_auc(truth["loss"], corrupted)},
          "full_run_probe_accuracy": stat_over(per_seed["correct_with"].mean(1)),
      },
      "spearman_vs_loo": {e: comparisons[e]["spearman_mem"] for e in ESTIMATORS},
      "spearman_vs_loss_loo": {e: comparisons[e]["spearman_loss"] for e in ESTIMATORS},
      "pearson_vs_loo": {e: comparisons[e]["pearson_mem"] for e in ESTIMATORS},
      "pearson_vs_loss_loo": {e: comparisons[e]["pearson_loss"] for e in ESTIMATORS},
      "auc_vs_corruption": {e: comparisons[e]["auc_vs_corruption"] for e in ESTIMATORS},
      "top10_overlap": {e: comparisons[e]["top10_overlap"] for e in ESTIMATORS},
      "cost": cost_json,
      "fz_convergence": convergence, "fz_stop_rule": stop_rule,
      # The cells' compute seconds (the driver's process also loads and writes).
      "wall_s": float(sum(float(r["stage_s"]) for r in records.values() if "stage_s" in r)),
  }


# --------------------------------------------------------------------------
# Figures and the table
# --------------------------------------------------------------------------


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import plt  # pylint: disable=import-outside-toplevel
  cols = [("spearman_vs_loo", "Spearman\nmem_LOO"), ("spearman_vs_loss_loo", "Spearman\nloss_LOO"),
          ("pearson_vs_loo", "Pearson\nmem_LOO"), ("pearson_vs_loss_loo", "Pearson\nloss_LOO"),
          ("auc_vs_corruption", "AUC vs\ncorruption"), ("top10_overlap", "top-10%\noverlap")]
  names = list(ESTIMATORS)
  grid_values = np.full((len(names), len(cols)), np.nan)
  for r, name in enumerate(names):
    for c, (key, _) in enumerate(cols):
      v = summary[key][name]
      v = v["mean"] if isinstance(v, dict) else v
      grid_values[r, c] = np.nan if v is None else v
  fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(names) + 1.5))
  im = ax.imshow(grid_values, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
  for r in range(len(names)):
    for c in range(len(cols)):
      if np.isfinite(grid_values[r, c]):
        ax.text(c, r, f"{grid_values[r, c]:.2f}", ha="center", va="center", fontsize=8)
  ax.set_xticks(range(len(cols)), [c[1] for c in cols])
  ax.set_yticks(range(len(names)), names)
  ax.set_title(f"estimators vs exact leave-one-out ({config.dataset}, {config.corruption}, "
               f"m={config.probe}, S={config.seeds})")
  fig.colorbar(im, ax=ax, shrink=0.8)

  fig2, ax2 = plt.subplots(figsize=(6.5, 4.2))
  convergence = summary["fz_convergence"]
  ks = list(convergence)
  xs = [convergence[k]["model_steps"] for k in ks]
  ys = [convergence[k]["spearman"]["mean"] for k in ks]
  ax2.plot(xs, [np.nan if y is None else y for y in ys], "o-", color="k",
           label="FZ subsample, K = " + ", ".join(ks))
  for name in PROXIES:
    rho = summary["spearman_vs_loo"][name]["mean"]
    if rho is not None:
      ax2.scatter(summary["cost"][name]["model_steps"], rho, label=name, s=25)
  ax2.set_xscale("log")
  ax2.set_xlabel("cost (model-steps)")
  ax2.set_ylabel("Spearman with mem_LOO")
  ax2.axhline(0, color="grey", lw=0.5)
  ax2.legend(fontsize=7, loc="best")
  ax2.set_title("correlation with the ground truth vs compute")
  return {"correlations.png": fig, "compute.png": fig2}


def report(config: Config, summary: dict) -> str:
  del config
  lines = ["estimator            spearman(mem) spearman(loss) pearson(mem)  AUC   top10  "
           "model-steps  seconds"]
  fmt = lambda v: "  n/a" if v is None else f"{v:5.2f}"  # noqa: E731
  for e in ESTIMATORS:
    c = summary["cost"][e]
    lines.append(f"{e:20s} {fmt(summary['spearman_vs_loo'][e]['mean']):>13} "
                 f"{fmt(summary['spearman_vs_loss_loo'][e]['mean']):>14} "
                 f"{fmt(summary['pearson_vs_loo'][e]['mean']):>12} "
                 f"{fmt(summary['auc_vs_corruption'][e])} {fmt(summary['top10_overlap'][e])} "
                 f"{c['model_steps']:11d} {c['seconds']:8.1f}")
  rel = summary["loo"]["reliability"]["mean"]
  lines.append(f"LOO reliability (Spearman-Brown split-half): {fmt(rel)}; "
               "FZ convergence: " + ", ".join(
                   f"K={k}: {fmt(v['spearman']['mean'])}"
                   for k, v in summary["fz_convergence"].items()))
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(name="memorization_estimators", doc=__doc__, config=Config(),
                               quick=QUICK, grid=grid, summarize=summarize, plot=plot,
                               report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
