"""Training-input augmentation (training/steps.py, `augment`) and the run's PRNG sub-streams."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from memobench import catalogue, prng
from memobench.training import steps


def _spec(**dataset):
  spec = catalogue.get("digits_clean")
  return dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, **dataset))


def test_input_noise_is_fresh_gaussian_noise_of_the_given_std_every_step():
  """Arpit et al. 2017 Sec. 5: x + std * N(0, 1), a new draw at every step."""
  x = jnp.zeros((4096, 8, 8, 1), jnp.float32)
  spec, key = _spec(input_noise=0.5), prng.run_key(0)
  a = np.asarray(steps.augment(spec, key, x, jnp.int32(3)))
  assert abs(a.mean()) < 0.005 and abs(a.std() - 0.5) < 0.005
  # Gaussian: ~68.3% of draws within one std.
  assert abs(np.mean(np.abs(a) < 0.5) - 0.6827) < 0.005
  np.testing.assert_array_equal(a, steps.augment(spec, key, x, jnp.int32(3)))  # reproducible
  b = np.asarray(steps.augment(spec, key, x, jnp.int32(4)))
  assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01  # independent across steps
  c = np.asarray(steps.augment(spec, prng.run_key(1), x, jnp.int32(3)))
  assert abs(np.corrcoef(a.ravel(), c.ravel())[0, 1]) < 0.01  # and across seeds


def test_no_augmentation_leaves_inputs_untouched():
  x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1)
  out = steps.augment(_spec(), prng.run_key(0), x, jnp.int32(5))
  np.testing.assert_array_equal(out, x)


def test_noise_is_added_after_the_crop_and_independent_of_it():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((16, 8, 8, 1)), jnp.float32)
  key, step = prng.run_key(2), jnp.int32(7)
  both = steps.augment(_spec(random_crop=True, input_noise=0.1), key, x, step)
  crop = steps.augment(_spec(random_crop=True), key, x, step)
  noise = steps.augment(_spec(input_noise=0.1), key, jnp.zeros_like(x), step)
  assert not np.allclose(crop, x)  # the crop moved some pixels
  np.testing.assert_allclose(both, crop + noise, rtol=0, atol=1e-6)


def test_prng_streams_are_distinct_per_purpose():
  # Every purpose its own stream (the experiments' and metrics' included).
  assert len(set(prng.STREAMS.values())) == len(prng.STREAMS) >= 11
  assert prng.AUGMENT != prng.SHARPNESS  # they collided (both 7) before prng.py
  assert str(jax.random.key_impl(prng.run_key(3))) == "threefry2x32"  # pinned, not the default
