"""Badger 2022 reproduction: the released code's objective, noise, stability metric, experiment."""

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import catalogue, prng, specs, workload
from memobench.data import corruptions
from memobench.metrics import input_stability
from memobench.models import MODELS
from memobench.training import forced_memorization as fm
from experiments import badger2022, driver, knobs
from tests.conftest import REPO


def _spec(*overrides, name="digits_clean"):
  return specs.with_overrides(catalogue.get(name), list(overrides))[0]


# --------------------------------------------------------------------------
# The bounded cross-entropy: softmax, then CE (the released network)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 10])
def test_bounded_ce_stays_in_its_exact_range_and_reaches_both_ends(k):
  lo, hi = fm.bounded_ce_range(k)
  assert hi == pytest.approx(math.log(math.e + k - 1)) and hi - lo == pytest.approx(1.0)
  rng = np.random.default_rng(k)
  logits = np.concatenate([rng.normal(0, 1, (500, k)), rng.normal(0, 30, (500, k))])
  labels = rng.integers(0, k, 1000)
  ce = np.asarray(fm.bounded_cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(labels)))
  assert np.all(ce >= lo - 1e-5) and np.all(ce <= hi + 1e-5)
  # The ends: saturated correct (softmax = e_y) and saturated wrong (softmax = e_j, j != y).
  right = np.where(np.eye(k)[labels[:8]] > 0, 1e4, -1e4)
  wrong = np.where(np.eye(k)[(labels[:8] + 1) % k] > 0, 1e4, -1e4)
  got_lo = fm.bounded_cross_entropy(jnp.asarray(right, jnp.float32), jnp.asarray(labels[:8]))
  got_hi = fm.bounded_cross_entropy(jnp.asarray(wrong, jnp.float32), jnp.asarray(labels[:8]))
  np.testing.assert_allclose(got_lo, lo, atol=1e-5)
  np.testing.assert_allclose(got_hi, hi, atol=1e-5)
  # Uniform logits: -1/K + log(K e^(1/K)) = log K, strictly inside the range.
  uniform = fm.bounded_cross_entropy(jnp.zeros((1, k)), jnp.zeros(1, jnp.int32))
  np.testing.assert_allclose(uniform, math.log(k), atol=1e-6)
  assert lo < math.log(k) < hi


# --------------------------------------------------------------------------
# noise_both: the released code's noise in both splits
# --------------------------------------------------------------------------


def test_noise_both_mixes_training_and_test_inputs_with_the_released_noise():
  rng = np.random.default_rng(0)
  x_train, x_test = rng.uniform(0, 1, (400, 6, 6, 1)), rng.uniform(0, 1, (300, 6, 6, 1))
  clean = corruptions.clean_data(x_train, rng.integers(0, 10, 400), x_test,
                                 rng.integers(0, 10, 300), 10)
  key = jax.random.key(3)
  pure = corruptions.corrupt(key, clean, specs.CorruptionSpec("noise_both", 0.0))
  for x in (pure.x_train, pure.x_test):  # randn/3 + 1/2
    assert abs(float(jnp.mean(x)) - 0.5) < 0.01 and abs(float(jnp.std(x)) - 1 / 3) < 0.01
  # Independent noise in the two splits (their own streams), not one shared draw.
  assert abs(np.corrcoef(np.ravel(pure.x_train[:300]), np.ravel(pure.x_test))[0, 1]) < 0.05
  mixed = corruptions.corrupt(key, clean, specs.CorruptionSpec("noise_both", 0.3))
  np.testing.assert_allclose(mixed.x_train, 0.3 * x_train + 0.7 * pure.x_train, atol=1e-5)
  np.testing.assert_allclose(mixed.x_test, 0.3 * x_test + 0.7 * pure.x_test, atol=1e-5)
  np.testing.assert_array_equal(mixed.y_train, clean.y_train)  # labels untouched
  same = corruptions.corrupt(key, clean, specs.CorruptionSpec("noise_both", 1.0))
  np.testing.assert_allclose(same.x_test, x_test, atol=1e-6)
  # Nested across sizes: example i's noise does not depend on how many examples there are.
  small = corruptions.clean_data(x_train[:50], clean.y_train[:50], x_test[:20],
                                 clean.y_test[:20], 10)
  np.testing.assert_array_equal(
      corruptions.corrupt(key, small, specs.CorruptionSpec("noise_both", 0.3)).x_train,
      mixed.x_train[:50])


