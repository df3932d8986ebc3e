"""One population, every score: designs, LiRA, confident learning, outputs from elsewhere, growing K.

Known answers: the balanced design's exact held-out counts; LiRA's leave-one-model-out
Gaussians against brute force, and its AUC on synthetic populations with and
without an in/out shift; confident learning against cleanlab called directly;
Feldman & Zhang's held-out influence by hand; the external-outputs path against the
built-in scores; growing K against a fresh run; raw keys as committed literals.
"""

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from memobench import catalogue, example_table, memorization, specs
from memobench.data import datasets
from memobench.estimators import base, confident_learning, external, lira, population, runner
from memobench.estimators import subsample
from tests.conftest import REPO


# --------------------------------------------------------------------------
# Designs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("models,fraction,block", [(16, 0.7, 16), (32, 0.7, 16), (40, 0.7, 16),
                                                   (10, 0.5, 4), (64, 0.8, 16), (7, 0.7, 16)])
def test_balanced_design_holds_every_example_out_of_exactly_round_1_minus_p_k_models(
    models, fraction, block):
  inside = population.balanced_design(3, models, 250, fraction, block)
  want = int(np.floor((1 - fraction) * models + 0.5))
  assert inside.shape == (models, 250)
  assert ((~inside).sum(0) == want).all()
  # Not a fixed pattern: the examples' held-out sets differ.
  distinct = len({tuple(np.flatnonzero(~inside[:, i])) for i in range(250)})
  assert distinct > min(50, math.comb(models, want) // 2)


def test_balanced_design_nests_in_blocks_and_independent_subsets_have_p_n_examples():
  small = population.balanced_design(0, 16, 300, 0.7, 16)
  large = population.balanced_design(0, 48, 300, 0.7, 16)
  assert (large[:16] == small).all()
  # Every prefix of whole blocks is exactly balanced: R(16) = 5, R(32) = 10, R(48) = 14.
  for k, want in ((16, 5), (32, 10), (48, 14)):
    assert ((~large[:k]).sum(0) == want).all()
  assert not (population.balanced_design(1, 16, 300, 0.7, 16) == small).all()  # seed matters
  keys = subsample.model_keys(0, 8)
  independent = population.independent_design(keys, 300, 0.7)
  assert (independent.sum(1) == 210).all()
  assert (independent[3] == np.asarray(subsample.subset_mask(keys[3], 300, 210))).all()


def test_population_config_refuses_bad_values_in_one_line():
  for bad in (dict(subset_fraction=float("nan")), dict(subset_fraction=float("inf")),
              dict(subset_fraction=1.0), dict(design="lira"), dict(models=1), dict(block=0),
              dict(epochs=0), dict(group=-1), dict(evaluations=5, epochs=2)):
    with pytest.raises(specs.SpecError) as e:
      population.PopulationConfig(**bad).check()
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------
# LiRA
# --------------------------------------------------------------------------


def test_lira_gaussians_leave_the_target_model_out_exactly():
  rng = np.random.default_rng(0)
  k_models, n = 9, 12
  phi = rng.normal(size=(k_models, n))
  inside = population.balanced_design(0, k_models, n, 0.5, k_models)
  online = lira.target_scores(phi, inside, online=True, fix_variance=False)
  offline = lira.target_scores(phi, inside, online=False, fix_variance=False)
  for k in range(k_models):
    for i in range(n):
      others = np.arange(k_models) != k
      vin, vout = phi[others & inside[:, i], i], phi[others & ~inside[:, i], i]
      # plot.py: medians for the means, np.std (ddof 0) + 1e-30.
      want = (scipy.stats.norm.logpdf(phi[k, i], np.median(vin), np.std(vin) + 1e-30)
              - scipy.stats.norm.logpdf(phi[k, i], np.median(vout), np.std(vout) + 1e-30))
      assert online[k, i] == pytest.approx(want, rel=1e-9)
      assert offline[k, i] == pytest.approx(scipy.stats.norm.logcdf(
          (phi[k, i] - np.median(vout)) / (np.std(vout) + 1e-30)), rel=1e-9)
  fixed = lira.target_scores(phi, inside, online=True, fix_variance=True)
  k, i = 2, 5
  others = np.arange(k_models) != k
  sd = np.std(phi[others][inside[others]])  # every IN value but the target model's
  vin, vout = phi[others & inside[:, i], i], phi[others & ~inside[:, i], i]
  want = (scipy.stats.norm.logpdf(phi[k, i], np.median(vin), sd)
          - scipy.stats.norm.logpdf(phi[k, i], np.median(vout), sd))
  assert fixed[k, i] == pytest.approx(want, rel=1e-9)


def _synthetic(shift, models=64, n=300, seed=0):
  """phi = per-example level + shift if the model trained on the example + unit noise."""
  rng = np.random.default_rng(seed)
  inside = population.balanced_design(seed, models, n, 0.5, 16)
  phi = rng.normal(0, 2, n)[None] + shift * inside + rng.normal(size=(models, n))
  return base.Outputs(inclusion=inside, labels=np.zeros(n, np.int64),
                      margin=phi.astype(np.float16))


@pytest.mark.parametrize("estimator", [lira.ONLINE, lira.OFFLINE])
def test_lira_separates_members_with_an_in_out_shift_and_not_without(estimator):
  shifted = estimator.score(_synthetic(4.0))
  assert np.mean(shifted.score) > 0.95
  assert shifted.summary["pooled"]["auc"] > 0.95
  assert shifted.summary["pooled"]["tpr_at_fpr_0.01"] > 0.5
  null = estimator.score(_synthetic(0.0))
  assert abs(np.mean(null.score) - 0.5) < 0.03
  assert abs(null.summary["pooled"]["auc"] - 0.5) < 0.03
  assert null.summary["pooled"]["tpr_at_fpr_0.01"] < 0.03
  # Per-example AUCs near 1 and their se is finite (shrunk), smaller where separation is clean.
  assert np.isfinite(shifted.se).all() and np.mean(shifted.se) < np.mean(null.se)


def test_leaving_one_model_out_biases_the_per_example_auc_below_one_half_without_signal():
  """Why the per-example AUC cross-fits: leave-one-out fits give ~0.43 with no signal."""
  null = _synthetic(0.0)
  lam = lira.target_scores(null.margin, null.inclusion, online=True, fix_variance=True)
  loo_auc, _ = lira.per_example_auc(lam, null.inclusion)
  assert np.mean(loo_auc) < 0.46
  crossfit = lira.crossfit_scores(null.margin, null.inclusion, online=True, fix_variance=True)
  auc, _ = lira.per_example_auc(crossfit, null.inclusion, np.arange(64) % 2)
  assert abs(np.mean(auc) - 0.5) < 0.03


def test_per_example_auc_and_pooled_attack_known_answers():
  inside = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], bool)
  scores = np.array([[3.0, 1.0], [2.0, 5.0], [1.0, 2.0], [2.0, np.nan]])
  auc, se = lira.per_example_auc(scores, inside)
  # Column 0: in {3, 2} vs out {1, 2}: (1 + 1 + 1 + 0.5) / 4. Column 1: in {5} vs out {1, 2}.
  assert auc[0] == pytest.approx(0.875) and auc[1] == pytest.approx(1.0)
  assert np.isfinite(se).all() and se[1] > 0  # finite at AUC 1 (shrunk)
  # Within groups only, rows {0, 1} and {2, 3}: column 0 has only IN rows in group 0 and
  # only OUT rows in group 1, so no pairs (NaN).
  grouped, _ = lira.per_example_auc(scores, inside, np.array([0, 0, 1, 1]))
  assert np.isnan(grouped[0])
  # Column 1: group 0 compares IN 5 with OUT 1 (1 pair); group 1 has IN nan: left out.
  assert grouped[1] == pytest.approx(1.0)
  # The pooled attack: target by target, members vs non-members across examples.
  pooled = lira.pooled_attack(np.array([[2.0, 1.0], [1.0, 2.0]]),
                              np.array([[1, 0], [0, 1]], bool))
  assert pooled["auc"] == 1.0 and pooled["targets"] == 2


