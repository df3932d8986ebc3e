"""Arpit et al. 2017: the Gini coefficient, loss sensitivity, the randinput corruption, --quick."""

import dataclasses
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import catalogue, metrics, prng, specs, workload
from memobench.data import corruptions
from memobench.metrics import loss_sensitivity as ls
from tests.test_experiments import recorded


def _pairwise_gini(v):
  v = np.asarray(v, np.float64)
  return sum(abs(a - b) for a, b in itertools.product(v, v)) / (2 * len(v) ** 2 * v.mean())


def test_gini_of_known_vectors():
  assert ls.gini([3.0, 3.0, 3.0, 3.0]) == 0.0
  assert ls.gini(np.zeros(7)) == 0.0          # nothing to be unequal about
  for n in (1, 2, 5, 100):                    # one nonzero value of n: (n - 1) / n
    v = np.zeros(n)
    v[n // 2] = 4.2
    assert ls.gini(v) == pytest.approx((n - 1) / n, abs=1e-12)
  # Ties: two zeros and two ones -> sum|xi-xj| = 8 over 2 * 16 * 0.5.
  assert ls.gini([1, 0, 1, 0]) == pytest.approx(0.5, abs=1e-12)
  assert ls.gini([2, 2, 2, 0, 0, 0, 0, 0]) == pytest.approx(5 / 8, abs=1e-12)
  # A 2-D array is flattened; order does not matter; scale does not matter.
  rng = np.random.default_rng(0)
  v = np.round(rng.exponential(size=40), 1)   # rounding makes ties
  assert ls.gini(v) == pytest.approx(_pairwise_gini(v), abs=1e-12)
  assert ls.gini(v[::-1].reshape(8, 5) * 7) == pytest.approx(ls.gini(v), abs=1e-12)
  assert np.isnan(ls.gini([]))
  with pytest.raises(ValueError):
    ls.gini([1.0, -0.5])


class _Linear(nn.Module):
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, *, train: bool):
    del train
    return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


def test_loss_sensitivity_of_a_linear_softmax_model_by_hand():
  # CE(Wx + b, y) has d/dx = W^T (softmax(Wx + b) - onehot(y)); g_x is its l1 norm.
  rng = np.random.default_rng(1)
  n, d, k = 1100, 4, 3                        # more than one evaluation chunk (1024)
  x = rng.normal(size=(n, 2, 2)).astype(np.float32)
  y = rng.integers(0, k, n)
  module = _Linear(k)
  params = module.init(jax.random.key(0), jnp.zeros((1, 2, 2)), train=False)["params"]
  w = np.asarray(params["Dense_0"]["kernel"], np.float64)   # (d, k): logits = x @ w + b
  b = np.asarray(params["Dense_0"]["bias"], np.float64)
  logits = x.reshape(n, d).astype(np.float64) @ w + b
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  expected = np.abs((p - np.eye(k)[y]) @ w.T).sum(1)
  got = ls.loss_sensitivity(module, params, {}, x, y)
  assert got.shape == (n,)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
  # An awkward case: a model that ignores its input has g_x = 0 and Gini 0.
  zero = jax.tree.map(jnp.zeros_like, params)
  assert np.all(ls.loss_sensitivity(module, zero, {}, x, y) == 0)
  pc = ls.per_class(expected, y, 4)           # class 3 has no example
  assert pc["mean"][3] is None and pc["gini"][3] is None
  assert pc["mean"][1] == pytest.approx(expected[y == 1].mean())


def test_tracker_averages_over_evaluations_and_resumes():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(50, 4)).astype(np.float32)
  y = rng.integers(0, 3, 50)
  module = _Linear(3)
  params = [module.init(jax.random.key(s), jnp.zeros((1, 4)), train=False)["params"]
            for s in range(3)]
  ev = lambda step, p: type("Ev", (), {"step": step, "model": lambda self: (module, p, {})})()
  tracker = ls.SensitivityOverTraining(x, y, capacity=4)
  tracker(ev(10, params[0]))
  tracker(ev(20, params[1]))
  resumed = ls.SensitivityOverTraining(x, y, capacity=4)
  resumed.restore_checkpoint_state(tracker.checkpoint_state())
  for t in (tracker, resumed):
    t(ev(30, params[2]))
  gs = [ls.loss_sensitivity(module, p, {}, x, y) for p in params]
  np.testing.assert_allclose(resumed.mean(), np.mean(gs, 0), rtol=1e-6)
  assert [r[0] for r in resumed.curve()] == [10, 20, 30]
  assert resumed.curve()[2][1] == pytest.approx(ls.gini(gs[2]))
  with pytest.raises(ValueError, match="more than 4"):
    for step in (40, 50):
      resumed(ev(step, params[0]))


