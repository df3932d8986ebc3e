"""Per-example learning dynamics: when each training example is learned, and forgotten.

Fed by the training loop's `on_eval` callback (training/loop.py), which hands over
the predictions on the whole training set at every evaluation. For each
training example i, against the label it is trained on:

  first_learned_step   the first evaluation step at which i is predicted as its
                       training label; -1 if never. Toneva et al.'s "first
                       learned" (2019, "An empirical study of example
                       forgetting during deep neural network learning", ICLR
                       2019; `first_learned` in their released code). Not Arpit
                       et al. 2017's Fig. 1, which is the per-example
                       misclassification rate after one epoch over many runs.
  stable_learned_step  the step from which i stays predicted correctly through
                       the last evaluation; -1 if it is wrong at the end (for
                       an example right at the end, Toneva et al.'s
                       `presentations_needed_to_learn`).
  forgetting_events    how many times i went from correct at one evaluation to
                       wrong at the next (Toneva et al. 2019), the raw count:
                       0 for an example never learned.
  forgetting_score     the count Toneva et al.'s released code sorts examples by
                       (`sort_examples_by_forgetting`): forgetting_events, except
                       that an example never learned gets the maximum, the
                       number of presentations (here: of evaluations), so never
                       learned examples sort as the most forgettable. With E
                       evaluations a learned example is forgotten at most
                       floor(E / 2) < E times, so they sort strictly last.
  stays_learned        learned at some evaluation and never forgotten afterwards
                       (Toneva et al.'s "unforgettable" examples).
  correct_fraction     the fraction of evaluations at which i was correct: its
                       cumulative training accuracy, Jiang et al. 2021's best
                       learning-speed proxy for the C-score ("Characterizing
                       structural regularities of labeled data in
                       overparameterized models", ICML 2021).

Resolution: Toneva et al. count transitions at every minibatch presentation;
here they are counted between consecutive full-training-set evaluations
(every `budget.eval_every_steps` steps), so forgetting between two evaluations
that recovers by the next one is not seen. The state is O(N): nothing is
stored per evaluation; forgetting_score and correct_fraction are derived from
it when the run ends.

The metric `learning_dynamics` (on with analysis.dynamics) reports `summary`
and writes `arrays` to workdir/dynamics.npz.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memobench import runtime, specs
from memobench.metrics import base, stats


class LearningDynamics:
  """Accumulates per-example learning events, one evaluation at a time."""

  def __init__(self, y_train: np.ndarray):
    self.y_train = np.asarray(y_train)
    n = self.y_train.shape[0]
    self.first_learned_step = np.full(n, -1, np.int64)
    self.last_learned_step = np.full(n, -1, np.int64)
    self.forgetting_events = np.zeros(n, np.int32)
    self.correct_count = np.zeros(n, np.int32)
    self.correct = np.zeros(n, bool)
    self.evaluations = 0
    self.last_step = -1

  def update(self, step: int, train_predictions: np.ndarray) -> None:
    """Records one evaluation at `step` with predictions on the whole training set."""
    now = np.asarray(train_predictions) == self.y_train
    learned = now & ~self.correct  # wrong (or never evaluated) before, right now
    self.first_learned_step[learned & (self.first_learned_step < 0)] = step
    self.last_learned_step[learned] = step
    if self.evaluations:
      self.forgetting_events += (self.correct & ~now).astype(np.int32)
    self.correct_count += now.astype(np.int32)
    self.correct = now
    self.evaluations += 1
    self.last_step = int(step)

  def on_eval(self, evaluation) -> None:
    """The training loop's `on_eval` callback."""
    self.update(evaluation.step, evaluation.train_predictions)

  __call__ = on_eval

  # The resumable-tracker protocol of the training loop: fixed-shape arrays saved with
  # each checkpoint, so that a resumed run counts exactly as an uninterrupted one.
  def checkpoint_state(self) -> dict[str, np.ndarray]:
    return {"first_learned_step": self.first_learned_step,
            "last_learned_step": self.last_learned_step,
            "forgetting_events": self.forgetting_events,
            "correct_count": self.correct_count, "correct": self.correct,
            "evaluations": np.asarray(self.evaluations, np.int64),
            "last_step": np.asarray(self.last_step, np.int64)}

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    for name in ("first_learned_step", "last_learned_step", "forgetting_events",
                 "correct_count", "correct"):
      setattr(self, name, np.array(tree[name], dtype=getattr(self, name).dtype))
    self.evaluations = int(tree["evaluations"])
    self.last_step = int(tree["last_step"])

  def forgetting_score(self) -> np.ndarray:
    """Toneva et al.'s sorting score: forgetting events; never learned: the evaluations."""
    never = self.first_learned_step < 0
    return np.where(never, self.evaluations, self.forgetting_events).astype(np.int32)

  def arrays(self) -> dict[str, np.ndarray]:
    """Per-example arrays (for an .npz)."""
    learned = self.first_learned_step >= 0
    stays = learned & (self.forgetting_events == 0)
    return {
        "first_learned_step": self.first_learned_step,
        "stable_learned_step": np.where(self.correct, self.last_learned_step, -1),
        "forgetting_events": self.forgetting_events,
        "forgetting_score": self.forgetting_score(),
        "stays_learned": stays,
        "correct_fraction": self.correct_count / max(self.evaluations, 1),
        "final_correct": self.correct,
    }

  def summary(self, corrupted: np.ndarray, steps_per_epoch: int) -> dict[str, Any]:
    """Summaries over all, corrupted and clean training examples."""
    corrupted = np.asarray(corrupted, bool)
    a = self.arrays()
    first = a["first_learned_step"].astype(np.float64)
    learned = first >= 0
    first_epoch = np.where(learned, first / steps_per_epoch, np.nan)
    stable = a["stable_learned_step"].astype(np.float64)
    stable_epoch = np.where(stable >= 0, stable / steps_per_epoch, np.nan)
    # For the AUC, examples never (stably) learned rank after every learned one.
    late = self.last_step + 1
    return {
        "evaluations": self.evaluations,
        "first_learned_epoch_mean": stats.split_summary(first_epoch, corrupted),
        "stable_learned_epoch_mean": stats.split_summary(stable_epoch, corrupted),
        "never_learned_fraction": stats.split_summary(~learned, corrupted),
        "stays_learned_fraction": stats.split_summary(a["stays_learned"], corrupted),
        "forgetting_events_mean": stats.split_summary(a["forgetting_events"], corrupted),
        "forgotten_at_least_once_fraction": stats.split_summary(
            a["forgetting_events"] > 0, corrupted),
        # AUC of the learning time at separating corrupted from clean examples
        # (corrupted examples learned later score higher); None without corruption.
        "learning_time_auc": stats.roc_auc(np.where(stable >= 0, stable, late), corrupted),
        # Toneva et al.'s convention: never learned examples count as the most
        # forgettable (forgetting_score), not as unforgettable (raw count 0).
        "forgetting_events_auc": stats.roc_auc(a["forgetting_score"], corrupted),
        "cumulative_accuracy_mean": stats.split_summary(a["correct_fraction"], corrupted),
        # Jiang et al. 2021: a low cumulative training accuracy marks an atypical
        # (here: corrupted) example; the AUC of 1 - correct_fraction.
        "cumulative_accuracy_auc": stats.roc_auc(1.0 - a["correct_fraction"], corrupted),
    }


def _tracker(spec: specs.Spec, data) -> LearningDynamics:
  del spec
  # Tracked even when analysis.dynamics is off (O(N) per evaluation), so that the
  # checkpointed tracker state has the same structure for every spec.
  return LearningDynamics(runtime.fetch(data.y_train))


def _finish(context: base.Context) -> base.Result:
  tracker = context.tracker
  section = tracker.summary(context.corrupted, context.steps_per_epoch)
  return base.Result(section, tracker.arrays(),
                     ("learning-time AUC", section["learning_time_auc"]))


METRIC = base.Metric(
    section="learning_dynamics", fields=("analysis.dynamics",),
    enabled=lambda spec: spec.analysis.dynamics, finish=_finish, timing_key=None,
    tracker=_tracker, arrays_file="dynamics.npz")
