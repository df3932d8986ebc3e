"""Per-example memorization estimators: above the training loop, which they drive.

A metric (memobench/metrics/) measures one run from inside the loop; an
estimator scores every training example from models it trains through the loop
(training.loop.train_group), or from a population of models trained on known
subsets (population.py; or trained elsewhere: external.py). The package sits
above training/ and metrics/ and below the command lines and experiments.

TABLE is the explicit table of estimators (base.Estimator); runner.py scores
every entry it can and knows none by name. Adding one is one module here and
one line in TABLE (its test and its docs/METRICS.md entry besides). The table
imports its members; members never import the table.

  fz_mem              subsample.py           Feldman & Zhang 2020's memorization
  cscore              subsample.py           Jiang et al. 2021's C-score (held-out accuracy)
  fz_max_influence    subsample.py           Feldman & Zhang 2020's influence on test examples
  lira_online         lira.py                Carlini et al. 2022, online LiRA
  lira_offline        lira.py                Carlini et al. 2022, offline LiRA
  confident_learning  confident_learning.py  cleanlab's label quality (optional package)
  turnover_loss, turnover_accuracy, first_learned, stable_learned, cumulative_accuracy,
  forgetting, final_loss, el2n, grand, tracin
                      proxies.py             one-run proxies, from their own (shared) runs

Also here: leave_one_out.py (exact leave-one-out memorization, the ground
truth estimators are scored on, and the scoring), population.py (training,
designs, saved outputs, growing K), data_pruning_scores.py (EL2N, GraNd,
TracIn's per-example gradients).
"""

from __future__ import annotations

from memobench.estimators import base, confident_learning, lira, proxies, subsample

TABLE: tuple[base.Estimator, ...] = (
    subsample.MEM,
    subsample.CSCORE,
    subsample.MAX_INFLUENCE,
    lira.ONLINE,
    lira.OFFLINE,
    confident_learning.ESTIMATOR,
    proxies.TURNOVER_LOSS,
    proxies.TURNOVER_ACCURACY,
    proxies.FIRST_LEARNED,
    proxies.STABLE_LEARNED,
    proxies.CUMULATIVE_ACCURACY,
    proxies.FORGETTING,
    proxies.FINAL_LOSS,
    proxies.EL2N,
    proxies.GRAND,
    proxies.TRACIN,
)


def population_estimators(table: tuple[base.Estimator, ...] = TABLE) -> list[base.Estimator]:
  """The entries that score from a population's outputs."""
  return [e for e in table if e.kind == "population"]


def run_estimators(table: tuple[base.Estimator, ...] = TABLE) -> list[base.Estimator]:
  """The entries that train their own runs."""
  return [e for e in table if e.kind == "runs"]


def get(name: str, table: tuple[base.Estimator, ...] = TABLE) -> base.Estimator:
  for estimator in table:
    if estimator.name == name:
      return estimator
  raise KeyError(f"unknown estimator {name!r}; known: {', '.join(e.name for e in table)}")
