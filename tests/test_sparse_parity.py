"""Sparse parities (data/parity.py), the Fourier gap, the hinge loss and the Barak 2022 experiment."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import barak2022_sparse_parity as barak, driver, knobs
from memobench import catalogue, specs, workload
from memobench.data import datasets, parity
from memobench.training import losses
from tests.conftest import REPO


def test_label_is_the_product_of_the_hidden_coordinates():
  # Known answers on hand-built inputs: S = {1, 4}.
  x = np.array([[1, -1, 1, 1, -1],     # x1 * x4 = +1 -> class 0
                [1, -1, 1, 1, 1],      # -1 -> class 1
                [-1, 1, -1, -1, 1]], np.float32)
  np.testing.assert_array_equal(parity.parity_of(x, [1, 4]), [1, -1, 1])
  np.testing.assert_array_equal(parity.label_of(x, [1, 4]), [0, 1, 0])
  # k = n: the parity of every bit; k = 1: the bit itself.
  np.testing.assert_array_equal(parity.label_of(x, range(5)), [0, 1, 1])
  np.testing.assert_array_equal(parity.label_of(x, [0]), [0, 0, 1])
  # The registered dataset: every label is the product over S, computed by hand.
  ds = parity.make(7, 3, num_train=200, num_test=50)
  coords = parity.hidden_coordinates(7, 3)
  for xs, ys in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
    assert xs.shape[1:] == (7, 1) and xs.dtype == np.float32 and ys.dtype == np.int32
    assert set(np.unique(xs)) == {-1.0, 1.0}
    for row, label in zip(xs[..., 0], ys):
      product = 1.0
      for i in coords:
        product *= row[i]
      assert label == (0 if product > 0 else 1)
  # Not a function of any single coordinate (a parity of k >= 2 bits has no
  # first-order signal): every coordinate's correlation with the label is small.
  big = parity.make(20, 3, num_train=4000, num_test=10)
  signs = 1 - 2 * big.y_train
  assert np.max(np.abs(big.x_train[..., 0].T @ signs / 4000)) < 0.06
  assert 0.45 < big.y_train.mean() < 0.55


def test_hidden_coordinates_come_from_the_dataset_seed():
  coords = parity.hidden_coordinates(20, 3)
  assert coords.tolist() == sorted(set(coords.tolist())) and len(coords) == 3
  assert 0 <= coords.min() and coords.max() < 20
  np.testing.assert_array_equal(coords, parity.hidden_coordinates(20, 3, parity.PARITY_SEED))
  others = {tuple(parity.hidden_coordinates(20, 3, seed)) for seed in range(1, 6)}
  assert len(others | {tuple(coords)}) > 1
  with pytest.raises(datasets.DataError):
    parity.hidden_coordinates(3, 4)


def test_examples_are_a_pure_function_of_seed_and_index():
  whole = parity.examples(12, np.arange(100))
  # Another subset size, another order: the same rows.
  np.testing.assert_array_equal(parity.examples(12, [57, 3, 99, 3]), whole[[57, 3, 99, 3]])
  np.testing.assert_array_equal(parity.examples(12, np.arange(10)), whole[:10])
  assert not np.array_equal(parity.examples(12, np.arange(100), seed=1), whole)
  assert len({row.tobytes() for row in whole}) > 90  # distinct draws, not one repeated row
  # The fixed split: train = indices [0, num_train), test = the next num_test, so a
  # smaller training set is a prefix of a larger one and the test set follows it.
  small = parity.make(12, 2, num_train=30, num_test=20)
  np.testing.assert_array_equal(small.x_train[..., 0], whole[:30])
  np.testing.assert_array_equal(small.x_test[..., 0], whole[30:50])
  again = parity.make(12, 2, num_train=30, num_test=20)
  np.testing.assert_array_equal(again.y_test, small.y_test)


def test_online_batches_are_fresh_and_labelled_with_the_same_coordinates():
  coords = parity.hidden_coordinates(16, 3)
  key = jax.random.key(3)
  x0, y0 = parity.online_batch(key, 0, 64, 16, coords)
  again, _ = parity.online_batch(key, 0, 64, 16, coords)
  x1, _ = parity.online_batch(key, 1, 64, 16, coords)
  np.testing.assert_array_equal(x0, again)
  assert not np.array_equal(x0, x1)
  np.testing.assert_array_equal(y0, parity.label_of(np.asarray(x0), coords))
  jitted = jax.jit(lambda step: parity.online_batch(key, step, 64, 16, coords))
  np.testing.assert_array_equal(jitted(1)[0], x1)


def test_fourier_gap_of_a_hand_built_weight_matrix():
  w = np.array([[3.0, 4.0],   # |row| 5, in S
                [1.0, 0.0],   # 1
                [0.0, 5.0],   # 5, in S
                [0.0, 1.0]])  # 1
  assert float(parity.coordinate_mass_ratio(w, [0, 2])) == pytest.approx(5.0)
  assert float(parity.coordinate_mass_ratio(w, [2, 0])) == pytest.approx(5.0)
  assert float(parity.coordinate_mass_ratio(w, [1, 3])) == pytest.approx(0.2)
  # Uneven sizes: S = {0}: 5 against the mean of (1, 5, 1).
  assert float(parity.coordinate_mass_ratio(w, [0])) == pytest.approx(5 / (7 / 3))
  # Leading (seed) axes are kept.
  stacked = np.stack([w, 2 * w, w[::-1]])
  np.testing.assert_allclose(parity.coordinate_mass_ratio(stacked, [0, 2]), [5.0, 5.0, 0.2],
                             rtol=1e-6)
  # An i.i.d. matrix has ratio ~1.
  iid = np.random.default_rng(0).normal(size=(50, 4000))
  assert abs(float(parity.coordinate_mass_ratio(iid, [1, 7, 30])) - 1) < 0.03
  # The same answer traced under jit on a jax array (the experiment's use).
  traced = jax.jit(lambda m: parity.coordinate_mass_ratio(m, [0, 2]))(jnp.asarray(stacked))
  np.testing.assert_allclose(traced, [5.0, 5.0, 0.2], rtol=1e-6)
  with pytest.raises(ValueError):
    parity.coordinate_mass_ratio(w, range(4))


def test_binary_hinge_known_answers():
  logits = jnp.array([[0.0, 2.0], [0.0, 2.0], [0.5, 0.0], [1.0, 1.0]])
  labels = jnp.array([1, 0, 1, 0])
  # margins f = 2, 2, -0.5, 0; targets t = +1, -1, +1, -1.
  np.testing.assert_allclose(losses.binary_hinge(logits, labels), [0.0, 3.0, 1.5, 1.0])
  with pytest.raises(ValueError):
    losses.binary_hinge(jnp.zeros((2, 3)), jnp.array([0, 1]))


def test_registered_specs_and_datasets():
  spec = catalogue.get("parity_n20_k3")
  workload.validate(spec)
  assert spec.model.width == 1000 and spec.model.depth == 1
  assert spec.optimizer.momentum == 0 and spec.optimizer.lr_decay_per_epoch == 1.0
  ds = datasets.load(spec.dataset)
  assert (ds.num_train, ds.x_test.shape[0], ds.num_classes) == (parity.NUM_TRAIN,
                                                               parity.NUM_TEST, 2)
  np.testing.assert_array_equal(
      ds.y_test, parity.label_of(ds.x_test[..., 0], parity.hidden_coordinates(20, 3)))
  assert all(f"parity_n{n}_k{k}" in catalogue.names() for n, k in parity.REGISTERED)
  # Procedural and offline, but not crossed with every corruption in the catalogue.
  assert not any(name.startswith("parity") for name in datasets.OFFLINE)
  with pytest.raises(specs.SpecError):
    catalogue.get("parity_n20_k3_randpix")
  with pytest.raises(datasets.DataError):
    parity.parse_name("parity_n3_k5")


def test_steps_to_drop_censoring_and_the_scaling_fit():
  assert barak.steps_to_drop([0, 10, 20, 30], [0.5, 0.6, 0.95, 1.0]) == 20
  assert barak.steps_to_drop([0, 10], [0.5, 0.89]) is None
  cell = barak.censored_stat([100, None, 300], budget=1000)
  assert cell["censored"] == 1 and cell["is_lower_bound"]
  assert cell["mean"] == pytest.approx((100 + 1000 + 300) / 3) and cell["n"] == 3
  assert not barak.censored_stat([100, 200], budget=1000)["is_lower_bound"]
  ns = [10, 20, 40]
  assert barak.fit_slope(ns, [3 * n ** 2.5 for n in ns]) == pytest.approx(2.5)
  assert barak.fit_slope(ns, [None, 5, None]) is None  # one point: no fit


def test_quick_end_to_end(tmp_path):
  """The script's --quick command (the suite's one process of the parity_online named
  program): figures, summary, and every cell kept by a rerun."""
  out = subprocess.run([sys.executable, os.path.join(REPO, "experiments",
                                                     "barak2022_sparse_parity.py"),
                        "--quick", f"--workdir={tmp_path}"], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  for figure in ("curves.png", "scaling.png", "hidden_progress.png"):
    assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  summary = json.loads((tmp_path / "summary.json").read_text())
  cells = summary["parity"]
  assert set(cells) == {"10_2", "15_2"}
  for cell in cells.values():
    drop = cell["steps_to_drop"]
    assert drop["n"] == 2 and {"mean", "std", "ci95", "censored"} <= set(drop)
    assert cell["final_test_accuracy"]["mean"] > 0.9  # k = 2 at n <= 15 is learned quickly
    curves = cell["curves"]
    assert len(curves["step"]) == len(curves["loss"]) == len(curves["movement_ratio"]) > 2
    assert curves["movement_ratio"][0]["mean"] is None  # no movement at step 0: 0 / 0
    assert curves["movement_ratio"][-1]["mean"] > 1.5  # the learned rows moved most
    assert curves["loss"][-1]["mean"] < curves["loss"][0]["mean"]
    # n <= 15: the exact population measures; at the end the population is learned too.
    hidden = cell["hidden_progress"]
    assert hidden["at_init"]["population_gradient_gap"]["mean"] > 1  # a Fourier gap at init
    assert 0.3 < hidden["at_init"]["population_accuracy"]["mean"] < 0.7  # chance
    assert (hidden["at_fraction_of_drop"]["0.9"]["population_accuracy"]["mean"]
            > hidden["at_init"]["population_accuracy"]["mean"])
    assert len(curves["population_gradient_gap"]) == len(curves["step"])
    assert cell["eval_every"] == 5
  assert summary["scaling"]["k2"]["n"] == [10, 15]
  assert summary["setup"]["optimizer"]["lr"] == 0.1 and summary["setup"]["output"] == "scalar"
  assert "steps to drop" in out.stdout
  # One computed cell per (n, k), each record saved whole (the driver's tests cover resume).
  for key in ("n10_k2", "n15_k2"):
    record = json.loads((tmp_path / "cells" / key / "record.json").read_text())["record"]
    assert record["preempted"] is False and len(record["curves"]["loss"]) == 2


@pytest.mark.parametrize("assignments,needle", [
    (["seeds=100000"], "seeds=100000: expected in [1, 64]"),
    (["eval_every=1000000000"], "eval_every=1000000000: expected in [1, 100000]"),
    (["max_steps=10", "eval_every=20"], "eval_every=20 exceeds max_steps=10"),
    (["max_steps=10", "eval_every_k2=11"], "eval_every_k2=11 exceeds max_steps=10"),
    (["output=logits"], "output=logits: expected one of scalar, margin"),
    (["n_k3=11"], "n=11 has no registered spec parity_n11_k3"),
    (["n_k2=none", "n_k3=none"], "no cells"),
    (["train_data=bogus"], "train_data=bogus: expected one of online, fixed"),
])
def test_bad_input_is_one_line_before_anything_trains(assignments, needle):
  with pytest.raises(knobs.KnobError) as e:
    driver.configure(barak.EXPERIMENT, True, assignments)
  assert needle in str(e.value) and "\n" not in str(e.value)


# -- the named program's pieces (experiments/programs/parity_online.py) ----------------------

def test_all_inputs_enumerate_the_hypercube():
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  x = parity_online.all_inputs(4)
  assert x.shape == (16, 4) and set(np.unique(x)) == {-1.0, 1.0}
  assert len({row.tobytes() for row in x}) == 16


def test_hinge_and_uniform_init_known_answers():
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  # label 1 -> t = +1, label 0 -> t = -1: max(0, 1 - t f).
  np.testing.assert_allclose(parity_online.hinge(jnp.array([2.0, 2.0, -0.5, 0.0]),
                                                 jnp.array([1, 0, 1, 0])), [0.0, 3.0, 1.5, 1.0])
  params = {"Dense_0": {"kernel": jnp.zeros((20, 1000)), "bias": jnp.zeros(1000)},
            "Dense_1": {"kernel": jnp.zeros((1000, 1)), "bias": jnp.zeros(1)}}
  out = parity_online.uniform_init(params, jax.random.key(0))
  for name, fan_in in (("Dense_0", 20), ("Dense_1", 1000)):
    for leaf in ("kernel", "bias"):
      w = np.asarray(out[name][leaf])
      assert np.abs(w).max() <= 1 / np.sqrt(fan_in) and w.shape == params[name][leaf].shape
  kernel = np.asarray(out["Dense_0"]["kernel"])  # U(-b, b): std b / sqrt(3)
  assert abs(kernel.std() - 1 / np.sqrt(3 * 20)) < 0.01 * (1 / np.sqrt(20))
  assert np.any(np.asarray(out["Dense_0"]["bias"]) != 0)  # biases drawn, not zero


def test_population_measures_equal_a_brute_force_sum_over_every_input():
  """The exact population loss, accuracy and first-kernel gradient gap of a hand-built
  1-hidden-layer net, against numpy over all 2^n inputs, with margins on both sides of the
  hinge's kink (the awkward case: examples beyond the margin contribute no gradient)."""
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  n, width, coords = 6, 5, [1, 4]
  rng = np.random.default_rng(0)
  w, b = rng.normal(size=(n, width)), rng.normal(size=width)
  a, c = rng.normal(size=width), 0.3
  params = {"Dense_0": {"kernel": jnp.asarray(w, jnp.float32), "bias": jnp.asarray(b, jnp.float32)},
            "Dense_1": {"kernel": jnp.asarray(a[:, None], jnp.float32),
                        "bias": jnp.asarray([c], jnp.float32)}}

  def f_of(p, x):
    h = jax.nn.relu(x[..., 0] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    return (h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])[..., 0]
  x_all, y_all = parity_online.population_set(n, coords)
  got = jax.jit(lambda p: parity_online.population_measures(f_of, p, x_all, y_all, coords))(params)
  x = parity_online.all_inputs(n).astype(np.float64)
  t = 2.0 * parity.label_of(x, coords) - 1.0
  pre = x @ w + b
  f = np.maximum(pre, 0) @ a + c
  active = t * f < 1
  assert 0 < active.mean() < 1  # both sides of the kink
  grad = (((-t * active)[:, None] * (pre > 0) * a)[:, None, :] * x[:, :, None]).mean(0)
  expected_gap = parity.coordinate_mass_ratio(grad, coords)
  np.testing.assert_allclose(float(got["population_loss"]), np.maximum(0, 1 - t * f).mean(),
                             rtol=1e-5)
  assert float(got["population_accuracy"]) == pytest.approx(((f > 0) == (t > 0)).mean())
  np.testing.assert_allclose(float(got["population_gradient_gap"]), expected_gap, rtol=1e-4)
