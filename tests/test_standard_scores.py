"""metrics/scores.standard_scores against a five-example case computed by hand."""

import numpy as np
import pytest

from memobench.metrics import scores

# Example:            0  1  2  3  4
_Y_TRUE = np.array([0, 1, 2, 0, 1])   # y_train_original
_Y_TRAIN = np.array([0, 2, 2, 1, 0])  # trained on: 1, 3, 4 corrupted (1->2, 0->1, 1->0)
_CHANGED = np.array([False, True, False, True, True])
_PRED = np.array([0, 2, 1, 0, 0])     # final predictions on the training set
_Y_TEST = np.array([0, 1, 2, 1])
_PRED_TEST = np.array([0, 1, 0, 0])


def test_known_answer_of_a_five_example_run():
  got = scores.standard_scores(
      train_predictions=_PRED, test_predictions=_PRED_TEST, y_train=_Y_TRAIN,
      y_train_original=_Y_TRUE, label_changed=_CHANGED, y_test=_Y_TEST, steps_to_fit=30,
      steps_per_epoch=4, train_loss=0.25, test_loss=1.5)
  # Per example, prediction vs trained-on label / true label:
  #   0: 0 vs 0 (clean)        right
  #   1: 2 vs 2, true 1        right against its corrupted label: memorized
  #   2: 1 vs 2 (clean)        wrong
  #   3: 0 vs 1, true 0        wrong, but the true label: generalized through the noise
  #   4: 0 vs 0, true 1        right against its corrupted label: memorized
  # train_accuracy: examples 0, 1, 4 of 5 = 0.6
  assert got["train_accuracy"] == pytest.approx(0.6)
  # test: 0=0, 1=1, 0!=2, 0!=1 -> 2 of 4 = 0.5
  assert got["test_accuracy"] == pytest.approx(0.5)
  # generalization gap 0.6 - 0.5 = 0.1
  assert got["generalization_gap"] == pytest.approx(0.1)
  # label_noise_fraction: 3 of 5 labels changed = 0.6
  assert got["label_noise_fraction"] == pytest.approx(0.6)
  # memorized_fraction: of changed {1, 3, 4}, predicted as the corrupted label: 1, 4 -> 2/3
  assert got["memorized_fraction"] == pytest.approx(2 / 3)
  # corrupted_true_label_accuracy: of changed, predicted as the true label: 3 -> 1/3
  assert got["corrupted_true_label_accuracy"] == pytest.approx(1 / 3)
  # clean_subset_train_accuracy: of clean {0, 2}, right: 0 -> 1/2
  assert got["clean_subset_train_accuracy"] == pytest.approx(0.5)
  # epochs_to_fit: 30 steps / 4 steps per epoch = 7.5
  assert got["steps_to_fit"] == 30 and got["epochs_to_fit"] == pytest.approx(7.5)
  assert (got["train_loss"], got["test_loss"]) == (0.25, 1.5)


def test_no_fit_and_no_changed_label_give_none():
  got = scores.standard_scores(
      train_predictions=_PRED, test_predictions=_PRED_TEST, y_train=_Y_TRUE,
      y_train_original=_Y_TRUE, label_changed=np.zeros(5, bool), y_test=_Y_TEST,
      steps_to_fit=None, steps_per_epoch=4)
  # Against the true labels: 0=0, 2!=1, 1!=2, 0=0, 0!=1 -> 2 of 5
  assert got["train_accuracy"] == pytest.approx(0.4)
  assert got["clean_subset_train_accuracy"] == pytest.approx(0.4)
  assert got["label_noise_fraction"] == 0.0
  assert got["memorized_fraction"] is None and got["corrupted_true_label_accuracy"] is None
  assert got["steps_to_fit"] is None and got["epochs_to_fit"] is None
