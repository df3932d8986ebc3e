"""Which memorization score is right? Every estimator against exact leave-one-out, in the fit regime.

    python experiments/memorization_estimators.py            # -> /tmp/memobench/experiments/memorization_estimators
    python experiments/memorization_estimators.py --datasets=digits --epochs=100
    python experiments/memorization_estimators.py --quick    # smoke test

Default: digits and mnist1d, partial40 labels, the first 500 training examples, MLP 1x512, SGD
lr 0.1 momentum 0.9 x0.99/epoch, batch 64, 100 (digits) / 40 (mnist1d) epochs; probe m = 200
(100 corrupted), S = 8 LOO seeds, K = 128 balanced models.
Runtime: 7m20s wall, 576 CPU-s (449 user + 127 system) at load 0.2-1.6 (2026-12-04, nice 5,
alone); nothing cut. Exact LOO is 1,575,840 of the 1,702,000 model-steps; populations 89,600 /
35,840.

Papers: Feldman & Zhang 2020 (Sec. 2-3): memorization is defined for an algorithm whose models
fit their training set; there a mislabelled example has mem close to 1, a typical one low; their
subsample estimator measures it. Jiang et al. 2021, Paul et al. 2021, Toneva et al. 2019, Pruthi
et al. 2020 offer one-run proxies; Carlini et al. 2022 (LiRA) and cleanlab's confident learning
score the same kind of population. The regime: every run trains one fixed budget (no fit stop,
so a run with i and its run without i train exactly as long); each run's accuracy on its own
training set is recorded, one below 0.99 is censored (counted, listed, never dropped).
Definitions: docs/METRICS.md ("Exact leave-one-out memorization and the estimator benchmark").

Measured. Fit: LOO with-runs 8/8 on both datasets (digits 0.990-1.000 each), without-runs
1524/1600 (digits; 76 censored, min 0.988) and 1600/1600 (mnist1d); populations 128/128 each.
mem_LOO (pairs whose two runs fit): digits corrupted 0.956 vs clean 0.289 (gap 0.667 +- 0.045;
AUC 0.87; reliability 0.985); mnist1d 0.899 vs 0.824 (gap 0.075 +- 0.040, AUC 0.56, reliability
0.93: its 500-example models test at 0.21, so clean examples are memorized too). Spearman with
mem_LOO (wtd: population-weighted, the track's score; corr./clean: within each group; ceil.:
sqrt(r_LOO r_estimator), mean over datasets):
                          digits                     mnist1d             mean
  estimator          wtd  pooled corr. clean   wtd  pooled corr. clean   wtd  ceil.
  fz_mem             0.91  0.90  0.45  0.87   0.77  0.77  0.78  0.76   0.84  0.97
  cscore             0.91  0.89  0.29  0.87   0.77  0.77  0.78  0.76   0.84  0.97
  confident_learning 0.89  0.84  0.13  0.86   0.76  0.75  0.73  0.76   0.82  0.97
  lira_online        0.91  0.91  0.55  0.81   0.68  0.68  0.69  0.67   0.79  0.90
  lira_offline       0.90  0.90  0.39  0.80   0.68  0.69  0.69  0.67   0.79  0.90
  tracin             0.85  0.81 -0.07  0.81   0.51  0.51  0.50  0.50   0.68  0.92
  el2n               0.82  0.79  0.00  0.69   0.51  0.50  0.46  0.54   0.66  0.81
  cumulative_acc.    0.78  0.76 -0.07  0.56   0.54  0.54  0.57  0.51   0.66  0.88
  final_loss         0.73  0.69 -0.11  0.71   0.58  0.56  0.49  0.61   0.66  0.92
  grand              0.82  0.80  0.14  0.69   0.48  0.47  0.40  0.53   0.65  0.81
  stable_learned     0.77  0.75 -0.09  0.59   0.43  0.45  0.53  0.38   0.60  0.80
  turnover_loss      0.69  0.71  0.05  0.36   0.36  0.36  0.32  0.33   0.52  0.84
  first_learned      0.61  0.64 -0.09  0.17   0.39  0.39  0.36  0.36   0.50  0.79
  forgetting         0.78  0.75 -0.07  0.68   0.13  0.14  0.21  0.08   0.45  0.65
  turnover_accuracy  0.37  0.39   n/a  0.25   0.12  0.11   n/a  0.14   0.25  0.32
  fz_max_influence   0.11  0.06 -0.01  0.37   0.10  0.09  0.10  0.15   0.11  0.71
Cost per dataset: population estimators 89,600 / 35,840 model-steps (K = 128 shared; 21 s /
14 s); one-run proxies 700 / 280 (EL2N, GraNd 280 / 112). fz_mem by K (wtd): digits 0.91-0.92
at K = 16-128; mnist1d 0.65, 0.71, 0.77, 0.77. LiRA's pooled attack: AUC 0.97 / 0.92 (online /
offline) on digits, 1.00 / 0.99 on mnist1d. Fit-gated proxies equal the ungated ones: these runs
fit nearly every probe example (the fit indicator alone: 0.01 on digits, constant on mnist1d).

Agreement (verdicts computed by `judge` from the summary). Mislabelled examples memorized by
models that fit: partly (mem near 1 for the corrupted group on both datasets; the gap to clean
examples resolved on digits only: mnist1d's models do not generalize; a second dataset where
they do, e.g. an mnist5k subset at ~10x the LOO cost here, would decide it). The subsample
estimator beats every one-run proxy: agrees (beyond two bootstrap se on both). The previous
benchmark's under-fitted run (20 epochs, 24% of corrupted probe examples fit) put every proxy
at 0.06-0.19 pooled; fitted, they reach 0.61-0.85 (digits), but within the corrupted group,
where mem_LOO is near 1 with little spread, every one-run proxy is at -0.11 to 0.14 while the
population estimators keep 0.13-0.55 (digits).

Cells (experiments/driver.py, resumed by config hash), per dataset d: d_loo_seeds<a>-<b>,
d_population (outputs in cells/d_population/population.npz: `python -m memobench.memorization
--outputs` scores them), d_proxies, d_turnover, d_table (scores.parquet: every per-example score
on the probe set). Outputs: correlations.png, compute.png, summary.json; `--print_config`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from experiments import driver, knobs, summaries, verdicts
from experiments.cells import ComputedCell
from experiments.knobs import knob

FIT = 0.99
NEAR_ONE = 0.8  # "mem close to 1" (Feldman & Zhang's mislabelled examples), read as >= this
POPULATION = ("fz_mem", "cscore", "fz_max_influence", "lira_online", "lira_offline",
              "confident_learning")
PROXIES = ("turnover_loss", "turnover_accuracy", "first_learned", "stable_learned",
           "cumulative_accuracy", "forgetting", "final_loss", "el2n", "grand", "tracin")
ESTIMATORS = POPULATION + PROXIES
# One-run proxies of the shared proxy runs (their run's fit is known): gated by it.
GATED = ("first_learned", "stable_learned", "cumulative_accuracy", "forgetting", "final_loss",
         "tracin")
FORMS = ("pooled", "corrupted", "clean", "weighted")


@dataclasses.dataclass(frozen=True)
class Config:
  datasets: tuple[str, ...] = knob(("digits", "mnist1d"), "catalogue datasets")
  epochs: tuple[int, ...] = knob((100, 40), "epochs of every model, one per dataset (enough "
                                 "for the models to fit)", lo=1)
  corruption: str = knob("partial40", "label corruption (partialNN)")
  train_size: int = knob(500, "first N training examples", lo=1)
  batch_size: int = knob(64, "batch size of every model", lo=1)
  probe: int = knob(200, "probe set size m (half corrupted)", lo=2)
  seeds: int = knob(8, "exact-LOO training seeds (>= 2: the se and reliability need two)", lo=2)
  models: int = knob(128, "the population's K", lo=4)
  block: int = knob(16, "the balanced design's block of models", lo=2)
  proxy_seeds: int = knob(4, "proxy runs (EL2N/GraNd average them; one-run scores use run 0)",
                          lo=2)
  turnover_runs: int = knob(2, "turn-over runs (the second: test-retest reliability)", lo=1)
  early_epoch: int | None = knob(None, "epoch of EL2N/GraNd (none: a tenth of the epochs)", lo=1)
  seeds_per_group: int = knob(2, "LOO seeds per vmapped program ((m + 1) members each)", lo=1)
  seed: int = knob(0, "corruption and probe set seed", lo=0, hi=2**32 - 1)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides (key=value)")
  quick: bool = False


QUICK = Config(datasets=("digits",), epochs=(3,), train_size=128, probe=6, seeds=2, models=16,
               block=8, proxy_seeds=2, quick=True)


def check(config: Config) -> None:
  if len(config.epochs) != len(config.datasets):
    raise knobs.KnobError(f"epochs has {len(config.epochs)} values for "
                          f"{len(config.datasets)} datasets (one each)")
  for epochs in config.epochs:
    if config.early_epoch is not None and config.early_epoch > epochs:
      raise knobs.KnobError(f"early_epoch={config.early_epoch} exceeds epochs={epochs}")
  if config.probe > config.train_size:
    raise knobs.KnobError(f"probe={config.probe} exceeds train_size={config.train_size}")
  if len(set(config.datasets)) != len(config.datasets):
    raise knobs.KnobError("datasets: each at most once")


# --------------------------------------------------------------------------
# The task of each dataset, and its cells
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Task:
  """What every cell of one dataset depends on: the spec, its seed, budget and probe set."""
  dataset: str
  corruption: str
  train_size: int
  batch_size: int
  epochs: int
  probe: int
  seed: int
  spec_overrides: tuple[str, ...]


def tasks(config: Config) -> list[Task]:
  return [Task(d, config.corruption, config.train_size, config.batch_size, e, config.probe,
               config.seed, config.spec_overrides)
          for d, e in zip(config.datasets, config.epochs)]


def spec_of(task: Task):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(
      catalogue.get(f"{task.dataset}_{task.corruption}"),
      [f"dataset.train_size={task.train_size}", f"budget.batch_size={task.batch_size}",
       "analysis.dynamics=false", "analysis.effective_rank=false", *task.spec_overrides])
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
  changed = np.asarray(data.label_changed)
  return {**_lists(arrays), "probe": probe.tolist(), "corrupted": changed[probe].tolist(),
          "noise_fraction": float(changed.mean()), "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class PopulationCell:
  task: Task
  models: int
  block: int


def compute_population(config: PopulationCell, ctx) -> dict[str, Any]:
  """The population, every population estimator on the probe set, its halves and prefixes."""
  from memobench import estimators  # pylint: disable=import-outside-toplevel
  from memobench.estimators import base, population, runner, subsample  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  pconfig = population.PopulationConfig(models=config.models, design="balanced",
                                        block=config.block, epochs=config.task.epochs,
                                        evaluations=min(10, config.task.epochs))
  pop = population.train(spec, pconfig, dataset, data, config.task.seed, log=ctx.log)
  population.save(os.path.join(ctx.folder, population.FILE), pop)
  train_s = time.perf_counter() - t0
  outputs = pop.outputs()
  table = tuple(estimators.population_estimators())

  def on_probe(out: base.Outputs) -> dict[str, Any]:
    scored = runner.score_population(out, table, ctx.log)
    return {"scores": {k: _lists({"score": s.score[probe], "se": s.se[probe]})
                       for k, s in scored.scores.items()},
            "summaries": {k: {n: v for n, v in s.summary.items()
                              if n not in ("test_example_of_max",)}
                          for k, s in scored.scores.items()},
            "seconds": scored.seconds, "skipped": scored.skipped}

  def rows(out: base.Outputs, keep: slice) -> base.Outputs:
    """The sub-population of models `keep` (a half: whole blocks, so still balanced)."""
    return dataclasses.replace(out, **{
        name: getattr(out, name)[keep] for name in ("inclusion", *base.OUTPUTS)
        if getattr(out, name) is not None})

  full = on_probe(outputs)
  half = config.models // 2
  halves = [on_probe(rows(outputs, slice(0, half)))["scores"],
            on_probe(rows(outputs, slice(half, config.models)))["scores"]]
  prefixes, k = {}, config.block
  while k <= config.models:
    s = subsample.subsample_memorization(outputs.correct[:k], outputs.inclusion[:k])
    prefixes[str(k)] = _lists({"mem": s["mem"][probe], "mem_se": s["mem_se"][probe]})
    k *= 2
  return {**full, "halves": halves, "prefixes": prefixes, "fit": pop.fit_summary(),
          "own_train_accuracy": pop.arrays["own_train_accuracy"].tolist(),
          "held_out_per_example": int((~outputs.inclusion[:, 0]).sum()),
          "model_steps": int(config.models * int(pop.arrays["steps_per_model"])),
          "steps_per_model": int(pop.arrays["steps_per_model"]), "train_s": train_s,
          "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class RunsCell:
  task: Task
  shared: str                 # proxies.PROXY_RUNS or TURNOVER, by name
  proxy_seeds: int
  early_epoch: int
  turnover_runs: int


def compute_runs(config: RunsCell, ctx) -> dict[str, Any]:
  from memobench.estimators import base, proxies  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  context = base.RunContext(spec, dataset, data, config.task.seed, config.task.epochs,
                            {"examples": probe, "proxy_seeds": config.proxy_seeds,
                             "early_epoch": config.early_epoch,
                             "turnover_runs": config.turnover_runs},
                            vmapped=ctx.vmap != "false")
  shared = {r.name: r for r in (proxies.PROXY_RUNS, proxies.TURNOVER)}[config.shared]
  record = shared.train(context)
  return {**_lists(record.arrays), "model_steps": record.model_steps,
          "stage_s": time.perf_counter() - t0}


@dataclasses.dataclass(frozen=True)
class TableCell:
  task: Task
  loo_keys: tuple[str, ...]
  prefix: str
  settings: tuple[tuple[str, Any], ...]


def compute_table(config: TableCell, ctx) -> dict[str, Any]:
  """Every per-example score on the probe set as scores.parquet in the cell's folder."""
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  spec, dataset, data, probe = load_task(config.task, ctx.data_dir)
  records = {k[len(config.prefix):]: v.record for k, v in ctx.inputs.items()}
  loo_keys = [k[len(config.prefix):] for k in config.loo_keys]
  truth, _ = ground_truth(records, loo_keys)
  scores = estimator_scores(records, config.task, dict(config.settings))
  common = dict(**probe_columns(dataset, data, probe), dataset=spec.dataset.name,
                config=dict(config.settings))
  tables = [example_table.rows(estimator="loo.mem", scores=truth["mem"],
                               standard_errors=truth["mem_se"], **common),
            example_table.rows(estimator="loo.loss", scores=truth["loss"],
                               standard_errors=truth["loss_se"], **common)]
  for name, (values, se, _) in scores.items():
    tables.append(example_table.rows(estimator=f"estimators.{name}", scores=values,
                                     standard_errors=se, **common))
  table = example_table.concat(tables)
  example_table.write(os.path.join(ctx.folder, example_table.SCORES_FILE), table)
  return {"file": example_table.SCORES_FILE, "rows": int(len(table["score"]))}