# --------------------------------------------------------------------------
# Confident learning, C-score, influence
# --------------------------------------------------------------------------


def _random_population(models=12, n=40, classes=4, seed=0):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(models, n, classes)) * 2
  labels = rng.integers(0, classes, n)
  inside = population.balanced_design(seed, models, n, 0.7, models)
  inside[:, 0] = True  # example 0: no held-out model
  return logits, labels, inside


def test_confident_learning_equals_cleanlab_on_the_out_of_sample_probabilities():
  cleanlab_rank = pytest.importorskip(
      "cleanlab.rank", reason="cleanlab is not installed (pip install cleanlab)")
  logits, labels, inside = _random_population()
  outputs = external.outputs_from_arrays(inclusion=inside, labels=labels, logits=logits)
  got = confident_learning.ESTIMATOR.score(outputs)
  probs = outputs.probs.astype(np.float64)
  pred = np.stack([probs[~inside[:, i], i].mean(0) for i in range(1, labels.size)])
  pred /= pred.sum(1, keepdims=True)
  want = cleanlab_rank.get_label_quality_scores(labels[1:], pred)
  assert np.isnan(got.score[0])  # no model held example 0 out
  np.testing.assert_allclose(got.score[1:], want, rtol=1e-12)
  # se: of the mean over held-out models of p_k(y_i), by hand for one example.
  p = probs[~inside[:, 5], 5, labels[5]]
  assert got.se[5] == pytest.approx(np.std(p, ddof=1) / np.sqrt(p.size))


