"""Scores every estimator of a table; knows none by name.

`score_population(outputs, table)` runs each population entry whose outputs
are present and whose optional package is installed; every entry it cannot
run is a reason (one line) in `skipped`, never a silent gap.
`score_runs(context, table)` runs each own-run entry, training each of their
SharedRuns once (or taking a record the caller already has). `table_rows`
turns the results into rows of the per-example table (memobench/example_table.py).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import numpy as np

from memobench import example_table
from memobench.estimators import base


@dataclasses.dataclass
class Scored:
  scores: dict[str, base.Scores]      # estimator name -> its per-example scores
  seconds: dict[str, float]           # estimator name -> seconds its scoring took
  skipped: dict[str, str]             # estimator name -> why it did not run (one line)


def score_population(outputs: base.Outputs, table: tuple[base.Estimator, ...],
                     log: Callable[[str], None] = print) -> Scored:
  """Every population estimator of `table` on `outputs` (checked first)."""
  outputs.check()
  scored = Scored({}, {}, {})
  for estimator in table:
    if estimator.kind != "population":
      continue
    missing = estimator.missing(outputs)
    reason = (f"{estimator.name} skipped: the outputs lack {', '.join(missing)}" if missing
              else base.requirement_missing(estimator))
    if reason is not None:
      scored.skipped[estimator.name] = reason
      log(reason)
      continue
    t0 = time.perf_counter()
    scored.scores[estimator.name] = estimator.score(outputs)
    scored.seconds[estimator.name] = time.perf_counter() - t0
  return scored


def score_runs(context: base.RunContext, table: tuple[base.Estimator, ...],
               records: dict[str, base.RunsRecord] | None = None,
               log: Callable[[str], None] = print) -> Scored:
  """Every own-run estimator of `table` in `context`; `records` (by SharedRuns name) is filled."""
  records = {} if records is None else records
  scored = Scored({}, {}, {})
  for estimator in table:
    if estimator.kind != "runs":
      continue
    reason = base.requirement_missing(estimator)
    if reason is not None:
      scored.skipped[estimator.name] = reason
      log(reason)
      continue
    if estimator.runs.name not in records:
      records[estimator.runs.name] = estimator.runs.train(context)
    t0 = time.perf_counter()
    scored.scores[estimator.name] = estimator.from_runs(records[estimator.runs.name], context)
    scored.seconds[estimator.name] = time.perf_counter() - t0
  return scored


def table_rows(scored: Mapping[str, base.Scores], *, dataset: str,
               columns: Mapping[str, Any], config: Mapping[str, Any],
               prefix: str = "") -> dict[str, np.ndarray]:
  """One estimator's rows per entry of `scored` (estimator column: prefix + name)."""
  return example_table.concat([
      example_table.rows(estimator=prefix + name, scores=s.score, standard_errors=s.se,
                         dataset=dataset, config=config, **columns)
      for name, s in scored.items()])
