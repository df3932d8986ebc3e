"""The loop's typed records: the stop decision as checkpoints hold it, and resumable trackers."""

import json

import numpy as np

from memobench import workload
from memobench.training import loop


def test_stop_record_is_the_dict_checkpoints_held_before_it_was_typed():
  # The loop record's "finished" entry, as the loop wrote it when it was a dict.
  legacy = {"status": "completed", "steps_to_fit": 310, "time_to_fit_s": 1.25}
  stop = loop.Stop.from_record(json.loads(json.dumps(legacy)))
  assert stop == loop.Stop(workload.COMPLETED, 310, 1.25)
  assert json.dumps(stop.record()) == json.dumps(legacy)  # same keys, same order
  budget = {"status": "budget_exhausted", "steps_to_fit": None, "time_to_fit_s": None}
  assert loop.Stop.from_record(budget).record() == budget
  assert loop.Stop.from_record(None) is None  # a checkpoint taken while the run goes on


class _Counter:
  def __init__(self):
    self.n = np.zeros((), np.int64)

  def __call__(self, evaluation):
    self.n += 1

  def checkpoint_state(self):
    return {"n": self.n}

  def restore_checkpoint_state(self, tree):
    self.n = np.asarray(tree["n"], np.int64)


def test_resumable_is_a_declared_protocol():
  assert isinstance(_Counter(), loop.Resumable)
  assert not isinstance(lambda evaluation: None, loop.Resumable)

  class HalfResumable:
    def checkpoint_state(self):
      return {}
  assert not isinstance(HalfResumable(), loop.Resumable)