@pytest.mark.parametrize("objective", ["forced_memorization_test", "forced_memorization_pool"])
def test_heldout_set_is_the_runs_own_corrupted_data(objective):
  """The held-out inputs carry the run's noise: the test split, or examples n..2n-1."""
  n = 100
  spec = _spec(f"analysis.objective={objective}", "corruption.kind=noise_both",
               "corruption.level=0.4", f"dataset.train_size={n}", "seed=5")
  source = fm.load(spec)
  x_h, y_h = fm.heldout_set(spec, prng.run_key(5), source)
  if objective.endswith("test"):
    want = workload.resolve(spec).corrupted_data(5)
    np.testing.assert_allclose(x_h, want.x_test, atol=1e-6)
    np.testing.assert_array_equal(y_h, want.y_test)
  else:
    double = dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, train_size=2 * n),
                                 analysis=dataclasses.replace(spec.analysis, objective="ce"))
    want = workload.resolve(double).corrupted_data(5)
    np.testing.assert_allclose(x_h, want.x_train[n:], atol=1e-6)
    np.testing.assert_array_equal(y_h, want.y_train[n:])
    # Noisy, not clean: the pool's inputs differ from the dataset's raw ones.
    assert float(jnp.max(jnp.abs(x_h - source.dataset.x_train[n:2 * n]))) > 0.1


def test_pool_under_random_labels_has_random_labels():
  n = 300
  spec = _spec("analysis.objective=forced_memorization_pool", "corruption.kind=randlabels",
               f"dataset.train_size={n}")
  source = fm.load(spec)
  _, y_h = fm.heldout_set(spec, prng.run_key(0), source)
  assert np.mean(np.asarray(y_h) == source.dataset.y_train[n:2 * n]) < 0.3  # ~0.1 by chance


def test_forced_objectives_accept_input_noise_and_the_capped_one_still_refuses():
  for objective in ("forced_memorization_test", "forced_memorization_pool"):
    workload.validate(_spec(f"analysis.objective={objective}", "corruption.kind=noise_both",
                            "corruption.level=0.5", "dataset.train_size=500"))
  with pytest.raises(specs.SpecError, match="leaves inputs clean"):
    workload.validate(_spec("analysis.objective=forced_memorization", "corruption.kind=noise_both",
                            "corruption.level=0.5", "dataset.train_size=500"))
  with pytest.raises(specs.SpecError, match="needs dataset.train_size"):
    workload.validate(_spec("analysis.objective=forced_memorization_pool"))
  with pytest.raises(specs.SpecError, match="needs dataset.train_size <= 718"):
    workload.resolve(_spec("analysis.objective=forced_memorization_pool",
                           "dataset.train_size=800"))


def test_objective_is_train_minus_paired_heldout_bounded_ce_gated_at_chance():
  n, batch = 200, 50
  spec = _spec("analysis.objective=forced_memorization_test", "corruption.kind=noise_both",
               "corruption.level=0.5", f"dataset.train_size={n}", f"budget.batch_size={batch}")
  source = fm.load(spec)
  objective = fm.make(spec, prng.run_key(0), source)
  x_h, y_h = fm.heldout_set(spec, prng.run_key(0), source)
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(0, 0.5, (64, 10)), jnp.float32)
  forward = lambda inputs, idx: (inputs.reshape(len(inputs), -1) @ w, {})
  x, y = jnp.asarray(source.dataset.x_train[:batch], jnp.float32), jnp.arange(batch) % 10
  for step in (0, 3, 5):  # 4 steps per epoch: step 5 pairs with held-out batch 1
    k = step % (n // batch)
    pick = (k * batch + np.arange(batch)) % x_h.shape[0]
    h_logits = forward(x_h[pick], None)[0]
    on = float(np.mean(np.argmax(h_logits, -1) == y_h[pick]) >= 0.11)
    want = (jnp.mean(fm.bounded_cross_entropy(forward(x, None)[0], y))
            - on * jnp.mean(fm.bounded_cross_entropy(h_logits, y_h[pick])))
    got, _ = objective(forward, x, y, None, jnp.asarray(step))
    np.testing.assert_allclose(got, want, rtol=1e-6)
  # At chance the held-out term is off: a model predicting a class no held-out label has.
  absent = int(np.setdiff1d(np.arange(10), np.asarray(y_h[:batch]))[0]) if len(
      np.setdiff1d(np.arange(10), np.asarray(y_h[:batch]))) else None
  if absent is not None:
    const = lambda inputs, idx: (jnp.zeros((len(inputs), 10)).at[:, absent].set(5.0), {})
    got, _ = objective(const, x, y, None, jnp.asarray(0))
    np.testing.assert_allclose(got, jnp.mean(fm.bounded_cross_entropy(const(x, None)[0], y)))
  # The term has a gradient: Adam is maximizing the held-out loss, not a constant.
  grad = jax.grad(lambda w_: objective(
      lambda inputs, idx: (inputs.reshape(len(inputs), -1) @ w_, {}), x, y, None,
      jnp.asarray(0))[0])(w)
  assert float(jnp.linalg.norm(grad)) > 0


# --------------------------------------------------------------------------
# Input stability: known answers
# --------------------------------------------------------------------------


def test_input_gradient_norm_of_a_linear_model_is_its_weight_norm():
  rng = np.random.default_rng(1)
  w = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)  # input (5, 3): a non-flat input
  x = jnp.asarray(rng.normal(size=(7, 5, 3)), jnp.float32)
  scalar = lambda xb, yb: jnp.sum(xb * w, axis=(1, 2)) + 2.0
  np.testing.assert_allclose(input_stability.input_gradient_norms(scalar, x, jnp.zeros(7)),
                             float(jnp.linalg.norm(w)), rtol=1e-5)
  big_w = jnp.asarray(rng.normal(size=(15, 4)), jnp.float32)
  logits = lambda xb: xb.reshape(len(xb), -1) @ big_w - 1.0
  np.testing.assert_allclose(input_stability.jacobian_norms(logits, x),
                             float(jnp.linalg.norm(big_w)), rtol=1e-5)
  # The CE's gradient through the linear map: W (softmax - e_y), per example.
  y = jnp.asarray(rng.integers(0, 4, 7))
  from memobench.training import losses  # pylint: disable=import-outside-toplevel
  ce = lambda xb, yb: losses.cross_entropy(logits(xb), yb)
  p = jax.nn.softmax(logits(x))
  want = jnp.linalg.norm((p - jax.nn.one_hot(y, 4)) @ big_w.T, axis=1)
  np.testing.assert_allclose(input_stability.input_gradient_norms(ce, x, y), want, rtol=1e-5)


