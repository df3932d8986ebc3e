"""arXiv 2112.08798 pieces: per-evaluation self-influence, removal sets, groups, the experiment."""

import os
import types

import jax
import numpy as np
import pytest

from memobench import catalogue, prng, specs, workload
from memobench.metrics import turnover
from memobench.models import mlp
from experiments import cells, driver, turnover2021_memorization as t21
from tests.conftest import REPO

FIXTURE = os.path.join(REPO, "tests", "data", "experiments",
                       "turnover2021_memorization.records.json.gz")


def test_kept_indices_remove_exactly_the_intended_examples():
  scores = np.array([0.5, -1.0, 3.0, 0.5, 2.0, 0.0, 9.0, 0.5, -2.0, 1.0])
  # 30% of 10 = 3: the three highest (6, 2, 4) or the three lowest (8, 1, 5).
  np.testing.assert_array_equal(t21.kept_indices(scores, 0.3, "difficult", 0),
                                [0, 1, 3, 5, 7, 8, 9])
  np.testing.assert_array_equal(t21.kept_indices(scores, 0.3, "easy", 0),
                                [0, 2, 3, 4, 6, 7, 9])
  # Ties (0.5 at 0, 3, 7) are broken by index: easy 50% removes 8 1 5 0 3, not 7.
  np.testing.assert_array_equal(t21.kept_indices(scores, 0.5, "easy", 0), [2, 4, 6, 7, 9])
  rand = t21.kept_indices(scores, 0.2, "random", 4)
  assert len(rand) == 8 and len(set(rand)) == 8 and np.all(np.diff(rand) > 0)
  np.testing.assert_array_equal(rand, t21.kept_indices(scores, 0.2, "random", 4))  # pure
  assert any(not np.array_equal(rand, t21.kept_indices(scores, 0.2, "random", s))
             for s in range(5, 10))
  np.testing.assert_array_equal(t21.kept_indices(scores, 0.0, "difficult", 0), np.arange(10))
  with pytest.raises(ValueError):
    t21.kept_indices(scores, 0.1, "hardest", 0)