def probe_columns(dataset, data, probe: np.ndarray) -> dict[str, Any]:
  """The probe examples' key and label columns. Keys hash the clean inputs, never the
  corrupted ones, so under randpix or shufpix rows still join other runs' (issue 27 item 9)."""
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  original = np.asarray(data.y_train_original)
  return dict(**example_table.dataset_columns(dataset, original, indices=probe),
              original_labels=original[probe], labels=np.asarray(data.y_train)[probe],
              label_changed=np.asarray(data.label_changed)[probe])


def loo_groups(config) -> list[tuple[int, ...]]:
  return [tuple(range(g, min(g + config.seeds_per_group, config.seeds)))
          for g in range(0, config.seeds, config.seeds_per_group)]


def early_epoch(config: Config, task: Task) -> int:
  return config.early_epoch if config.early_epoch is not None else max(1, task.epochs // 10)


def settings(config: Config, task: Task) -> dict[str, Any]:
  """What the scores of one dataset depend on beyond its task (a table's config column)."""
  return {"models": config.models, "block": config.block, "proxy_seeds": config.proxy_seeds,
          "early_epoch": early_epoch(config, task), "seeds": config.seeds,
          "turnover_runs": config.turnover_runs, "spec": f"{task.dataset}_{task.corruption}",
          "epochs": task.epochs, "probe": task.probe, "seed": task.seed,
          "train_size": task.train_size}


def grid(config: Config) -> list[ComputedCell]:
  cells = []
  for task in tasks(config):
    p = f"{task.dataset}_"
    early = early_epoch(config, task)
    mine = [ComputedCell(f"{p}loo_seeds{g[0] + 1}-{g[-1] + 1}", compute_loo, LooCell(task, g))
            for g in loo_groups(config)]
    loo_keys = tuple(c.key for c in mine)
    mine += [ComputedCell(f"{p}population", compute_population,
                          PopulationCell(task, config.models, config.block)),
             ComputedCell(f"{p}proxies", compute_runs,
                          RunsCell(task, "proxy_runs", config.proxy_seeds, early, 1)),
             ComputedCell(f"{p}turnover", compute_runs,
                          RunsCell(task, "turnover_run", 1, 1, config.turnover_runs))]
    mine.append(ComputedCell(
        f"{p}table", compute_table,
        TableCell(task, loo_keys, p, tuple(sorted(settings(config, task).items()))),
        needs=tuple(c.key for c in mine)))
    cells += mine
  return cells


# --------------------------------------------------------------------------
# Scoring (pure: records -> numbers)
# --------------------------------------------------------------------------


def ground_truth(records, loo_keys):
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  per_seed = {k: np.concatenate([np.asarray(records[g][k], np.float64) for g in loo_keys])
              for k in ("correct_with", "correct_without", "loss_with", "loss_without",
                        "train_accuracy_with", "train_accuracy_without")}
  truth = loo.memorization(*(per_seed[k] for k in ("correct_with", "correct_without",
                                                   "loss_with", "loss_without")))
  return truth, per_seed


def _runs_context(task: Task, s: dict[str, Any], **options):
  from memobench.estimators import base  # pylint: disable=import-outside-toplevel
  return base.RunContext(None, None, None, task.seed, task.epochs,
                         {"proxy_seeds": s["proxy_seeds"], **options})


def _record(records, key):
  from memobench.estimators import base  # pylint: disable=import-outside-toplevel
  return base.RunsRecord({k: np.asarray(v) for k, v in records[key].items()}, 0, 0.0)


def estimator_scores(records, task: Task, s: dict[str, Any], **options):
  """{estimator: (probe scores as recorded, se, (model_steps, seconds))} for one dataset."""
  from memobench import estimators  # pylint: disable=import-outside-toplevel
  from memobench.estimators import proxies  # pylint: disable=import-outside-toplevel
  pop = records["population"]
  out = {}
  for name in POPULATION:
    if name in pop["scores"]:
      out[name] = (np.asarray(pop["scores"][name]["score"], np.float64),
                   np.asarray(pop["scores"][name]["se"], np.float64),
                   (pop["model_steps"], pop["train_s"] + pop["seconds"][name]))
  context = _runs_context(task, s, **options)
  for name in PROXIES:
    estimator = estimators.get(name)
    key = "turnover" if estimator.runs is proxies.TURNOVER else "proxies"
    got = estimator.from_runs(_record(records, key), context)
    out[name] = (got.score, got.se, (got.summary["cost"]["model_steps"],
                                     got.summary["cost"]["seconds"]))
  return out


def oriented(name: str, values: np.ndarray) -> np.ndarray:
  from memobench import estimators  # pylint: disable=import-outside-toplevel
  return estimators.get(name).sign * np.asarray(values, np.float64)


def reliabilities(records, task: Task, s: dict[str, Any]) -> dict[str, Any]:
  """Each estimator's own reliability (module docstring)."""
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  out = {}
  first, second = records["population"]["halves"]
  for name in POPULATION:
    if name in first:
      out[name] = loo.half_reliability(first[name]["score"], second[name]["score"], halves=2)
  runs = s["proxy_seeds"]
  a = estimator_scores(records, task, s, run=0, runs=tuple(range(runs // 2)))
  b = estimator_scores(records, task, s, run=1, runs=tuple(range(runs // 2, runs)))
  for name in PROXIES:
    if name in ("turnover_loss", "turnover_accuracy") and s["turnover_runs"] < 2:
      out[name] = {"r": None, "reliability": None, "replicates": 1}
      continue
    averaged = name in ("el2n", "grand")
    out[name] = loo.half_reliability(a[name][0], b[name][0], halves=2 if averaged else 1)
  return out


def dataset_summary(config: Config, task: Task, records: dict[str, Any]) -> dict[str, Any]:
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.estimators import leave_one_out as loo  # pylint: disable=import-outside-toplevel
  from memobench.metrics import stats  # pylint: disable=import-outside-toplevel
  s = settings(config, task)
  loo_keys = [k for k in records if k.startswith("loo_seeds")]
  truth, per_seed = ground_truth(records, loo_keys)
  first = records[loo_keys[0]]
  corrupted, noise = np.asarray(first["corrupted"], bool), float(first["noise_fraction"])
  diff = per_seed["correct_with"] - per_seed["correct_without"]
  both_fit = ((per_seed["train_accuracy_with"] >= FIT)[:, None]
              & (per_seed["train_accuracy_without"] >= FIT))
  with np.errstate(invalid="ignore"):
    fitted = np.where(both_fit, diff, 0).sum(0) / both_fit.sum(0)
  reliability = loo.split_half_reliability(diff, seed=task.seed)
  r_truth = reliability["mean"]
  scores = estimator_scores(records, task, s)
  rel = reliabilities(records, task, s)
  table = {}
  for name, (values, _, cost) in scores.items():
    table[name] = {**loo.agreement(oriented(name, values), truth, corrupted, noise, task.seed),
                   "cost": {"model_steps": int(cost[0]), "seconds": float(cost[1])},
                   "reliability": rel.get(name), "ceiling": loo.attenuation_ceiling(
                       r_truth, (rel.get(name) or {}).get("reliability"))}
  proxy = records["proxies"]
  fits = np.asarray(proxy["dyn_stable_learned_step"])[0] >= 0  # run 0 right at the end
  gated = {name: loo.group_correlations(loo.fit_gated(oriented(name, scores[name][0]), fits),
                                        truth["mem"], corrupted, noise, seed=task.seed)["spearman"]
           for name in GATED}
  gated["one_run_fit"] = loo.group_correlations(fits.astype(float), truth["mem"], corrupted,
                                                noise, seed=task.seed)["spearman"]
  prefixes = {k: loo.group_correlations(oriented("fz_mem", v["mem"]), truth["mem"], corrupted,
                                        noise, bootstrap=0, seed=task.seed)["spearman"]
              for k, v in records["population"]["prefixes"].items()}
  return {
      "task": {**s, "spec_hash": specs.spec_hash(spec_of(task)), "noise_fraction": noise,
               "probe_corrupted": int(corrupted.sum())},
      "loo": {
          "fit": loo.fit_record(per_seed["train_accuracy_with"],
                                per_seed["train_accuracy_without"], per_seed["correct_with"],
                                corrupted, FIT),
          "reliability": reliability,
          "mean_by_group": {"clean": summaries.summarize(truth["mem"][~corrupted].tolist()),
                            "corrupted": summaries.summarize(truth["mem"][corrupted].tolist())},
          # mem_LOO over the (seed, example) pairs whose two runs both fit (Feldman & Zhang's
          # definition is for models that fit); an example with no such pair is left out.
          "mean_by_group_fitted_pairs": {
              "clean": summaries.summarize(fitted[~corrupted][np.isfinite(fitted[~corrupted])]
                                           .tolist()),
              "corrupted": summaries.summarize(fitted[corrupted][np.isfinite(fitted[corrupted])]
                                               .tolist())},
          "loss_mean_by_group": {
              "clean": summaries.summarize(truth["loss"][~corrupted].tolist()),
              "corrupted": summaries.summarize(truth["loss"][corrupted].tolist())},
          "auc_vs_corruption": stats.roc_auc(truth["mem"], corrupted),
          "model_steps": int(sum(int(records[k]["model_steps"]) for k in loo_keys)),
          "seconds": float(sum(float(records[k]["stage_s"]) for k in loo_keys))},
      "population": {"fit": records["population"]["fit"],
                     "held_out_per_example": records["population"]["held_out_per_example"],
                     "skipped": records["population"]["skipped"],
                     "lira_pooled": {n: records["population"]["summaries"][n]["pooled"]
                                     for n in ("lira_online", "lira_offline")
                                     if n in records["population"]["summaries"]},
                     "fz_mem_by_models": prefixes},
      "estimators": table, "fit_gated": gated,
  }


def _mean_cell(cells: list[dict[str, Any]]) -> dict[str, Any]:
  """The mean over datasets of correlation cells: {mean, std (of the mean), ci95, n}."""
  means = [c["mean"] for c in cells]
  if any(m is None for m in means):
    return {"mean": None, "std": None, "ci95": None, "n": 0}
  stds = [c["std"] or 0.0 for c in cells]
  mean, std = float(np.mean(means)), float(np.sqrt(np.sum(np.square(stds))) / len(stds))
  return {"mean": mean, "std": std,
          "ci95": [max(-1.0, mean - 1.96 * std), min(1.0, mean + 1.96 * std)],
          "n": int(sum(c["n"] for c in cells))}


def summarize(config: Config, records: dict) -> dict:
  per = {}
  for task in tasks(config):
    p = f"{task.dataset}_"
    per[task.dataset] = dataset_summary(
        config, task, {k[len(p):]: v for k, v in records.items() if k.startswith(p)})
  ds = list(per)
  across = {form: {e: _mean_cell([per[d]["estimators"][e]["spearman"][form] for d in ds])
                   for e in ESTIMATORS if all(e in per[d]["estimators"] for d in ds)}
            for form in FORMS}
  est = list(across["weighted"])
  summary = {
      "experiment": "memorization_estimators", "schema_version": 2, "quick": config.quick,
      "dataset": "+".join(ds), "seeds": config.seeds,
      "config": {"datasets": ds, "corruption": config.corruption,
                 "train_size": config.train_size, "batch_size": config.batch_size,
                 "epochs": dict(zip(ds, config.epochs)), "probe": config.probe,
                 "seeds": config.seeds, "models": config.models,
                 "model": "+".join(dict.fromkeys(spec_of(t).model.name for t in tasks(config))),
                 "spec_hashes": {d: per[d]["task"]["spec_hash"] for d in ds},
                 "regime": f"fixed budget to fit (>= {FIT} own training accuracy, per run)",
                 "quick": config.quick},
      "datasets": per,
      # What the leaderboard track reads: the mean over datasets.
      "spearman_vs_loo": across["weighted"], "spearman_vs_loo_pooled": across["pooled"],
      "spearman_vs_loo_within": {e: {"corrupted": across["corrupted"][e],
                                     "clean": across["clean"][e]} for e in est},
      "pearson_vs_loo": {e: _mean_cell([per[d]["estimators"][e]["pearson"]["weighted"]
                                        for d in ds]) for e in est},
      "auc_vs_corruption": {e: _mean([per[d]["estimators"][e]["auc_vs_corruption"] for d in ds])
                            for e in est},
      "ceiling": {e: _mean([per[d]["estimators"][e]["ceiling"] for d in ds]) for e in est},
      "cost": {e: {"model_steps": sum(per[d]["estimators"][e]["cost"]["model_steps"] for d in ds),
                   "seconds": sum(per[d]["estimators"][e]["cost"]["seconds"] for d in ds)}
               for e in est},
      "loo": {"reliability": _mean_cell([{**per[d]["loo"]["reliability"],
                                          "n": per[d]["loo"]["reliability"]["n"]}
                                         for d in ds])},
  }
  summary["verdicts"] = judge(summary)
  return summary


def _mean(values):
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else None


def _se_cell(cell: dict) -> dict:
  """A correlation cell for verdicts.difference/sign: its std is already a bootstrap standard
  error (of the statistic, not of one example), so it enters with n = 1."""
  return {**cell, "n": 1}


def judge(s: dict) -> list[dict]:
  """The two claims the benchmark tests, each decided from the summary's numbers.

  1. Per dataset, over the (seed, example) pairs whose two runs both fit: the corrupted
     group's mean mem_LOO above NEAR_ONE, and above the clean group's (the LOO
     corrupted-clean gap), each beyond two standard errors (verdicts.sign).
  2. Per dataset: fz_mem's population-weighted Spearman above the best one-run proxy's,
     beyond two bootstrap standard errors.
  verdicts.word of the signs.
  """
  ds = s["config"]["datasets"]
  mem = {d: s["datasets"][d]["loo"]["mean_by_group_fitted_pairs"] for d in ds}
  fit = {d: s["datasets"][d]["loo"]["fit"] for d in ds}
  signs, measured = [], []
  for d in ds:
    corrupted, clean = mem[d]["corrupted"], mem[d]["clean"]
    gap, gap_se = verdicts.difference(corrupted, clean)
    signs += [verdicts.sign(corrupted, verdicts.constant(NEAR_ONE)),
              verdicts.sign(corrupted, clean)]
    measured.append(
        f"{d}: mem_LOO corrupted {verdicts.fmt(corrupted)}, clean {verdicts.fmt(clean)}, gap "
        + ("n/a" if gap is None else f"{verdicts.num(gap)} +- {verdicts.num(gap_se or 0, 2)}")
        + f"; with-runs fitted {fit[d]['with_runs_fitted']}, without-runs "
        f"{fit[d]['without_runs_fitted']}")
  first = verdicts.verdict(
      "models that fit their training set memorize mislabelled examples (mem close to 1; "
      "typical examples less)",
      paper="Feldman & Zhang 2020, Sec. 3", matched="every LOO run trains the same budget, "
      "long enough to fit (>= 0.99 of its own training set, checked per run); mem_LOO over "
      "the (seed, example) pairs whose runs both fit",
      measured="; ".join(measured), verdict=verdicts.word(signs),
      decide="corrupted mean above the threshold and above the clean mean beyond two se on "
             "every dataset",
      departures=("MLP 1x512 on 500 examples of small datasets, not ResNets on CIFAR-100/"
                  "ImageNet", f"'close to 1' read as a corrupted-group mean >= {NEAR_ONE}",
                  "agrees needs both: mem near 1 for the corrupted group and a resolved gap "
                  "to the clean group, on every dataset"),
      figure="correlations.png")
  signs, measured = [], []
  for d in ds:
    e = s["datasets"][d]["estimators"]
    best = max(PROXIES, key=lambda n: e[n]["spearman"]["weighted"]["mean"] or -1)
    fz, other = e["fz_mem"]["spearman"]["weighted"], e[best]["spearman"]["weighted"]
    signs.append(verdicts.sign(_se_cell(fz), _se_cell(other)))
    measured.append(f"{d}: fz_mem {verdicts.fmt(fz)} vs the best proxy ({best}) "
                    f"{verdicts.fmt(other)}")
  second = verdicts.verdict(
      "the subsample estimator agrees with exact memorization better than one-run proxies",
      paper="Feldman & Zhang 2020, Sec. 3; Jiang et al. 2021 (proxies as cheap substitutes)",
      matched="the same data, model, optimizer and budget for every estimator; scored on one "
              "probe set against one ground truth, weighted to the training population",
      measured="; ".join(measured), verdict=verdicts.word(signs),
      decide="a difference beyond two bootstrap standard errors on every dataset",
      departures=("population-weighted Spearman on a half-corrupted probe set",
                  "the best proxy is chosen per dataset after seeing the scores (favours the "
                  "proxies)"),
      figure="compute.png")
  return [first, second]


# --------------------------------------------------------------------------
# Figures and the printed table
# --------------------------------------------------------------------------


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import plt  # pylint: disable=import-outside-toplevel
  ds = summary["config"]["datasets"]
  cols = [*FORMS, "ceiling"]
  fig, axes = plt.subplots(1, len(ds), figsize=(4.2 * len(ds) + 1, 0.36 * len(ESTIMATORS) + 1.6),
                           squeeze=False)
  for ax, d in zip(axes[0], ds):
    e = summary["datasets"][d]["estimators"]
    names = [n for n in ESTIMATORS if n in e]
    cell = lambda n, f: e[n]["spearman"][f]["mean"] if f in FORMS else e[n]["ceiling"]  # noqa: E731,B023
    values = np.array([[np.nan if cell(n, f) is None else cell(n, f) for f in cols]
                       for n in names], float)
    im = ax.imshow(values, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    for r in range(len(names)):
      for c in range(len(cols)):
        if np.isfinite(values[r, c]):
          ax.text(c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title(f"{d}: Spearman with mem_LOO", fontsize=9)
  fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
  fig2, ax2 = plt.subplots(figsize=(6.5, 4.2))
  for marker, d in zip("os^", ds):
    e = summary["datasets"][d]["estimators"]
    for i, n in enumerate(ESTIMATORS):
      if n in e and e[n]["spearman"]["weighted"]["mean"] is not None:
        ax2.scatter(e[n]["cost"]["model_steps"], e[n]["spearman"]["weighted"]["mean"],
                    marker=marker, color=f"C{i % 10}", s=25,
                    label=n if d == ds[0] else None)
  ax2.set_xscale("log")
  ax2.set(xlabel="cost (model-steps)", ylabel="population-weighted Spearman with mem_LOO",
          title="agreement with exact LOO vs cost (" + ", ".join(
              f"{m} {d}" for m, d in zip("os^", ds)) + ")")
  ax2.axhline(0, color="grey", lw=0.5)
  ax2.legend(fontsize=6, loc="best", ncol=2)
  return {"correlations.png": fig, "compute.png": fig2}


def report(config: Config, summary: dict) -> str:
  del config
  fmt = lambda v: "  n/a" if v is None else f"{v:5.2f}"  # noqa: E731
  lines = []
  for d in summary["config"]["datasets"]:
    s = summary["datasets"][d]
    mem = s["loo"]["mean_by_group"]
    lines.append(f"{d}: mem_LOO corrupted {fmt(mem['corrupted']['mean'])} clean "
                 f"{fmt(mem['clean']['mean'])}; LOO reliability "
                 f"{fmt(s['loo']['reliability']['mean'])}; with-runs fitted "
                 f"{s['loo']['fit']['with_runs_fitted']}, population fitted "
                 f"{s['population']['fit']['fitted_models']}/{s['population']['fit']['models']}")
    lines.append("  estimator            pooled corrupt  clean weighted ceiling   AUC  "
                 "model-steps seconds")
    for n, e in s["estimators"].items():
      sp = e["spearman"]
      lines.append(f"  {n:20s} {fmt(sp['pooled']['mean'])} {fmt(sp['corrupted']['mean'])} "
                   f"{fmt(sp['clean']['mean'])} {fmt(sp['weighted']['mean']):>8} "
                   f"{fmt(e['ceiling']):>7} {fmt(e['auc_vs_corruption'])} "
                   f"{e['cost']['model_steps']:12d} {e['cost']['seconds']:7.1f}")
    lines.append("  fit-gated (weighted): " + ", ".join(
        f"{n} {fmt(g['weighted']['mean'])}" for n, g in s["fit_gated"].items()))
  return "\n".join(lines)  # (the driver prints the verdicts)


EXPERIMENT = driver.Experiment(name="memorization_estimators", doc=__doc__, config=Config(),
                               quick=QUICK, grid=grid, summarize=summarize, plot=plot,
                               report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
