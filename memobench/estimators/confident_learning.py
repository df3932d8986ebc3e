"""Confident-learning label quality from a population's out-of-sample probabilities (cleanlab).

Northcutt, Jiang & Chuang 2021, "Confident learning: estimating uncertainty in
dataset labels" (JAIR); cleanlab's `cleanlab.rank.get_label_quality_scores`
(default method "self_confidence": the predicted probability of the given
label). Confident learning needs OUT-OF-SAMPLE predicted probabilities (cleanlab
obtains them by cross-validation); a population gives them directly:

  pred_probs(i) = mean over the models that did NOT train on i of softmax_k(x_i),
                  renormalized to sum to 1 (the stored float16 softmax rounds),
  quality(i)    = get_label_quality_scores(labels, pred_probs, method=METHOD)[i]

against the labels trained on (the corrupted ones where labels are). Low
quality flags a likely label error; the estimator's sign is -1 (lower = more
memorized: a label the other models contradict is one a model can only
memorize). se: for self_confidence, the standard error of the mean over the
held-out models of p_k(y_i | x_i) (sample std / sqrt(n_out)); NaN for the other
methods and where fewer than two models held the example out. An example no
model held out has no score (NaN).

cleanlab is an optional dependency (pip install cleanlab, or the
`memobench[estimators]` extra): without it the estimator is skipped with one
line (base.requirement_missing), and nothing else changes.
"""

from __future__ import annotations

import numpy as np

from memobench.estimators import base

METHOD = "self_confidence"


def out_of_sample_probs(probs: np.ndarray, inclusion: np.ndarray) -> tuple[np.ndarray,
                                                                           np.ndarray]:
  """(N, C) mean softmax over the models that held each example out (rows sum to 1), n_out (N,).

  Rows of examples no model held out are NaN.
  """
  p = np.asarray(probs, np.float64)
  out = ~np.asarray(inclusion, bool)
  n_out = out.sum(0)
  total = np.einsum("kn,knc->nc", out.astype(np.float64), p)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = total / total.sum(1, keepdims=True)
  mean[n_out == 0] = np.nan
  return mean, n_out


def label_quality(outputs: base.Outputs, method: str = METHOD) -> base.Scores:
  """cleanlab's label quality of each example from its out-of-sample probabilities."""
  from cleanlab.rank import get_label_quality_scores  # pylint: disable=import-outside-toplevel
  labels = np.asarray(outputs.labels, np.int64)
  pred, n_out = out_of_sample_probs(outputs.probs, outputs.inclusion)
  scored = n_out > 0
  quality = np.full(labels.shape, np.nan)
  if scored.any():
    quality[scored] = get_label_quality_scores(labels[scored], pred[scored], method=method)
  se = np.full(labels.shape, np.nan)
  if method == "self_confidence":
    p_label = np.take_along_axis(np.asarray(outputs.probs, np.float64),
                                 np.broadcast_to(labels[None, :, None],
                                                 (outputs.models, labels.size, 1)), -1)[..., 0]
    out = ~np.asarray(outputs.inclusion, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
      mean = np.where(out, p_label, 0).sum(0) / n_out
      var = np.where(out, (p_label - mean) ** 2, 0).sum(0) / (n_out - 1)
      se = np.where(n_out > 1, np.sqrt(var / n_out), np.nan)
  return base.Scores.of(quality, se, method=method, examples_scored=int(scored.sum()))


ESTIMATOR = base.Estimator(
    name="confident_learning", reads=("probs",), score=label_quality, sign=-1,
    requires="cleanlab",
    source="Northcutt et al. 2021 (confident learning); cleanlab.rank.get_label_quality_scores "
           "(self_confidence) on out-of-sample probabilities averaged over held-out models")
