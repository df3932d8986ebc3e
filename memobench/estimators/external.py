"""Bring your own models: every population score from outputs trained elsewhere.

A LiRA or Privacy Meter user has K models' outputs on N training examples and
the inclusion mask of each; `outputs_from_arrays` turns them into the
`base.Outputs` every population estimator reads, and `score` runs the
estimator table on them, exactly as on a population memobench trained
(runner.score_population). The command is

  python -m memobench.memorization --outputs=FILE.npz [--spec=SPEC] --workdir=W

FILE.npz holds (names as below; K models, N training examples, C classes, M
held-out examples):

  inclusion     (K, N)     bool or 0/1: model k trained on example i      required
  labels        (N,)       the labels the models trained on               required
  logits        (K, N, C)  float: every output below is derived from them
  margin        (K, N)     z_y - logsumexp_{j != y} z_j (LiRA's logit-scaled confidence)
  probs         (K, N, C)  softmax
  correct       (K, N)     bool: model k predicts example i as labels[i]
  test_logits   (K, M, C) with test_labels (M,), or test_correct (K, M)
  original_labels (N,)     the true labels, where `labels` are corrupted (default: labels)

Derived where not given: from logits, correct = argmax == label, margin and
probs as population.outputs_from_logits; from probs, correct = argmax == label
and margin = log p_y - log sum_{j != y} p_j; from margin alone, correct =
margin > 0 (p_y > 1/2: exact for two classes, and for more a sufficient but not
necessary condition of an argmax-correct prediction; the command says so).
Estimators whose outputs are still missing are skipped with one line each.
memobench's own population.npz is such a file (the same names), so scoring a
saved population this way gives its scores exactly.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from memobench.estimators import base
from memobench.estimators.population import outputs_from_logits

ARRAYS = ("inclusion", "labels", "logits", "margin", "probs", "correct", "test_logits",
          "test_labels", "test_correct", "original_labels")


def _inclusion(value) -> np.ndarray:
  a = np.asarray(value)
  if a.dtype == bool:
    return a
  if a.dtype.kind in "iuf" and np.all(np.isin(a, (0, 1))):
    return a.astype(bool)
  raise base.EstimatorError("inclusion must be bool or 0/1")


def _labels(value, name: str) -> np.ndarray:
  a = np.asarray(value)
  if a.ndim != 1 or a.dtype.kind not in "iuf" or not np.all(a == np.round(a)) or (a < 0).any():
    raise base.EstimatorError(f"{name} must be a (N,) array of non-negative integer classes")
  return a.astype(np.int64)


def outputs_from_arrays(*, inclusion, labels, logits=None, margin=None, probs=None,
                        correct=None, test_logits=None, test_labels=None, test_correct=None,
                        log: Callable[[str], None] = print) -> base.Outputs:
  """The Outputs of models trained elsewhere (module docstring); raises EstimatorError (one line)."""
  inclusion, labels = _inclusion(inclusion), _labels(labels, "labels")
  derived: dict[str, Any] = {}
  if logits is not None:
    z = np.asarray(logits, np.float32)
    if z.ndim != 3 or z.shape[:2] != inclusion.shape:
      raise base.EstimatorError(f"logits must have shape {inclusion.shape + ('C',)}, "
                                f"got {z.shape}")
    if (labels >= z.shape[2]).any():
      raise base.EstimatorError(f"labels go up to {labels.max()}, but logits have "
                                f"{z.shape[2]} classes")
    derived = outputs_from_logits(z, labels)
  elif probs is not None:
    p = np.asarray(probs, np.float64)
    if p.ndim != 3 or (labels >= p.shape[2]).any():
      raise base.EstimatorError(f"probs must be (K, N, C) with labels < C, got {p.shape}")
    p_y = np.take_along_axis(p, np.broadcast_to(labels[None, :, None], p.shape[:2] + (1,)),
                             -1)[..., 0]
    with np.errstate(divide="ignore"):
      derived = {"correct": np.argmax(p, -1) == labels[None],
                 "margin": np.log(np.maximum(p_y, 1e-45))
                           - np.log(np.maximum(p.sum(-1) - p_y, 1e-45))}
  if margin is None:
    margin = derived.get("margin")
  if probs is None:
    probs = derived.get("probs")
  if correct is None:
    correct = derived.get("correct")
    if correct is None and margin is not None:
      correct = np.asarray(margin, np.float64) > 0
      log("correct taken as margin > 0 (p_y > 1/2); pass correct or logits for argmax "
          "correctness")
  if test_correct is None and test_logits is not None:
    if test_labels is None:
      raise base.EstimatorError("test_logits need test_labels")
    test_labels = _labels(test_labels, "test_labels")
    test_correct = np.argmax(np.asarray(test_logits, np.float32), -1) == test_labels[None]
  return base.Outputs(
      inclusion=inclusion, labels=labels,
      correct=None if correct is None else np.asarray(correct, bool),
      margin=None if margin is None else np.asarray(margin),
      probs=None if probs is None else np.asarray(probs),
      test_correct=None if test_correct is None else np.asarray(test_correct, bool)).check()


def load(path: str, log: Callable[[str], None] = print) -> tuple[base.Outputs, dict[str, Any]]:
  """(Outputs, extras) of an outputs file; extras: original_labels where given."""
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files if k in ARRAYS}
  except FileNotFoundError:
    raise base.EstimatorError(f"{path}: no such file") from None
  except (OSError, ValueError) as e:
    raise base.EstimatorError(f"{path}: not a readable .npz ({e})") from None
  for name in ("inclusion", "labels"):
    if name not in arrays:
      raise base.EstimatorError(f"{path} lacks the array {name!r}")
  original = arrays.pop("original_labels", None)
  outputs = outputs_from_arrays(log=log, **arrays)
  return outputs, {"original_labels": (outputs.labels if original is None
                                       else _labels(original, "original_labels"))}