def test_groups_peaks_and_halving_known_answers():
  masks = t21.tercile_groups(np.array([5.0, 1.0, 3.0, 0.0, 4.0, 2.0]))
  np.testing.assert_array_equal(np.nonzero(masks["easy"])[0], [1, 3])
  np.testing.assert_array_equal(np.nonzero(masks["medium"])[0], [2, 5])
  np.testing.assert_array_equal(np.nonzero(masks["difficult"])[0], [0, 4])
  by_eval = np.array([[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
  np.testing.assert_allclose(t21.group_curve(by_eval, [True, False, True]), [2.0, 3.0])
  steps = np.array([10, 20, 30, 40])
  assert t21.peak_step(steps, np.array([0.1, 0.7, 0.7, 0.2])) == 20  # the first maximum
  assert t21.halving_step(steps, np.array([2.0, 1.5, 0.9, 0.1])) == 30
  assert t21.halving_step(steps, np.array([2.0, 1.5, 1.2, 1.1])) is None


def test_tracker_rows_are_the_self_influence_of_each_evaluations_parameters():
  """Each row equals turnover.self_influence on that evaluation's parameters; it resumes."""
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      "analysis.turnover_dropout=0.5", "analysis.turnover_every_eval=true",
      "budget.max_steps=30", "budget.eval_every_steps=10", "budget.batch_size=8"])
  module = mlp.MLP(3, (16,), dropout=0.5)
  rs = np.random.RandomState(0)
  x, y = rs.randn(40, 5).astype(np.float32), rs.randint(0, 3, 40).astype(np.int32)
  tracker = turnover.SelfInfluenceOverTraining(spec, x, y, capacity=3)
  params = [module.init(jax.random.key(s), x[:1], train=False)["params"] for s in range(2)]
  for step, p in zip((10, 20), params):
    tracker(types.SimpleNamespace(step=step, model=lambda p=p: (module, p, {})))
  key = turnover.turnover_key(prng.run_key(spec.seed))
  arrays = tracker.arrays()
  np.testing.assert_array_equal(arrays["eval_steps"], [10, 20])
  for row, p in enumerate(params):
    # The same compiled evaluator (one compilation), fed this evaluation's parameters.
    direct = turnover.self_influence(module, p, {}, x, y, key, 0.5, evaluate=tracker._evaluate)
    np.testing.assert_allclose(arrays["self_influence_loss_by_eval"][row],
                               direct["self_influence_loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["own_loss_by_eval"][row], direct["own_loss"], rtol=1e-6)
  assert np.abs(arrays["self_influence_loss_by_eval"]).max() > 0  # masks differ per example
  fresh = turnover.SelfInfluenceOverTraining(spec, x, y, capacity=3)
  fresh.restore_checkpoint_state(tracker.checkpoint_state())
  for k, v in tracker.arrays().items():
    np.testing.assert_array_equal(fresh.arrays()[k], v)
  tracker(types.SimpleNamespace(step=30, model=lambda: (module, params[0], {})))
  with pytest.raises(ValueError, match="more than 3 evaluations"):
    tracker(types.SimpleNamespace(step=40, model=lambda: (module, params[0], {})))


def test_turnover_every_eval_needs_turnover_dropout_and_is_hashed_only_when_set():
  spec = catalogue.get("digits_clean")
  bad, _ = specs.with_overrides(spec, ["analysis.turnover_every_eval=true"])
  with pytest.raises(specs.SpecError, match="needs analysis.turnover_dropout"):
    workload.validate(bad)
  assert specs.spec_hash(spec) == specs.spec_hash(
      specs.with_overrides(spec, ["analysis.turnover_every_eval=false"])[0])


def test_groups_cell_reads_each_runs_tracks_known_answer(tmp_path):
  """The phase (i) cell: per group and seed, from the runs' turnover.npz (3 evaluations, 6
  examples; the partial run's examples 4 and 5 corrupted)."""
  steps = np.array([10, 20, 30])
  own = np.array([[4.0, 4.0, 2.0, 2.0, 8.0, 8.0],
                  [1.0, 1.0, 2.0, 2.0, 6.0, 6.0],
                  [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]])
  si = np.array([[0.0, 0.0, 1.0, 1.0, 2.0, 2.0],
                 [0.0, 0.0, 3.0, 3.0, 9.0, 9.0],
                 [0.0, 0.0, 2.0, 2.0, 5.0, 5.0]])
  changed = np.array([0, 0, 0, 0, 1, 1])
  inputs = {}
  for corruption in t21.RUNS.values():
    folder = tmp_path / corruption / "seed0"
    folder.mkdir(parents=True)
    np.savez(folder / "turnover.npz", eval_steps=steps, own_loss_by_eval=own,
             self_influence_loss_by_eval=si, self_influence_loss=si[-1], label_changed=changed)
    inputs[corruption] = cells.Input(corruption, [{"spec": {"resolved": {"seed": 0}}}],
                                     str(tmp_path / corruption), "h")
  ctx = cells.Context("groups", str(tmp_path / "out"), inputs)
  out = t21.compute_groups({}, ctx)
  # Terciles of the final self-influence (0, 0, 2, 2, 5, 5): easy {0, 1}, difficult {4, 5}.
  assert out["real.easy"]["size"] == [2] and out["real.easy"]["si"] == [[0.0, 0.0, 0.0]]
  assert out["real.difficult"]["peak"] == [20]            # 2 -> 9 -> 5
  assert out["real.easy"]["halving"] == [20]              # 4 -> 1 < 2
  assert out["real.difficult"]["halving"] == [30]         # 8 -> 6 -> 1 < 4
  assert out["real.all"]["loss"] == [[pytest.approx(14 / 3), 3.0, pytest.approx(2 / 3)]]
  assert out["partial.corrupted"]["seeds"] == [0] and out["partial.corrupted"]["size"] == [2]
  assert out["partial.clean"]["peak"] == [20] and "real.clean" not in out


@pytest.fixture(scope="module")
def recorded():
  """The --quick run's recorded cells and the summary made of them (no training)."""
  config, records, _ = driver.load_records(t21.EXPERIMENT, FIXTURE)
  return config, records, t21.summarize(config, records)


def test_turnover2021_recorded_summary(recorded):
  config, records, summary = recorded
  assert config.quick and set(records) == {c.key for c in t21.grid(config)}
  groups = summary["groups"]
  assert {"real.easy", "real.difficult", "partial.clean", "partial.corrupted",
          "random.all"} <= set(groups)
  assert groups["real.easy"]["peak_step"]["mean"] in (11, 22, 33)
  assert summary["curves"]["real.all"]["step"] == [11, 22, 33]
  removal = summary["removal"]
  assert set(removal) == {"0", "10"} and set(removal["10"]) == {"difficult", "easy", "random"}
  for cell in removal["10"].values():
    assert 0.0 < cell["test_accuracy"]["mean"] <= 1.0
  assert records["removal_difficult_k10"]["kept_examples"] == 1437 - round(0.1 * 1437)
  assert records["removal_none_k0"]["kept_examples"] == 1437
  # Each kind removes other examples.
  assert len({records[f"removal_{k}_k10"]["kept_sha"][0] for k in t21.KINDS}) == 3
  # Per-seed values beside every statistic (issue 24 item 10).
  assert removal["10"]["difficult"]["test_accuracy"]["values"] == (
      records["removal_difficult_k10"]["test_accuracy"])
  assert groups["real.all"]["loss_halving_step"]["values"] == records["groups"]["real.all"]["halving"]
  # Training accuracy in evaluation mode and under the turn-over masks, from each run's record.
  by_mask = summary["train_accuracy_by_mask"]["random"]
  (run,) = records["randlabels"]
  assert by_mask["eval_mode"]["values"] == [run["metrics"]["train_accuracy"]]
  assert by_mask["own_mask"]["values"] == [
      run["memorization"]["turnover"]["own_mask_accuracy"]["all"]]
  words = [v["verdict"] for v in summary["verdicts"]]
  assert len(words) == 3 and set(words) <= {"agrees", "partly", "inconclusive", "disagrees"}
  assert "evaluation mode" in summary["verdicts"][0]["departures"][0]


def test_a_tracked_runs_last_row_is_its_final_self_influence(tmp_path):
  """In a real run (in-process, 22 steps), turnover.npz's last row is the final score the
  metric reports: the same parameters, measured at the last evaluation."""
  from memobench import run  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      *t21.TRACKED, "budget.max_steps=22", "budget.eval_every_steps=11"])
  run.run_spec(spec, str(tmp_path), log=lambda _: None, checkpoint_every=0)
  tracks = t21.load_tracks(str(tmp_path))
  np.testing.assert_array_equal(tracks["eval_steps"], [11, 22])
  with np.load(tmp_path / "turnover.npz") as z:
    np.testing.assert_allclose(z["self_influence_loss_by_eval"][-1], z["self_influence_loss"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z["own_loss_by_eval"][-1], z["own_loss"], rtol=1e-6)
