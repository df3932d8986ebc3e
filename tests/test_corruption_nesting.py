"""Corruptions nest across training-set sizes: example i's corrupted data is the same at every train_size.

gaussian and noise draw from the input statistics of the dataset's full
training split (workload.resolve -> Workload.input_stats), not of the first
train_size examples.
"""

import dataclasses

import numpy as np
import pytest

from memobench import catalogue, specs, workload
from memobench.data import corruptions


def _spec(kind, level, train_size=None):
  spec = catalogue.get("digits_clean")
  return dataclasses.replace(
      spec, corruption=specs.CorruptionSpec(kind, level),
      dataset=dataclasses.replace(spec.dataset, train_size=train_size))


@pytest.mark.parametrize("kind,level", [("gaussian", 0.0), ("noise", 0.5), ("partial", 0.4),
                                        ("randpix", 0.0)])
def test_example_i_is_corrupted_the_same_at_train_size_500_and_at_the_full_size(kind, level):
  full = workload.resolve(_spec(kind, level))
  small = workload.resolve(_spec(kind, level, train_size=500))
  assert full.dataset.num_train == 1437 and small.dataset.num_train == 500
  a, b = full.corrupted_data(0), small.corrupted_data(0)
  np.testing.assert_array_equal(np.asarray(a.x_train)[:500], np.asarray(b.x_train))
  np.testing.assert_array_equal(np.asarray(a.y_train)[:500], np.asarray(b.y_train))
  if corruptions.uses_input_stats(full.spec.corruption):
    # The statistics are the full split's, whatever the train_size.
    assert small.input_stats == full.input_stats
    mean, std = full.input_stats
    x = full.dataset.x_train.astype(np.float64)
    assert mean == pytest.approx(x.mean(), rel=1e-5)
    assert std == pytest.approx(x.std(), rel=1e-5)
  else:
    assert full.input_stats is None and small.input_stats is None


def test_without_train_size_the_data_is_what_it_was():
  # A direct call with no statistics uses data.x_train's own (the behaviour before
  # input_stats), which for the full split is what the resolver passes: bitwise.
  import jax  # pylint: disable=import-outside-toplevel
  from memobench import prng  # pylint: disable=import-outside-toplevel
  w = workload.resolve(_spec("gaussian", 0.0))
  ds = w.dataset
  clean = corruptions.clean_data(ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.num_classes)
  key = jax.random.fold_in(prng.run_key(0), prng.DATA)
  before = jax.jit(corruptions.corrupt, static_argnums=2)(key, clean, w.spec.corruption)
  np.testing.assert_array_equal(np.asarray(before.x_train),
                                np.asarray(w.corrupted_data(0).x_train))
  # Example 0's first value, before this change at train_size 500 (the first 500
  # examples' statistics) it was 0.24877648; now 0.24798867 at every size.
  small = workload.resolve(_spec("gaussian", 0.0, train_size=500)).corrupted_data(0)
  assert float(np.asarray(small.x_train)[0].ravel()[0]) == pytest.approx(0.24798867, abs=1e-7)