def test_the_flag_is_hashed_only_when_set_and_registered():
  spec = catalogue.get("digits_clean")
  on = dataclasses.replace(spec, analysis=dataclasses.replace(spec.analysis,
                                                              loss_sensitivity=True))
  # Off (the default) it leaves every spec's hash as it was; on, it enters the hash.
  assert "loss_sensitivity" not in specs._hashed_content(spec)["analysis"]  # pylint: disable=protected-access
  assert specs.spec_hash(on) != specs.spec_hash(spec)
  assert [m.section for m in metrics.enabled(on)][-1] == "loss_sensitivity"
  assert "loss_sensitivity" not in [m.section for m in metrics.enabled(spec)]


def _randinput_spec(level, train_size=None):
  spec = catalogue.get("digits_clean")
  return dataclasses.replace(spec, corruption=specs.CorruptionSpec("randinput", level),
                             dataset=dataclasses.replace(spec.dataset, train_size=train_size))


def test_randinput_replaces_a_nested_fraction_of_inputs_by_gaussian_noise():
  w = workload.resolve(_randinput_spec(0.3))
  ds = w.dataset
  clean = corruptions.clean_data(ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.num_classes)
  key = jax.random.fold_in(prng.run_key(0), prng.DATA)
  stats = tuple(np.float32(v) for v in w.input_stats)
  data = {p: corruptions.corrupt(key, clean, specs.CorruptionSpec("randinput", p), stats)
          for p in (0.0, 0.3, 0.7, 1.0)}
  gaussian = corruptions.corrupt(key, clean, specs.CorruptionSpec("gaussian"), stats)
  flat = lambda d: np.asarray(d.x_train).reshape(len(ds.x_train), -1)
  replaced = {p: np.any(flat(d) != flat(clean), axis=1) for p, d in data.items()}
  assert not replaced[0.0].any() and replaced[1.0].all()
  assert np.all(replaced[0.3] <= replaced[0.7])                 # nested in p
  assert abs(replaced[0.3].mean() - 0.3) < 0.05 and abs(replaced[0.7].mean() - 0.7) < 0.05
  # Replaced inputs are exactly `gaussian`'s noise for that example; labels stay true.
  np.testing.assert_array_equal(flat(data[0.3])[replaced[0.3]], flat(gaussian)[replaced[0.3]])
  np.testing.assert_array_equal(flat(data[1.0]), flat(gaussian))
  np.testing.assert_array_equal(np.asarray(data[0.7].y_train), np.asarray(clean.y_train))
  np.testing.assert_array_equal(np.asarray(data[0.7].x_test), np.asarray(clean.x_test))
  # The mask is a pure function of (key, index): a prefix of examples gets the same draws.
  np.testing.assert_array_equal(np.asarray(corruptions.input_replaced(key, 100, 0.5)),
                                np.asarray(corruptions.input_replaced(key, 1437, 0.5))[:100])
  # And across dataset.train_size (tests/test_corruption_nesting.py's property), as resolved.
  small = workload.resolve(_randinput_spec(0.3, train_size=500)).corrupted_data(0)
  np.testing.assert_array_equal(np.asarray(small.x_train),
                                np.asarray(w.corrupted_data(0).x_train)[:500])
  # The resolver's (jitted) corruption is the eager one, up to float rounding.
  np.testing.assert_allclose(np.asarray(w.corrupted_data(0).x_train),
                             np.asarray(data[0.3].x_train), rtol=1e-6, atol=1e-6)
  with pytest.raises(specs.SpecError):
    workload.validate(_randinput_spec(1.5))


