"""Small statistics shared by the per-example memorization scores.

`roc_auc` is how every per-example score (self-influence, subsample
memorization, learning time) is judged against the corruption record: the
probability that a randomly drawn corrupted training example scores higher
than a randomly drawn clean one, ties counting one half (the Mann-Whitney U
statistic divided by n_pos * n_neg; Hanley & McNeil 1982). 0.5 is chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
  """Area under the ROC curve of `scores` for separating `positive` examples.

  None when either class is empty or a score is not finite. Computed from the
  average ranks (scipy.stats.rankdata): the rank sums are exact, so the value is
  the correctly rounded U / (n_pos n_neg). sklearn.metrics.roc_auc_score gives
  the same area by the trapezoid rule, within a few 1e-16.
  """
  scores = np.asarray(scores, np.float64)
  positive = np.asarray(positive, bool)
  n_pos, n_neg = int(positive.sum()), int((~positive).sum())
  if n_pos == 0 or n_neg == 0 or not np.all(np.isfinite(scores)):
    return None
  u = scipy.stats.rankdata(scores)[positive].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def split_summary(values: np.ndarray, corrupted: np.ndarray) -> dict[str, Any]:
  """Mean of `values` over all, corrupted and clean examples (None where empty)."""
  values = np.asarray(values, np.float64)
  corrupted = np.asarray(corrupted, bool)

  def mean(v):
    v = v[np.isfinite(v)]
    return float(np.mean(v)) if v.size else None

  return {"all": mean(values), "corrupted": mean(values[corrupted]),
          "clean": mean(values[~corrupted])}
