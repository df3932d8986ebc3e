"""--overwrite replaces a workdir's previous run whole (issue 27, item 10).

A run of another spec on the same workdir with --overwrite (every experiment
passes it) used to leave the old run's dynamics.npz, scores.parquet and
TensorBoard events beside the new result.json.
"""

import os

import numpy as np

from memobench import catalogue, checkpoint, example_table, run, specs, tb_events

TINY = ["dataset.train_size=300", "budget.max_epochs=1", "budget.batch_size=50",
        "analysis.effective_rank=false"]


def _spec(*extra):
  return specs.with_overrides(catalogue.get("digits_partial40"), [*TINY, *extra])[0]


def _events(workdir):
  folder = workdir / tb_events.TB_DIR
  return sorted(os.listdir(folder)) if folder.exists() else []


def test_overwrite_removes_the_previous_runs_artifacts(tmp_path):
  first = _spec()
  run.run_spec(first, str(tmp_path), log=lambda _: None, checkpoint_every=0)
  with np.load(tmp_path / "dynamics.npz") as z:  # the npz says whose arrays it holds
    assert str(z["spec_hash"]) == specs.spec_hash(first)
  assert (tmp_path / example_table.SCORES_FILE).exists() and len(_events(tmp_path)) == 1
  # Another spec without per-example arrays: nothing of the first run may remain.
  second = _spec("analysis.dynamics=false")
  lines = []
  run.run_spec(second, str(tmp_path), overwrite=True, log=lines.append, checkpoint_every=0)
  assert lines[0] == ("--overwrite: removed the previous run's result.json, metrics.jsonl, "
                      "scores.parquet, tensorboard, dynamics.npz")
  assert sorted(os.listdir(tmp_path)) == [".memobench.lock", "metrics.jsonl", "result.json",
                                          "tensorboard"]
  assert len(_events(tmp_path)) == 1


def test_overwrite_keeps_what_a_resumed_run_continues(tmp_path):
  spec = _spec()
  run.run_spec(spec, str(tmp_path), log=lambda _: None, checkpoint_every=3)
  before = _events(tmp_path)
  lines = []
  run.run_spec(spec, str(tmp_path), overwrite=True, log=lines.append, checkpoint_every=3)
  assert not [l for l in lines if "removed" in l]
  assert any("resumed from the checkpoint of step 6" in l for l in lines), lines
  assert set(before) <= set(_events(tmp_path))
  # Its checkpoints are its own; another seed's are not.
  own = checkpoint.Checkpointer(str(tmp_path), 3, identity={"spec_hash": specs.spec_hash(spec),
                                                            "seed": 0})
  other = checkpoint.Checkpointer(str(tmp_path), 3, identity={"spec_hash": specs.spec_hash(spec),
                                                              "seed": 1})
  try:
    assert own.holds_own_checkpoint() and not other.holds_own_checkpoint()
  finally:
    own.close()
    other.close()
