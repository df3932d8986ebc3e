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
    assert len(curves["step"]) == len(curves["loss"]) == len(curves["fourier_gap"]) > 2
    assert curves["fourier_gap"][0]["mean"] is None  # no movement at step 0: 0 / 0
    assert curves["fourier_gap"][-1]["mean"] > 1.5  # the learned rows moved most
    assert curves["loss"][-1]["mean"] < curves["loss"][0]["mean"]
  assert summary["scaling"]["k2"]["n"] == [10, 15]
  assert "steps to drop" in out.stdout
  # One computed cell per (n, k), each record saved whole (the driver's tests cover resume).
  for key in ("n10_k2", "n15_k2"):
    record = json.loads((tmp_path / "cells" / key / "record.json").read_text())["record"]
    assert record["preempted"] is False and len(record["curves"]["loss"]) == 2


@pytest.mark.parametrize("assignments,needle", [
    (["seeds=100000"], "seeds=100000: expected in [1, 64]"),
    (["eval_every=1000000000"], "eval_every=1000000000: expected in [1, 100000]"),
    (["max_steps=10", "eval_every=20"], "eval_every=20 exceeds max_steps=10"),
    (["n_k3=11"], "n=11 has no registered spec parity_n11_k3"),
    (["n_k2=none", "n_k3=none"], "no cells"),
    (["train_data=bogus"], "train_data=bogus: expected one of online, fixed"),
])
def test_bad_input_is_one_line_before_anything_trains(assignments, needle):
  with pytest.raises(knobs.KnobError) as e:
    driver.configure(barak.EXPERIMENT, True, assignments)
  assert needle in str(e.value) and "\n" not in str(e.value)