def test_arpit2017_memorization_on_recorded_cells():
  """The --quick run's recorded cells (digits: clean and random labels, 2 epochs on 1,000
  examples with 437 held out for validation; 4 runs per easy-example replicate),
  summarized in-process."""
  from experiments.programs import validated_runs  # pylint: disable=import-outside-toplevel
  _, config, records, summary = recorded("arpit2017_memorization")
  assert set(records) == {"noise_clean", "noise_randlabels", "easy_real", "easy_random_labels"}
  easy = summary["easy_examples"]
  # After one epoch (22 steps) real digits have examples every run gets right;
  # no random-label example is right in every run.
  assert easy["real"]["never_misclassified"]["mean"] > 0.3
  assert easy["random_labels"]["never_misclassified"]["mean"] < 0.05
  assert easy["real"]["never_misclassified"]["n"] == 1
  assert len(records["easy_real"]["rates"][0]) == 1437          # one rate per training example
  # Every sweep run: the first 1,000 examples, exactly 2 epochs, evaluated after each.
  assert summary["train_examples"] == 1000 and summary["validation_examples"] == 437
  (run,) = records["noise_randlabels"]["runs"]
  assert run["curve"]["epoch"] == [1.0, 2.0] and run["status"] == "budget_exhausted"
  assert "dataset.train_size=1000" in records["noise_randlabels"]["overrides"]
  # Early stopping reads the test accuracy at the best validation epoch, not the best test.
  cell = summary["noise_fraction"]["labels"]["1"]
  stop = validated_runs.early_stopped(run["curve"])
  assert cell["test_accuracy_early_stopped"]["mean"] == stop["test_accuracy"]
  assert cell["early_stopped_epoch"]["mean"] == stop["epoch"]
  assert cell["test_accuracy_max_over_training"]["mean"] == max(run["curve"]["test_accuracy"])
  assert cell["test_accuracy_final"]["mean"] == run["curve"]["test_accuracy"][-1]
  noise = summary["noise_fraction"]
  assert set(noise["labels"]) == {"0", "1"} and set(noise["inputs"]) == {"0"}
  assert (noise["labels"]["0"]["test_accuracy_early_stopped"]["mean"]
          > noise["labels"]["1"]["test_accuracy_early_stopped"]["mean"])
  gini = summary["loss_sensitivity_gini"]
  assert set(gini) == {"real", "random"} and 0 < gini["random"]["mean"] < gini["real"]["mean"] < 1
  # Matched epochs: both runs have a Gini at the same two epochs.
  by_epoch = summary["loss_sensitivity_gini_by_epoch"]
  assert [e["epoch"] for e in by_epoch["real"]] == [e["epoch"] for e in by_epoch["random"]] == [
      1.0, 2.0]
  assert set(summary["loss_sensitivity_per_class"]["real"]) == {str(c) for c in range(10)}
  assert 0 <= summary["csr"]["final"]["real"]["mean"] <= 1
  assert len(summary["csr"]["over_training"]["real"]) == 2     # after epochs 1 and 2
  # Capacity at the default width is the noise cell itself.
  assert summary["capacity"]["clean"]["512"] == noise["labels"]["0"]
  # One seed resolves nothing: every verdict says what would decide it.
  assert {v["verdict"] for v in summary["verdicts"]} == {"inconclusive"}
  assert all(v["decide"] for v in summary["verdicts"]) and config.quick


def test_arpit2017_memorization_bad_validation_is_one_failure(tmp_path):
  """A validation split that leaves less than a batch to train on: one line, exit 1,
  before anything trains."""
  from experiments import arpit2017_memorization as m, driver  # pylint: disable=import-outside-toplevel
  config = driver.configure(m.EXPERIMENT, True, ["validation=1400"])
  with pytest.raises(driver.Failure, match="leaves 37 of the 1437 training examples") as e:
    driver.run_experiment(m.EXPERIMENT, config, driver.Options(str(tmp_path)))
  assert e.value.code == 1 and not (tmp_path / "cells" / "noise_clean").exists()


def test_early_stopping_picks_the_best_validation_epoch_earliest_of_ties():
  from experiments.programs import validated_runs  # pylint: disable=import-outside-toplevel
  curve = {"step": [10, 20, 30, 40], "epoch": [1.0, 2.0, 3.0, 4.0],
           "validation_accuracy": [0.5, 0.8, None, 0.8], "test_accuracy": [0.4, 0.7, 0.9, 0.75]}
  # The highest validation accuracy (0.8) first at step 20: its test accuracy, never the
  # test split's own maximum (0.9, at an evaluation without a validation accuracy).
  assert validated_runs.early_stopped(curve) == {
      "step": 20, "epoch": 2.0, "validation_accuracy": 0.8, "test_accuracy": 0.7}
  assert validated_runs.early_stopped({**curve, "validation_accuracy": [None] * 4}) is None
  assert validated_runs.early_stopped({**curve, "validation_accuracy": []}) is None