def test_measure_on_a_relu_network_matches_its_closed_form_jacobian():
  """Awkward case: units switched off at some inputs drop their rows from the Jacobian."""
  module = MODELS.get("mlp1x512").build(specs.ModelSpec("mlp1x512"), 10)
  variables = module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
  rng = np.random.default_rng(2)
  x = rng.uniform(0, 1, (6, 8, 8, 1)).astype(np.float32)
  flat = jax.tree.leaves(variables["params"])
  kernels = [a for a in flat if a.ndim == 2]
  biases = [a for a in flat if a.ndim == 1]
  w1 = [w for w in kernels if w.shape == (64, 512)][0]
  w2 = [w for w in kernels if w.shape == (512, 10)][0]
  b1 = [b for b in biases if b.shape == (512,)][0]
  h = x.reshape(6, -1) @ w1 + b1
  want = [np.linalg.norm((w1 * (hi > 0)) @ w2) for hi in h]
  out = input_stability.measure(module, variables["params"], {},
                                {"test": (x, np.zeros(6, np.int32))})
  assert out["test"]["logit_jacobian_norm"] == pytest.approx(np.mean(want), rel=1e-4)
  assert 0 < out["test"]["input_gradient_norm"]


def test_input_stability_field_enters_the_hash_only_when_set():
  base = catalogue.get("digits_clean")
  assert specs.spec_hash(base) == specs.spec_hash(_spec("analysis.input_stability_samples=0"))
  assert specs.spec_hash(base) != specs.spec_hash(_spec("analysis.input_stability_samples=8"))
  with pytest.raises(specs.SpecError, match="input_stability_samples must be >= 0"):
    workload.validate(_spec("analysis.input_stability_samples=-1"))


# --------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------


FIXTURE = os.path.join(REPO, "tests", "data", "experiments", "badger2022.records.json.gz")


@pytest.fixture(scope="module")
def recorded():
  """The --quick run's recorded cells and the summary made of them (no training)."""
  config, records, _ = driver.load_records(badger2022.EXPERIMENT, FIXTURE)
  return config, records, badger2022.summarize(config, records)