def test_confident_learning_without_cleanlab_is_skipped_with_one_line(monkeypatch):
  import importlib.util
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "cleanlab" else real(name, *a))
  logits, labels, inside = _random_population()
  outputs = external.outputs_from_arrays(inclusion=inside, labels=labels, logits=logits)
  lines = []
  scored = runner.score_population(outputs, (confident_learning.ESTIMATOR, lira.ONLINE),
                                   lines.append)
  assert "confident_learning" not in scored.scores and "lira_online" in scored.scores
  assert lines == [scored.skipped["confident_learning"]]
  assert "cleanlab is not installed" in lines[0] and "\n" not in lines[0]


def test_heldout_influence_and_cscore_by_hand():
  inside = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], bool)
  test_correct = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 1], [0, 0, 1]], bool)
  infl = subsample.heldout_influence(inside, test_correct)
  # Training example 0: in models 0, 1 (test acc 1, 1 / 0, 1 / 1, 1), out 2, 3.
  np.testing.assert_allclose(infl["infl"][0], [1.0, 0.0, 0.0])
  np.testing.assert_allclose(infl["infl"][1], [0.0, 1.0, 0.0])
  correct = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], bool)
  outputs = base.Outputs(inclusion=inside, labels=np.zeros(2, int), correct=correct,
                         test_correct=test_correct)
  cscore = subsample.CSCORE.score(outputs)
  np.testing.assert_allclose(cscore.score, [0.5, 0.0])  # held-out accuracy
  q = (0 + 0.5) / 3
  assert cscore.se[1] == pytest.approx(np.sqrt(q * (1 - q) / 2))
  best = subsample.MAX_INFLUENCE.score(outputs)
  np.testing.assert_allclose(best.score, [1.0, 1.0])
  mem = subsample.MEM.score(outputs)
  np.testing.assert_allclose(mem.score, subsample.subsample_memorization(correct, inside)["mem"])


def test_a_users_estimator_enters_through_a_table_line_and_missing_outputs_are_said():
  def my_score(outputs):
    return base.Scores.of(outputs.margin.astype(float).mean(0))
  mine = base.Estimator(name="mean_margin", reads=("margin",), score=my_score,
                        source="a user's own")
  logits, labels, inside = _random_population()
  lines = []
  scored = runner.score_population(
      base.Outputs(inclusion=inside, labels=labels, correct=np.zeros_like(inside)),
      (subsample.MEM, mine), lines.append)
  assert set(scored.scores) == {"fz_mem"}
  assert scored.skipped["mean_margin"] == "mean_margin skipped: the outputs lack margin"
  outputs = external.outputs_from_arrays(inclusion=inside, labels=labels, logits=logits)
  scored = runner.score_population(outputs, (subsample.MEM, mine), lines.append)
  np.testing.assert_allclose(scored.scores["mean_margin"].score,
                             outputs.margin.astype(float).mean(0))
  with pytest.raises(ValueError):
    base.Estimator(name="bad", reads=("nonsense",), score=my_score, source="")


# --------------------------------------------------------------------------
# Outputs from elsewhere
# --------------------------------------------------------------------------


def test_outputs_from_logits_probs_and_margins():
  logits, labels, inside = _random_population()
  from_logits = external.outputs_from_arrays(inclusion=inside, labels=labels, logits=logits)
  z = logits.astype(np.float64)
  zy = z[:, np.arange(labels.size), labels]
  others = z.copy()
  others[:, np.arange(labels.size), labels] = -np.inf
  want = zy - scipy.special.logsumexp(others, axis=-1)
  np.testing.assert_allclose(from_logits.margin.astype(float), want, rtol=2e-3, atol=2e-3)
  assert (from_logits.correct == (z.argmax(-1) == labels)).all()
  from_probs = external.outputs_from_arrays(inclusion=inside, labels=labels,
                                            probs=scipy.special.softmax(z, -1))
  np.testing.assert_allclose(from_probs.margin, want, rtol=1e-9, atol=1e-9)
  assert (from_probs.correct == from_logits.correct).all()
  lines = []
  from_margin = external.outputs_from_arrays(inclusion=inside.astype(int), labels=labels,
                                             margin=want, log=lines.append)
  assert (from_margin.correct == (want > 0)).all() and "margin > 0" in lines[0]
  with pytest.raises(base.EstimatorError, match="logits must have shape"):
    external.outputs_from_arrays(inclusion=inside, labels=labels, logits=logits[:, :5])
  with pytest.raises(base.EstimatorError, match="inclusion must be bool"):
    external.outputs_from_arrays(inclusion=inside * 2, labels=labels, logits=logits)