def test_the_validation_split_is_the_training_examples_beyond_train_size_true_labels():
  from experiments.programs import validated_runs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  spec = catalogue.get("digits_randlabels")
  spec = dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, train_size=1000))
  x, y = validated_runs.validation_split(spec)
  full = datasets.load(dataclasses.replace(spec.dataset, train_size=None))
  assert len(y) == full.num_train - 1000 == 437
  np.testing.assert_array_equal(x, full.x_train[1000:])
  np.testing.assert_array_equal(y, full.y_train[1000:])      # true labels, not randomized
  train = workload.resolve(spec).corrupted_data(0)
  assert train.x_train.shape[0] == 1000                       # disjoint from the training set


def test_validation_accuracy_by_hand_and_on_the_training_set_equals_train_accuracy():
  from experiments.programs import validated_runs  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  x = rng.normal(size=(1100, 2, 2)).astype(np.float32)       # more than one chunk (1024)
  y = rng.integers(0, 3, 1100)
  module = _Linear(3)
  params = module.init(jax.random.key(1), jnp.zeros((1, 2, 2)), train=False)["params"]
  logits = x.reshape(1100, 4) @ np.asarray(params["Dense_0"]["kernel"]) + np.asarray(
      params["Dense_0"]["bias"])
  assert validated_runs.accuracy(module, params, {}, x, y) == pytest.approx(
      np.mean(logits.argmax(1) == y), abs=1e-12)
  # Two vmapped seeds of 2 epochs whose "validation split" is their own clean training
  # set: its accuracy is the loop's training accuracy at every evaluation.
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      "dataset.train_size=1000", "budget.max_epochs=2", "budget.eval_every_steps=15",
      "analysis.dynamics=false", "analysis.effective_rank=false"])
  w = workload.resolve(spec, stops_on_fit=False)
  data = w.corrupted_data(0)
  records = validated_runs.train(w, [0, 1], (np.asarray(data.x_train), np.asarray(data.y_train)),
                                 vmap="true")
  for r in records:
    assert r["curve"]["step"] == [15, 30] and r["status"] == "budget_exhausted"
    assert r["curve"]["validation_accuracy"] == r["curve"]["train_accuracy"]
    assert r["train_examples"] == 1000 and r["vmapped_seeds"] == [0, 1]
  assert records[0]["curve"]["train_accuracy"] != records[1]["curve"]["train_accuracy"]


def test_saturation_width_is_the_smallest_width_within_two_standard_errors_of_the_best():
  from experiments import arpit2017_memorization as m  # pylint: disable=import-outside-toplevel
  def cell(mean, std):
    return {"test_accuracy_early_stopped": {"mean": mean, "std": std, "n": 3}}
  # se of a difference at std 0.01, n 3: 0.0082; 2 se 0.016.
  widths = {"32": cell(0.90, 0.01), "128": cell(0.93, 0.01), "512": cell(0.94, 0.01)}
  assert m.saturation_width(widths) == 128
  assert m.saturation_width({**widths, "32": cell(0.93, 0.01)}) == 32
  assert m.saturation_width({**widths, "512": cell(0.96, 0.01)}) == 512
  assert m.saturation_width({"32": cell(None, None)}) is None
  assert m.compare(cell(0.9, None)["test_accuracy_early_stopped"],
                   cell(0.5, None)["test_accuracy_early_stopped"]) == "unresolved"  # one seed


def test_verdict_words_and_the_standard_error_of_a_difference():
  from experiments import arpit2017_memorization as m, verdicts  # pylint: disable=import-outside-toplevel
  d, se = verdicts.difference({"mean": 0.9, "std": 0.03, "n": 3}, {"mean": 0.8, "std": 0.04, "n": 4})
  assert d == pytest.approx(0.1) and se == pytest.approx((0.03 ** 2 / 3 + 0.04 ** 2 / 4) ** 0.5)
  assert verdicts.difference({"mean": 0.9, "std": None, "n": 1},
                             {"mean": 0.8, "std": 0.0, "n": 3}) == (pytest.approx(0.1), None)
  assert verdicts.difference({"mean": None}, {"mean": 0.8}) == (None, None)
  assert m.word([True, True], [False, False]) == "agrees"
  assert m.word([True, True], [False, False], also=False) == "partly"
  assert m.word([True, False], [False, False]) == "partly"
  assert m.word([True, False], [False, True]) == "disagrees"
  assert m.word([False, False], [False, False]) == "inconclusive"
  assert m.word([], []) == "inconclusive"
