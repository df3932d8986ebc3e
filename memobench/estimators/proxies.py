"""One-run memorization proxies, as estimators that train their own runs.

Each estimator here reads a `SharedRuns` record: training that several of them
share, done once per `RunContext` (the spec, its corrupted data, the seed and
an epoch budget; `options`: proxy_seeds, early_epoch). Scores are for the
context's `examples` (default: every training example), oriented so that
higher = more memorized (sign +1), and carry their cost in
`summary["cost"]` = {model_steps, seconds}.

  PROXY_RUNS  proxy_seeds runs of the spec, vmapped, evaluated every epoch, keys
              fold_in(fold_in(run key, prng.PROXY_RUNS), r): each run r gives its
              learning dynamics (metrics/dynamics.py), final loss and TracIn,
              and EL2N and GraNd at `early_epoch` (data_pruning_scores.py)
  TURNOVER    `turnover_runs` (default 1) runs with turn-over dropout at rate
              0.5, keys fold_in(fold_in(run key, prng.PROXY_RUNS), 1000 + r), and
              their self-influence at the end (metrics/turnover.py)

A one-run estimator scores run `options["run"]` (default 0, the estimator as
the benchmark reports it; another run is an independent replicate, for its
test-retest reliability); EL2N and GraNd average the runs `options["runs"]`
(default all).

Costs: a score of run 0 costs that run's steps and its share (1/proxy_seeds) of
the group's seconds; EL2N and GraNd cost proxy_seeds runs up to early_epoch
(the group's seconds prorated by steps) plus their scoring; TracIn adds its
per-checkpoint gradients; turn-over its run and its scoring.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from memobench import prng
from memobench.estimators import base
from memobench.estimators import data_pruning_scores as dps
from memobench.estimators import leave_one_out as loo
from memobench.metrics import dynamics, turnover
from memobench.training import loop

TURNOVER_RATE = 0.5
TURNOVER_KEY = 1000  # the turn-over run's index under prng.PROXY_RUNS


def _examples(context: base.RunContext) -> np.ndarray:
  n = context.dataset.num_train
  return np.arange(n) if context.options.get("examples") is None else np.asarray(
      context.options["examples"])


def _proxy_runs(context: base.RunContext) -> base.RunsRecord:
  """proxy_seeds vmapped runs evaluated every epoch (module docstring)."""
  t_start = time.perf_counter()
  seeds, early = int(context.options["proxy_seeds"]), int(context.options["early_epoch"])
  workload = loo.fixed_budget_workload(context.spec, context.epochs, context.dataset,
                                       evaluations=context.epochs)
  spe = workload.schedule.steps_per_epoch
  data = context.data
  examples = _examples(context)
  y = np.asarray(data.y_train)
  x_probe, y_probe = np.asarray(data.x_train)[examples], y[examples]
  score = dps.scorer(workload.module)
  base_key = jax.random.fold_in(prng.run_key(context.seed), prng.PROXY_RUNS)
  m = examples.size
  out = {"el2n": np.zeros((seeds, m)), "grand": np.zeros((seeds, m)),
         "final_loss": np.zeros((seeds, m))}
  trackers = [dynamics.LearningDynamics(y) for _ in range(seeds)]
  tracins = [dps.TracInSelfInfluence(m) for _ in range(seeds)]
  timing = {"tracin_s": 0.0, "early_s": 0.0}
  members = []
  for k in range(seeds):
    def on_eval(ev, k=k):
      t0 = time.perf_counter()
      _, params, model_state = ev.model()
      s = score(params, model_state, x_probe, y_probe)
      if round(ev.epoch) == early:
        out["el2n"][k], out["grand"][k] = s["el2n"], s["grand"]
        timing["early_s"] += time.perf_counter() - t0
      trackers[k].update(ev.step, ev.train_predictions)
      tracins[k].add(ev.learning_rate, s["grad_sq_norm"])
      out["final_loss"][k] = s["loss"]  # the last evaluation's stays
      timing["tracin_s"] += time.perf_counter() - t0
    members.append(loop.Member(workload.spec, data, log=lambda _: None, on_eval=on_eval,
                               key=jax.random.fold_in(base_key, k)))
  outcomes = loop.train_group(workload, members, vmapped=context.vmapped and seeds > 1)
  dyn = [t.arrays() for t in trackers]
  arrays = {**out, **{f"dyn_{name}": np.stack([d[name][examples] for d in dyn])
                      for name in dyn[0]},
            "evaluations": np.int64(trackers[0].evaluations),
            "tracin": np.stack([t.value for t in tracins]),
            "tracin_checkpoints": np.int64(tracins[0].checkpoints),
            "train_s": np.float64(outcomes[0].train_s + outcomes[0].compile_s),
            "total_steps": np.int64(workload.schedule.total_steps),
            "early_steps": np.int64(early * spe),
            # Scoring seconds per run (every run is scored at every evaluation).
            "tracin_s": np.float64(timing["tracin_s"] / seeds),
            "early_s": np.float64(timing["early_s"])}
  return base.RunsRecord(arrays, seeds * int(workload.schedule.total_steps),
                         time.perf_counter() - t_start)


def _turnover_run(context: base.RunContext) -> base.RunsRecord:
  """Runs with turn-over dropout, one after another; their self-influence at the end."""
  t_start = time.perf_counter()
  spec = dataclasses.replace(context.spec, analysis=dataclasses.replace(
      context.spec.analysis, turnover_dropout=TURNOVER_RATE))
  workload = loo.fixed_budget_workload(spec, context.epochs, context.dataset)
  base_key = jax.random.fold_in(prng.run_key(context.seed), prng.PROXY_RUNS)
  examples = _examples(context)
  runs = int(context.options.get("turnover_runs", 1))
  out = {"loss": [], "accuracy": [], "train_s": 0.0, "score_s": 0.0}
  for r in range(runs):
    key = jax.random.fold_in(base_key, TURNOVER_KEY + r)
    member = loop.Member(workload.spec, context.data, log=lambda _: None, key=key)
    (outcome,) = loop.train_group(workload, [member], vmapped=False)
    t0 = time.perf_counter()
    arrays = turnover.self_influence(workload.module, outcome.state.params,
                                     outcome.state.model_state, context.data.x_train,
                                     context.data.y_train, turnover.turnover_key(key),
                                     TURNOVER_RATE)
    out["loss"].append(arrays["self_influence_loss"][examples])
    out["accuracy"].append(arrays["self_influence_accuracy"][examples])
    out["train_s"] += (outcome.train_s + outcome.compile_s) / runs  # per run
    out["score_s"] += (time.perf_counter() - t0) / runs
  record = {"loss": np.stack(out["loss"]), "accuracy": np.stack(out["accuracy"]),
            "train_s": np.float64(out["train_s"]), "score_s": np.float64(out["score_s"]),
            "total_steps": np.int64(workload.schedule.total_steps)}
  return base.RunsRecord(record, runs * int(workload.schedule.total_steps),
                         time.perf_counter() - t_start)


PROXY_RUNS = base.SharedRuns("proxy_runs", _proxy_runs)
TURNOVER = base.SharedRuns("turnover_run", _turnover_run)


# --------------------------------------------------------------------------
# The estimators: scores and costs from the shared records
# --------------------------------------------------------------------------


def _one_run_cost(record: base.RunsRecord, context: base.RunContext, extra_s: float = 0.0):
  a = record.arrays
  seeds = int(context.options["proxy_seeds"])
  return {"model_steps": int(a["total_steps"]), "seconds": float(a["train_s"]) / seeds + extra_s}


def _early_cost(record: base.RunsRecord, context: base.RunContext):
  a = record.arrays
  seeds = int(context.options["proxy_seeds"])
  per_model_s = float(a["train_s"]) / seeds
  fraction = float(a["early_steps"]) / float(a["total_steps"])
  return {"model_steps": seeds * int(a["early_steps"]),
          "seconds": seeds * per_model_s * fraction + float(a["early_s"])}


def _turnover_cost(record: base.RunsRecord, context: base.RunContext):
  del context
  a = record.arrays
  return {"model_steps": int(a["total_steps"]),
          "seconds": float(a["train_s"]) + float(a["score_s"])}


def _run(values: np.ndarray, context: base.RunContext) -> np.ndarray:
  """Run `options["run"]` (default 0) of a (runs, m) array; an (m,) array is one run."""
  values = np.asarray(values)
  return values[int(context.options.get("run", 0))] if values.ndim == 2 else values


def _runs_mean(values: np.ndarray, context: base.RunContext) -> np.ndarray:
  """The mean over runs `options["runs"]` (default all) of a (runs, m) array."""
  values = np.asarray(values)
  runs = context.options.get("runs")
  return (values if runs is None else values[list(runs)]).mean(0)


def _learning_step(name):
  """Epoch of the first / stable correct prediction; never: the last evaluation + 1 epoch."""
  def score(record, context):
    a = record.arrays
    step = _run(a[f"dyn_{name}_step"], context).astype(np.float64)
    spe = float(a["total_steps"]) / context.epochs
    late = float(a["evaluations"] + 1)
    return base.Scores.of(np.where(step >= 0, step / spe, late),
                          cost=_one_run_cost(record, context))
  return score


def _one_run(score_fn, cost=_one_run_cost):
  def score(record, context):
    return base.Scores.of(score_fn(record.arrays, context), cost=cost(record, context))
  return score


def _estimator(name, runs, from_runs, source):
  return base.Estimator(name=name, runs=runs, from_runs=from_runs, source=source)


TURNOVER_LOSS = _estimator(
    "turnover_loss", TURNOVER, _one_run(lambda a, c: _run(a["loss"], c), _turnover_cost),
    "Kobayashi et al. 2020, turn-over dropout self-influence (loss), rate 0.5, one run")
TURNOVER_ACCURACY = _estimator(
    "turnover_accuracy", TURNOVER, _one_run(lambda a, c: _run(a["accuracy"], c), _turnover_cost),
    "Kobayashi et al. 2020, turn-over dropout self-influence (accuracy), one run")
FIRST_LEARNED = _estimator(
    "first_learned", PROXY_RUNS, _learning_step("first_learned"),
    "Toneva et al. 2019, first epoch predicted right (never: last + 1)")
STABLE_LEARNED = _estimator(
    "stable_learned", PROXY_RUNS, _learning_step("stable_learned"),
    "Toneva et al. 2019, epoch from which predicted right to the end (never: last + 1)")
CUMULATIVE_ACCURACY = _estimator(
    "cumulative_accuracy", PROXY_RUNS, _one_run(lambda a, c: 1.0 - _run(a["dyn_correct_fraction"], c)),
    "Jiang et al. 2021's learning-speed proxy: 1 - the fraction of evaluations predicted right")
FORGETTING = _estimator(
    "forgetting", PROXY_RUNS, _one_run(lambda a, c: _run(a["dyn_forgetting_score"], c).astype(np.float64)),
    "Toneva et al. 2019, forgetting score (never learned: the maximum)")
FINAL_LOSS = _estimator(
    "final_loss", PROXY_RUNS, _one_run(lambda a, c: _run(a["final_loss"], c)),
    "the final per-example cross-entropy against the label trained on, one run")
EL2N = _estimator(
    "el2n", PROXY_RUNS, _one_run(lambda a, c: _runs_mean(a["el2n"], c), _early_cost),
    "Paul, Ganguli & Dziugaite 2021, EL2N at an early epoch, mean over runs")
GRAND = _estimator(
    "grand", PROXY_RUNS, _one_run(lambda a, c: _runs_mean(a["grand"], c), _early_cost),
    "Paul, Ganguli & Dziugaite 2021, GraNd at an early epoch, mean over runs")
TRACIN = _estimator(
    "tracin", PROXY_RUNS,
    lambda record, context: base.Scores.of(_run(record.arrays["tracin"], context),
                                           cost=_one_run_cost(
                                               record, context,
                                               float(record.arrays["tracin_s"]))),
    "Pruthi et al. 2020, TracInCP self-influence over the per-epoch checkpoints")

ESTIMATORS = (TURNOVER_LOSS, TURNOVER_ACCURACY, FIRST_LEARNED, STABLE_LEARNED,
              CUMULATIVE_ACCURACY, FORGETTING, FINAL_LOSS, EL2N, GRAND, TRACIN)
