"""Standardized memorization / generalization scores of one run.

Definitions (all accuracies are fractions in [0, 1], measured by full passes
over the split with the final parameters; docs/METRICS.md has the long form):

  train_accuracy                 training set, against the labels trained on
                                 (the corrupted labels where labels are corrupted):
                                 how well the model fits what it was given.
  test_accuracy                  clean test set, true labels.
  generalization_gap             train_accuracy - test_accuracy (Zhang et al. 2017).
  steps_to_fit / epochs_to_fit   first evaluation step (and step / steps_per_epoch)
                                 at which train_accuracy reached the spec's
                                 fit_threshold; None when it never did. Resolution:
                                 budget.eval_every_steps. Zhang et al. 2017 Fig. 1b.
  steps_to_fit_censored          (when the caller gives the run's status) True when
                                 the budget ran out before the fit threshold: the
                                 fit time is right-censored, not missing; False
                                 when it fitted; None for a diverged run.
  steps_to_fit_lower_bound,      a censored run's steps (and epochs) trained: its
  epochs_to_fit_lower_bound      fit time exceeds them. None unless censored.
  label_noise_fraction           fraction of training labels whose corrupted label
                                 differs from the true one (~0.9p for partial p
                                 with 10 classes).
  memorized_fraction             of those changed examples, the fraction predicted
                                 as their corrupted label: noise memorized.
                                 None when no label changed.
  corrupted_true_label_accuracy  of the changed examples, the fraction predicted as
                                 their true label: generalization through the
                                 noise (Arpit et al. 2017, Sec. 3). None likewise.
  clean_subset_train_accuracy    accuracy on the training examples whose label is
                                 unchanged (None when every label changed).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _mean_or_none(values: np.ndarray) -> float | None:
  return float(np.mean(values)) if values.size else None


def standard_scores(*, train_predictions: np.ndarray, test_predictions: np.ndarray,
                    y_train: np.ndarray, y_train_original: np.ndarray,
                    label_changed: np.ndarray, y_test: np.ndarray,
                    steps_to_fit: int | None, steps_per_epoch: int,
                    train_loss: float | None = None,
                    test_loss: float | None = None, status: str | None = None,
                    steps: int | None = None) -> dict[str, Any]:
  """The standardized scores, from final predictions and the corruption record.

  status, steps: the run's final status and steps trained; given, the scores
  record whether steps_to_fit is censored (module docstring).
  """
  train_predictions, y_train = np.asarray(train_predictions), np.asarray(y_train)
  changed = np.asarray(label_changed, bool)
  train_acc = float(np.mean(train_predictions == y_train))
  test_acc = float(np.mean(np.asarray(test_predictions) == np.asarray(y_test)))
  on_changed = train_predictions[changed]
  return {
      "train_accuracy": train_acc,
      "test_accuracy": test_acc,
      "generalization_gap": train_acc - test_acc,
      "steps_to_fit": steps_to_fit,
      "epochs_to_fit": None if steps_to_fit is None else steps_to_fit / steps_per_epoch,
      "label_noise_fraction": float(np.mean(changed)),
      "memorized_fraction": _mean_or_none(on_changed == y_train[changed]),
      "corrupted_true_label_accuracy": _mean_or_none(
          on_changed == np.asarray(y_train_original)[changed]),
      "clean_subset_train_accuracy": _mean_or_none(
          train_predictions[~changed] == y_train[~changed]),
      "train_loss": train_loss,
      "test_loss": test_loss,
      **({} if status is None else _censoring(steps_to_fit, steps_per_epoch, status, steps)),
  }


def _censoring(steps_to_fit: int | None, steps_per_epoch: int, status: str,
               steps: int | None) -> dict[str, Any]:
  """Whether the fit time is right-censored at the budget, and its lower bound."""
  if steps_to_fit is not None:
    censored = False
  elif status == "budget_exhausted":
    censored = True
  else:  # diverged (no fit time to bound) or not final
    censored = None
  bound = steps if censored and steps is not None else None
  return {"steps_to_fit_censored": censored, "steps_to_fit_lower_bound": bound,
          "epochs_to_fit_lower_bound": None if bound is None else bound / steps_per_epoch}