def _spec(n=200):
  spec, _ = specs.with_overrides(catalogue.get("digits_partial40"), [
      f"dataset.train_size={n}", "budget.batch_size=32"])
  return spec


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
  """16 balanced models, grown to 32 in the same workdir; and a fresh 32-model population."""
  root = tmp_path_factory.mktemp("population")
  spec = _spec()
  config = population.PopulationConfig(models=16, epochs=3, design="balanced", block=16,
                                       evaluations=3)
  quiet = lambda _: None  # noqa: E731
  first = memorization.run(spec, config, str(root / "grow"), log=quiet)
  config32 = population.PopulationConfig(**{**config.__dict__, "models": 32})
  second = memorization.run(spec, config32, str(root / "grow"), log=quiet)
  fresh = memorization.run(spec, config32, str(root / "fresh"), log=quiet)
  return root, spec, first, second, fresh


def test_growing_k_trains_only_the_new_models_and_equals_a_fresh_run(grown):
  root, _, first, second, fresh = grown
  assert first["population"]["models_trained"] == 16
  assert second["population"]["models_trained"] == 16
  assert second["population"]["models_reused"] == 16
  assert fresh["population"]["models_trained"] == 32
  assert second["population"]["held_out_per_example"] == {"min": 10, "max": 10, "mean": 10.0}
  with np.load(root / "grow" / population.FILE) as g, \
       np.load(root / "fresh" / population.FILE) as f:
    for name in ("inclusion", "correct", "margin", "probs", "test_correct", "fit_epoch"):
      np.testing.assert_array_equal(g[name], f[name], err_msg=name)
  with np.load(root / "grow" / memorization.ESTIMATORS_FILE) as g, \
       np.load(root / "fresh" / memorization.ESTIMATORS_FILE) as f:
    assert set(g.files) == set(f.files) and {"lira_online", "cscore", "fz_mem"} <= set(g.files)
    for name in g.files:
      np.testing.assert_array_equal(g[name], f[name], err_msg=name)
  grow_table = example_table.read(root / "grow" / example_table.SCORES_FILE)
  fresh_table = example_table.read(root / "fresh" / example_table.SCORES_FILE)
  assert list(grow_table["example_key"]) == list(fresh_table["example_key"])
  np.testing.assert_array_equal(grow_table["score"], fresh_table["score"])
  # The fit record is per model; an under-trained 3-epoch model is censored, and said so.
  fit = second["population"]["fit"]
  assert fit["models"] == 32 and fit["censored_models"] == 32 - fit["fitted_models"]


def test_external_outputs_reproduce_the_built_in_scores(grown, tmp_path):
  root, spec, _, _, fresh = grown
  summary = memorization.run_external(str(root / "fresh" / population.FILE), str(tmp_path),
                                      spec, log=lambda _: None)
  with np.load(root / "fresh" / memorization.ESTIMATORS_FILE) as built, \
       np.load(tmp_path / memorization.ESTIMATORS_FILE) as ext:
    assert set(built.files) == set(ext.files)
    for name in built.files:
      np.testing.assert_array_equal(built[name], ext[name], err_msg=name)
  for name, entry in summary["estimators"].items():
    if name != "skipped":
      assert entry["auc_vs_corruption"] == fresh["estimators"][name]["auc_vs_corruption"]
  built_table = example_table.read(root / "fresh" / example_table.SCORES_FILE)
  ext_table = example_table.read(tmp_path / example_table.SCORES_FILE)
  built_rows = built_table[built_table["estimator"].str.startswith("estimators.")]
  for column in ("example_key", "raw_key", "source_index", "estimator", "label",
                 "original_label", "label_changed"):
    assert list(built_rows[column]) == list(ext_table[column]), column
  np.testing.assert_array_equal(built_rows["score"], ext_table["score"])


