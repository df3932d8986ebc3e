"""The paper's CIFAR-10 models: exact parameter counts, features, LRN, BatchNorm state, random crop."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import catalogue, models, prng, specs, workload
from memobench.data import corruptions, datasets, preprocessing
from memobench.training.steps import make_steps
from memobench.models import alexnet

CIFAR_INPUT = (28, 28, 3)


def _variables(name, input_shape=CIFAR_INPUT, num_classes=10):
  module = models.build(specs.ModelSpec(name), num_classes)
  return module, jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros((2, *input_shape)), train=False))


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,expected", [
    # Zhang et al. 2017, Table 1 (CIFAR-10, 28x28x3 inputs).
    ("inception", 1_649_402),
    ("inception_nobn", 1_649_402),  # BatchNorm has no scale/offset: same count
    ("alexnet", 1_387_786),
    ("mlp1x512", 1_209_866),
    ("mlp3x512", 1_735_178),
    # Zagoruyko & Komodakis 2016, Table 1: WRN-28-1 has 0.36M parameters.
    ("wrn28_1", 369_498),
])
def test_parameter_counts_equal_the_papers(name, expected):
  _, variables = _variables(name)
  assert _count(variables["params"]) == expected


def test_batchnorm_is_state_not_parameters():
  _, bn = _variables("inception")
  _, no_bn = _variables("inception_nobn")
  assert "batch_stats" in bn and "batch_stats" not in no_bn
  # BatchNorm without scale/offset: no parameters, only running mean and variance
  # for each of the 1,712 output channels of the 19 convolutions.
  bn_params = [p for p in jax.tree_util.tree_flatten_with_path(bn["params"])[0]
               if "BatchNorm" in jax.tree_util.keystr(p[0])]
  assert bn_params == []
  assert _count(bn["batch_stats"]) == 2 * 1712


@pytest.mark.parametrize("name,width", [("inception", 336), ("inception_nobn", 336),
                                        ("alexnet", 192), ("wrn28_1", 64)])
def test_models_sow_penultimate_features_and_output_logits(name, width):
  module, variables = _variables(name, num_classes=100)
  (logits, state) = jax.eval_shape(
      lambda v: module.apply(v, jnp.zeros((2, *CIFAR_INPUT)), train=False,
                             mutable=["intermediates"]), variables)
  assert logits.shape == (2, 100)
  (features,) = state["intermediates"]["features"]
  assert features.shape == (2, width)


def test_convolutional_models_registered_as_such():
  for name in ["inception", "inception_nobn", "alexnet", "wrn28_1"]:
    assert models.has_convolutions(name)
  assert not models.has_convolutions("mlp1x512")


def test_local_response_norm_matches_tensorflow_formula():
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, 12))
  out = alexnet.local_response_norm(x, depth_radius=2, bias=1.0, alpha=0.5, beta=0.75)
  xs = np.asarray(x)
  expected = np.empty_like(xs)
  for c in range(12):
    lo, hi = max(0, c - 2), min(12, c + 3)
    expected[..., c] = xs[..., c] / (1.0 + 0.5 * np.sum(xs[..., lo:hi] ** 2, -1)) ** 0.75
  np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_zhang_preprocessing_crops_and_whitens_each_image():
  rng = np.random.RandomState(0)
  images = rng.randint(0, 256, (16, 32, 32, 3)).astype(np.uint8)
  images[0] = 7  # a constant image: std 0, guarded like tf.image.per_image_standardization
  out = preprocessing.zhang_preprocess(images)
  assert out.shape == (16, 28, 28, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
  np.testing.assert_allclose(out[1:].std(axis=(1, 2, 3)), 1.0, rtol=1e-4)
  np.testing.assert_array_equal(out[0], 0.0)
  # Center crop: pixel (0, 0) of the output is pixel (2, 2) of the input, whitened.
  x = images[5].astype(np.float32) / 255
  crop = x[2:30, 2:30]
  np.testing.assert_allclose(out[5], (crop - crop.mean()) / crop.std(), rtol=1e-4, atol=1e-5)


def test_random_crop_shifts_each_example_within_the_padding():
  x = jnp.arange(4 * 6 * 6 * 2, dtype=jnp.float32).reshape(4, 6, 6, 2) + 1
  key = jax.random.key(3)
  crop = jax.jit(preprocessing.random_crop, static_argnums=2)
  out = crop(key, x, 2)
  assert out.shape == x.shape
  np.testing.assert_array_equal(out, crop(key, x, 2))  # pure
  shifts = set()
  for i in range(4):
    padded = np.pad(np.asarray(x[i]), ((2, 2), (2, 2), (0, 0)))
    found = [(t, l) for t in range(5) for l in range(5)
             if np.array_equal(padded[t:t + 6, l:l + 6], np.asarray(out[i]))]
    assert found, "each output is a 6x6 window of the padded image"
    shifts.add(found[0])
  many = crop(jax.random.key(4), jnp.tile(x[:1], (64, 1, 1, 1)), 2)
  assert len({np.asarray(m).tobytes() for m in many}) > 10  # per-example keys: crops differ


def _one_step_loss(spec_name, random_crop):
  spec = catalogue.get(spec_name)
  spec = dataclasses.replace(
      spec, dataset=dataclasses.replace(spec.dataset, random_crop=random_crop),
      budget=specs.BudgetSpec(batch_size=4, max_steps=1, eval_every_steps=1))
  x = np.random.RandomState(0).randn(8, *CIFAR_INPUT).astype(np.float32)
  y = np.arange(8) % 10
  data = corruptions.clean_data(x, y, x, y, 10)
  dataset = datasets.Dataset("cifar10", x, y, x, y, 10)
  steps = make_steps(workload.resolve(spec, dataset=dataset), prng.run_key(0))
  state = jax.jit(steps.init)(jax.random.key(1))
  return float(jax.jit(steps.train_step)(state, data).loss_sum)


def test_random_crop_spec_changes_the_training_batch():
  # (BatchNorm state updates are checked where Inception trains: test_tfds_data.py.)
  assert (_one_step_loss("cifar10_clean_mlp1x512", True)
          != _one_step_loss("cifar10_clean_mlp1x512", False))
