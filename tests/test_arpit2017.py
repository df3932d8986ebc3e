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
  """The --quick run's recorded cells (digits: clean and random labels, 20 steps, 4 runs
  per easy-example replicate), summarized in-process."""
  _, config, records, summary = recorded("arpit2017_memorization")
  assert set(records) == {"noise_clean", "noise_randlabels", "easy_real", "easy_random_labels"}
  easy = summary["easy_examples"]
  # After one epoch (22 steps) real digits have examples every run gets right;
  # no random-label example is right in every run.
  assert easy["real"]["never_misclassified"]["mean"] > 0.3
  assert easy["random_labels"]["never_misclassified"]["mean"] < 0.05
  assert easy["real"]["never_misclassified"]["n"] == 1
  assert len(records["easy_real"]["rates"][0]) == 1437          # one rate per training example
  gini = summary["loss_sensitivity_gini"]
  assert set(gini) == {"real", "random"} and 0 < gini["random"]["mean"] < 1
  assert set(summary["loss_sensitivity_per_class"]["real"]) == {str(c) for c in range(10)}
  noise = summary["noise_fraction"]
  assert set(noise["labels"]) == {"0", "1"} and set(noise["inputs"]) == {"0"}
  assert noise["labels"]["0"]["val_accuracy"]["mean"] > noise["labels"]["1"]["val_accuracy"]["mean"]
  assert 0 <= summary["csr"]["final"]["real"]["mean"] <= 1
  assert len(summary["csr"]["over_training"]["real"]) == 2     # evaluations at steps 10, 20
  # Capacity at the default width is the noise cell itself.
  assert summary["capacity"]["clean"]["512"] == noise["labels"]["0"]
  assert config.quick and summary["epochs"] is None