def test_memorization_command_scores_outputs_and_refuses_bad_input_in_one_line(tmp_path):
  logits, labels, inside = _random_population()
  np.savez(tmp_path / "mine.npz", inclusion=inside, labels=labels, logits=logits)
  ok = subprocess.run([sys.executable, "-m", "memobench.memorization",
                       f"--outputs={tmp_path / 'mine.npz'}", f"--workdir={tmp_path / 'w'}"],
                      capture_output=True, text=True, cwd=REPO, timeout=300)
  assert ok.returncode == 0, ok.stderr[-2000:]
  summary = json.loads((tmp_path / "w" / memorization.SUMMARY_FILE).read_text())
  assert summary["source"]["models"] == 12 and "lira_online" in summary["estimators"]
  np.savez(tmp_path / "bad.npz", inclusion=inside, logits=logits)
  for args, message in (([f"--outputs={tmp_path / 'bad.npz'}"], "lacks the array 'labels'"),
                        ([f"--outputs={tmp_path / 'none.npz'}"], "no such file"),
                        (["--spec=digits_partial40", "--subset_fraction=nan"],
                         "subset_fraction must be in (0, 1)"),
                        (["--spec=digits_partial40", "--subset_fraction=inf"],
                         "subset_fraction must be in (0, 1)"),
                        (["--spec=digits_partial40", "--models=100000000"], "GiB")):
    out = subprocess.run([sys.executable, "-m", "memobench.memorization", *args,
                          f"--workdir={tmp_path / 'x'}"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 2, (args, out.stderr[-2000:])
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


# --------------------------------------------------------------------------
# Cross-tool keys
# --------------------------------------------------------------------------


def test_raw_keys_are_stable_across_preprocessing_and_computable_from_the_source():
  ds = datasets.load(specs.DatasetSpec("digits"))
  # Committed literals: the first three training examples of digits.
  assert list(ds.source_index_train[:3]) == [1109, 940, 192]
  assert example_table.raw_key(ds.raw_train[:3], ds.y_train[:3]) == [
      "28627983dc53a63e", "4f1c3a57ce9e7d3a", "73922db1d583638a"]
  # Another tool computes them from scikit-learn's arrays alone.
  from sklearn.datasets import load_digits
  source = load_digits()
  i = 1109
  digest = hashlib.sha256(b"memobench.raw.v1\0<f8\0" + b"64\0"
                          + source.data[i].astype("<f8").tobytes() + b"\0"
                          + str(source.target[i]).encode()).hexdigest()[:16]
  assert digest == "28627983dc53a63e"
  # A preprocessing change moves example_key, not raw_key.
  rescaled = ds.x_train[:3] * 2.0 - 1.0
  assert example_table.example_key(rescaled, ds.y_train[:3]) != example_table.example_key(
      ds.x_train[:3], ds.y_train[:3])
  small = datasets.load(specs.DatasetSpec("digits", train_size=3))
  assert example_table.raw_key(small.raw_train, small.y_train) == example_table.raw_key(
      ds.raw_train[:3], ds.y_train[:3])
  columns = example_table.dataset_columns(ds, ds.y_train, indices=np.array([2, 0]))
  assert columns["raw_keys"] == ["73922db1d583638a", "28627983dc53a63e"]
  assert list(columns["source_indices"]) == [192, 1109]


def test_noise_files_hold_the_runs_corrupted_labels_with_the_spec_hash(tmp_path):
  import pandas as pd
  import pyarrow.parquet as pq
  from memobench import noise_files
  from memobench import workload as workload_lib
  spec = catalogue.get("digits_partial40")
  want = workload_lib.resolve(spec).corrupted_data(3)
  npy = noise_files.export(spec, 3, str(tmp_path / "labels.npy"))
  np.testing.assert_array_equal(np.load(npy), np.asarray(want.y_train))
  meta = json.loads((tmp_path / "labels.npy.json").read_text())
  assert meta["spec_hash"] == specs.spec_hash(spec) and meta["seed"] == 3
  assert meta["label_noise_fraction"] == pytest.approx(float(np.mean(want.label_changed)))
  assert meta["source_index"][:3] == [1109, 940, 192]
  parquet = noise_files.export(spec, 3, str(tmp_path / "labels.parquet"))
  frame = pd.read_parquet(parquet)
  np.testing.assert_array_equal(frame["label"], np.asarray(want.y_train))
  np.testing.assert_array_equal(frame["label_changed"], np.asarray(want.label_changed))
  assert (frame["spec_hash"] == specs.spec_hash(spec)).all()
  assert frame["raw_key"][0] == "28627983dc53a63e"
  provenance = json.loads(pq.read_schema(parquet).metadata[b"memobench"])
  assert provenance["spec_hash"] == specs.spec_hash(spec)
  out = subprocess.run([sys.executable, "-m", "memobench.noise_files", "--spec=digits_partial40",
                        f"--out={tmp_path / 'labels.txt'}"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
  assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
  assert "--out must end in .npy or .parquet" in out.stderr
