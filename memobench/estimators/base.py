"""The interface of a per-example memorization estimator, and the outputs it reads.

An estimator is one `Estimator` value defined in its own module of
memobench/estimators/ and one line in the table of estimators/__init__.py (as a
metric is one module and one line in metrics/__init__.py). It comes in one of
two kinds:

  from the population  `score(outputs) -> Scores`: reads the per-model outputs of
                       a population of models trained on known subsets
                       (`Outputs`: the inclusion matrix, and which of correct,
                       margin, probs, test_correct it declares in `reads`), the
                       same whether memobench trained them (population.py) or
                       they were trained elsewhere (external.py)
  from its own runs    `run(context) -> Scores`: trains what it needs through
                       the training loop (`RunContext`), e.g. one run's learning
                       dynamics; runs that several estimators share are
                       declared once as a `SharedRuns` and trained once

Either way it returns one score per training example and its standard error
(NaN where it has none), oriented as its source defines it; `sign` says which
way is "more memorized" (+1: higher; -1: lower), so a benchmark can orient
every entry alike without changing the score the table stores.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

# Per-model outputs a population estimator may read (Outputs' optional fields).
OUTPUTS = ("correct", "margin", "probs", "test_correct")


class EstimatorError(ValueError):
  """Outputs or options an estimator cannot score; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Outputs:
  """What K models trained on known subsets give for N training (and M test) examples.

  inclusion[k, i]: model k trained on example i. labels: the labels trained
  on (N,). correct[k, i]: model k predicts example i as labels[i]. margin[k, i]:
  the correct-class logit margin z_y - logsumexp_{j != y} z_j = log(p_y / (1 - p_y)),
  LiRA's logit-scaled confidence. probs[k, i, :]: the softmax. test_correct
  (K, M): the same for held-out (test) examples, which no model trained on.
  Fields a source cannot give are None; an estimator that reads one is skipped.
  """
  inclusion: np.ndarray
  labels: np.ndarray
  correct: np.ndarray | None = None
  margin: np.ndarray | None = None
  probs: np.ndarray | None = None
  test_correct: np.ndarray | None = None

  @property
  def models(self) -> int:
    return int(self.inclusion.shape[0])

  @property
  def examples(self) -> int:
    return int(self.inclusion.shape[1])

  def has(self, name: str) -> bool:
    return getattr(self, name) is not None

  def check(self) -> "Outputs":
    """Shapes and values agree; raises EstimatorError (one line) if not."""
    inc = np.asarray(self.inclusion)
    if inc.ndim != 2 or inc.dtype != bool:
      raise EstimatorError(f"inclusion must be a (K, N) bool array, got {inc.dtype} {inc.shape}")
    k, n = inc.shape
    if np.asarray(self.labels).shape != (n,):
      raise EstimatorError(f"labels must have shape ({n},), got {np.asarray(self.labels).shape}")
    for name, tail in (("correct", ()), ("margin", ()), ("probs", None)):
      value = getattr(self, name)
      if value is None:
        continue
      shape = np.asarray(value).shape
      if shape[:2] != (k, n) or (tail is not None and len(shape) != 2):
        raise EstimatorError(f"{name} must have shape ({k}, {n}{'' if tail is not None else ', C'})"
                             f", got {shape}")
    if self.test_correct is not None and np.asarray(self.test_correct).shape[0] != k:
      raise EstimatorError(f"test_correct must have {k} rows (one per model)")
    for name in ("margin", "probs"):
      value = getattr(self, name)
      if value is not None and np.isnan(np.asarray(value, np.float32)).any():
        raise EstimatorError(f"{name} holds NaN")
    return self


@dataclasses.dataclass(frozen=True)
class Scores:
  """An estimator's per-example output: score (N,), its se (N,; NaN: none), a summary."""
  score: np.ndarray
  se: np.ndarray
  summary: dict[str, Any] = dataclasses.field(default_factory=dict)

  @staticmethod
  def of(score, se=None, **summary) -> "Scores":
    score = np.asarray(score, np.float64)
    se = np.full(score.shape, np.nan) if se is None else np.asarray(se, np.float64)
    return Scores(score, se, summary)


@dataclasses.dataclass(frozen=True)
class RunContext:
  """What an estimator with its own runs gets: the spec, its data, and the budget."""
  spec: Any                 # specs.Spec (the data set, corruption, model, optimizer)
  dataset: Any              # data.Dataset, loaded
  data: Any                 # corruptions.CorruptedData of `seed`
  seed: int
  epochs: int
  options: dict[str, Any] = dataclasses.field(default_factory=dict)
  vmapped: bool = True


@dataclasses.dataclass(frozen=True)
class RunsRecord:
  """Shared runs' per-example arrays (N,) or (runs, N), their model-steps and seconds."""
  arrays: dict[str, np.ndarray]
  model_steps: int
  seconds: float


@dataclasses.dataclass(frozen=True)
class SharedRuns:
  """Training that several own-run estimators read, trained once per context."""
  name: str
  train: Callable[[RunContext], RunsRecord]


@dataclasses.dataclass(frozen=True)
class Estimator:
  """One entry of the estimator table (memobench/estimators/__init__.py)."""
  name: str
  source: str                                  # the paper section or released code it follows
  sign: int = 1                                # +1: higher = more memorized; -1: lower
  # From the population: the outputs it reads and the scoring.
  reads: tuple[str, ...] = ()
  score: Callable[[Outputs], Scores] | None = None
  # From its own runs: the shared training it reads and the scoring of its record.
  runs: SharedRuns | None = None
  from_runs: Callable[[RunsRecord, RunContext], Scores] | None = None
  # A package it needs beyond memobench's dependencies (None: none).
  requires: str | None = None
  # What it costs: "population" (the population's models) or "runs" (its shared runs).
  @property
  def kind(self) -> str:
    return "population" if self.score is not None else "runs"

  def __post_init__(self):
    if (self.score is None) == (self.from_runs is None):
      raise ValueError(f"estimator {self.name}: give exactly one of score and from_runs")
    if self.from_runs is not None and self.runs is None:
      raise ValueError(f"estimator {self.name}: from_runs needs its SharedRuns")
    if self.sign not in (1, -1):
      raise ValueError(f"estimator {self.name}: sign must be +1 or -1")
    unknown = set(self.reads) - set(OUTPUTS)
    if unknown:
      raise ValueError(f"estimator {self.name}: unknown outputs {sorted(unknown)}")

  def missing(self, outputs: Outputs) -> list[str]:
    """The outputs it reads that `outputs` lacks."""
    return [name for name in self.reads if not outputs.has(name)]


def requirement_missing(estimator: Estimator) -> str | None:
  """One line saying why the estimator cannot run here (its optional package), or None."""
  if estimator.requires is None:
    return None
  import importlib.util  # pylint: disable=import-outside-toplevel
  if importlib.util.find_spec(estimator.requires) is None:
    return (f"{estimator.name} skipped: {estimator.requires} is not installed "
            f"(pip install {estimator.requires}, or pip install 'memobench[estimators]')")
  return None
