"""Corruption semantics of Zhang et al. 2017 (and Badger 2022 noise mixing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import specs
from memobench.data import corruptions

N, NUM_CLASSES = 4000, 10


def _data(n=N, shape=(6, 5, 3)):
  rng = np.random.RandomState(0)
  x = rng.rand(n, *shape).astype(np.float32)
  y = rng.randint(0, NUM_CLASSES, n)
  xt = rng.rand(50, *shape).astype(np.float32)
  yt = rng.randint(0, NUM_CLASSES, 50)
  return corruptions.clean_data(x, y, xt, yt, NUM_CLASSES)


def _corrupt(kind, level=0.0, seed=0, data=None):
  data = data if data is not None else _data()
  return corruptions.corrupt(jax.random.key(seed), data, specs.CorruptionSpec(kind, level))


@pytest.mark.parametrize("p", [0.2, 0.4, 0.6, 0.8, 1.0])
def test_partial_changes_about_0_9p_of_labels(p):
  out = _corrupt("partial", p)
  resampled = np.asarray(out.label_resampled).mean()
  changed = np.asarray(out.label_changed).mean()
  # Binomial(4000, .) standard errors are < 0.008: 4 sigma bounds.
  assert abs(resampled - p) < 0.032
  assert abs(changed - 0.9 * p) < 0.032
  # changed <=> label differs from the original; originals are kept.
  np.testing.assert_array_equal(np.asarray(out.label_changed),
                                np.asarray(out.y_train) != np.asarray(out.y_train_original))
  np.testing.assert_array_equal(np.asarray(out.y_train_original), np.asarray(_data().y_train))


def test_randlabels_is_uniform_and_independent_of_true_label():
  out = _corrupt("randlabels")
  y = np.asarray(out.y_train)
  counts = np.bincount(y, minlength=NUM_CLASSES)
  assert counts.min() > 0.08 * N and counts.max() < 0.12 * N
  assert abs((y == np.asarray(out.y_train_original)).mean() - 0.1) < 0.02
  assert np.asarray(out.label_resampled).all()


def test_test_set_never_corrupted():
  clean = _data()
  for kind, level in [("randlabels", 0), ("partial", 0.5), ("randpix", 0), ("gaussian", 0),
                      ("noise", 0.5)]:
    out = _corrupt(kind, level, data=clean)
    np.testing.assert_array_equal(np.asarray(out.y_test), np.asarray(clean.y_test))
    np.testing.assert_array_equal(np.asarray(out.x_test), np.asarray(clean.x_test))


def test_shufpix_one_permutation_for_all_images_train_and_test():
  clean = _data()
  out = _corrupt("shufpix", data=clean)
  perm = np.asarray(corruptions.pixel_permutation(jax.random.key(0), clean.x_train.shape))
  assert sorted(perm) == list(range(30)) and not np.array_equal(perm, np.arange(30))
  for x0, x1 in [(clean.x_train, out.x_train), (clean.x_test, out.x_test)]:
    flat0 = np.asarray(x0).reshape(len(x0), 30, 3)
    flat1 = np.asarray(x1).reshape(len(x1), 30, 3)
    np.testing.assert_array_equal(flat1, flat0[:, perm])  # channels move together
  np.testing.assert_array_equal(np.asarray(out.y_train), np.asarray(clean.y_train))


def _recover_permutations(x0, x1):
  """For images with distinct pixels, the permutation taking x0 to x1."""
  flat0 = np.asarray(x0).reshape(len(x0), -1, x0.shape[-1])[..., 0]
  flat1 = np.asarray(x1).reshape(len(x1), -1, x1.shape[-1])[..., 0]
  perms = []
  for a, b in zip(flat0, flat1):
    lookup = {v: i for i, v in enumerate(a)}
    perms.append([lookup[v] for v in b])
  return np.array(perms)


def test_randpix_independent_permutation_per_image():
  clean = _data(n=200)
  out = _corrupt("randpix", data=clean)
  perms = _recover_permutations(clean.x_train, out.x_train)
  assert all(sorted(p) == list(range(30)) for p in perms)
  assert len({tuple(p) for p in perms}) == 200  # all different
  # Channels of one pixel move together.
  flat0 = np.asarray(clean.x_train).reshape(200, 30, 3)
  flat1 = np.asarray(out.x_train).reshape(200, 30, 3)
  np.testing.assert_array_equal(flat1, np.take_along_axis(flat0, perms[..., None], 1))


def test_gaussian_matches_dataset_mean_and_variance():
  clean = _data()
  out = _corrupt("gaussian", data=clean)
  x0, x1 = np.asarray(clean.x_train), np.asarray(out.x_train)
  assert abs(x1.mean() - x0.mean()) < 0.005
  assert abs(x1.std() - x0.std()) < 0.005
  # Gaussian, not the (uniform) data: kurtosis ~3.
  z = (x1 - x1.mean()) / x1.std()
  assert abs(np.mean(z ** 4) - 3.0) < 0.05
  assert np.corrcoef(x0.ravel(), x1.ravel())[0, 1] < 0.01


def test_noise_mixing_endpoints_and_formula():
  clean = _data(n=100)
  g = _corrupt("gaussian", data=clean)
  np.testing.assert_allclose(np.asarray(_corrupt("noise", 0.0, data=clean).x_train),
                             np.asarray(g.x_train), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(_corrupt("noise", 1.0, data=clean).x_train),
                             np.asarray(clean.x_train), rtol=1e-6)
  mixed = np.asarray(_corrupt("noise", 0.3, data=clean).x_train)
  np.testing.assert_allclose(
      mixed, 0.3 * np.asarray(clean.x_train) + 0.7 * np.asarray(g.x_train), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind,level", [("partial", 0.5), ("randpix", 0), ("gaussian", 0),
                                        ("shufpix", 0)])
def test_same_seed_same_data_different_seed_different(kind, level):
  a, b, c = (_corrupt(kind, level, seed=s) for s in (0, 0, 1))
  for f in ("x_train", "y_train"):
    np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
  assert any(not np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(c, f)))
             for f in ("x_train", "y_train"))


def test_corruption_is_a_function_of_example_index():
  """Example i's corruption does not depend on how many examples come after it."""
  big = _data(n=300)
  small = corruptions.clean_data(big.x_train[:100], big.y_train[:100], big.x_test, big.y_test,
                                 NUM_CLASSES)
  for kind, level in [("partial", 0.5), ("randpix", 0)]:
    a = _corrupt(kind, level, data=big)
    b = _corrupt(kind, level, data=small)
    np.testing.assert_array_equal(np.asarray(a.y_train)[:100], np.asarray(b.y_train))
    np.testing.assert_array_equal(np.asarray(a.x_train)[:100], np.asarray(b.x_train))


def test_jit_gives_the_same_result_as_eager():
  clean = _data(n=64)
  spec = specs.CorruptionSpec("partial", 0.5)
  eager = corruptions.corrupt(jax.random.key(3), clean, spec)
  jitted = jax.jit(corruptions.corrupt, static_argnums=2)(jax.random.key(3), clean, spec)
  np.testing.assert_array_equal(np.asarray(eager.y_train), np.asarray(jitted.y_train))
  assert jnp.issubdtype(jitted.y_train.dtype, jnp.integer)