def test_badger2022_recorded_summary(recorded):
  config, records, summary = recorded
  assert config.quick and set(records) == {c.key for c in badger2022.grid(config)}
  assert set(summary["noise"]) == {"0", "1"}
  for cell in summary["noise"].values():
    for field in ("epochs_to_fit", "steps_to_fit", "heldout_accuracy"):
      assert {"mean", "std", "ci95", "n"} <= set(cell[field])
    fit = cell["epochs_to_fit"]
    assert fit["n"] == 1 and fit["is_lower_bound"] == (fit["censored"] > 0)
    assert 0 <= cell["heldout_accuracy"]["mean"] <= 1
  assert set(summary["size"]) == {"natural", "random_inputs", "random_labels"}
  assert all(set(v) == {"80"} for v in summary["size"].values())
  for split in ("train", "test", "noise", "untouched"):
    for label in ("ce", "forced_f0", "forced_f1"):
      curve = summary["stability"][split][label]
      assert curve["epoch"] == [1.0, 2.0, 3.0]  # every epoch of the budget, the reference too
      assert len(curve["input_gradient_norm"]["mean"]) == 3
      assert all(m > 0 for m in curve["logit_jacobian_norm"]["mean"])
  # The stability cells retrain the spec cells' runs: the same training accuracy at their end.
  assert all(v == pytest.approx(0.0, abs=1e-6)
             for v in summary["stability_runs_match_spec_runs"].values())
  assert set(summary["matched_epochs"]) == {"1", "3"}
  at3 = summary["matched_epochs"]["3"]["ce"]["untouched"]["logit_jacobian_norm"]
  assert at3["values"][0] == pytest.approx(
      summary["stability"]["untouched"]["ce"]["logit_jacobian_norm"]["mean"][-1])
  # Untouched inputs are clean training-split examples beyond the n trained on.
  assert summary["settings"]["untouched_inputs"] == "training-split examples 120..135 (clean)"
  words = [v["verdict"] for v in summary["verdicts"]]
  assert len(words) == 5 and set(words) <= {"agrees", "partly", "inconclusive", "disagrees"}


def test_fit_and_threshold_cells_count_censored_seeds_at_their_budget():
  def run(steps_to_fit, epochs, accs, status):
    return {"metrics": {"steps_to_fit": steps_to_fit,
                        "epochs_to_fit": None if steps_to_fit is None else steps_to_fit / 10,
                        "steps_to_fit_censored": steps_to_fit is None},
            "run": {"status": status, "steps": epochs[-1] * 10, "epochs": epochs[-1]},
            "curve": {"epoch": epochs, "train_accuracy": accs}}
  runs = [run(40, [1, 2, 3, 4], [0.5, 0.92, 0.95, 0.99], "completed"),
          run(None, [1, 2, 3, 4, 5], [0.2, 0.3, 0.5, 0.6, 0.7], "budget_exhausted")]
  fit = badger2022.fit_cell(runs, "epochs_to_fit")
  assert fit["mean"] == pytest.approx(4.5) and fit["censored"] == 1 and fit["is_lower_bound"]
  assert fit["median"] == pytest.approx(4.5)
  hit = badger2022.threshold_cell(runs, 0.9)
  assert [hit["mean"], hit["censored"]] == [pytest.approx(3.5), 1] and hit["threshold"] == 0.9


def test_matched_fit_takes_each_seeds_first_epoch_at_the_threshold():
  rows = lambda accs: {"epoch": [1.0, 2.0, 3.0], "train_accuracy": accs,  # noqa: E731
                       **{f"{s}.{m}": [10.0, 20.0, 30.0] for s in badger2022.SPLITS
                          for m in badger2022.MEASURES}}
  record = {"runs": [rows([0.5, 0.95, 0.99]), rows([0.2, 0.3, 0.4])]}
  fit = badger2022.at_fit(record, 0.9)
  assert fit["epoch"]["values"] == [2.0, None] and fit["epoch"]["n"] == 1
  assert fit["untouched"]["logit_jacobian_norm"]["values"] == [20.0, None]
  assert badger2022.at_epoch(record, 3.0)["train"]["input_gradient_norm"]["mean"] == 30.0
  assert badger2022.at_epoch(record, 4.0)["train"]["input_gradient_norm"]["n"] == 0  # none there


def test_badger2022_docstring_and_bad_input():
  import ast  # pylint: disable=import-outside-toplevel
  path = os.path.join(REPO, "experiments", "badger2022.py")
  doc = ast.get_docstring(ast.parse(open(path).read()))
  assert doc.startswith("Badger 2022") and "python experiments/badger2022.py --quick" in doc
  assert "Runtime:" in doc and "PLACEHOLDER" not in doc
  with pytest.raises(knobs.KnobError, match="max_epochs=0: expected >= 1"):
    driver.configure(badger2022.EXPERIMENT, True, ["max_epochs=0"])
  with pytest.raises(knobs.KnobError, match=r"fractions=0.0,1.5: expected each value in \[0, 1\]"):
    driver.configure(badger2022.EXPERIMENT, False, ["fractions=0,1.5"])
  with pytest.raises(knobs.KnobError, match="fractions must include 1"):
    driver.configure(badger2022.EXPERIMENT, False, ["fractions=0,0.5"])
  with pytest.raises(knobs.KnobError, match="250 is past max_epochs=200"):
    driver.configure(badger2022.EXPERIMENT, False, ["compare_epochs=25,250"])
