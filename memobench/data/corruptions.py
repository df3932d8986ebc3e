"""Corruptions of Zhang et al. 2017's randomization tests, as pure JAX functions.

Zhang, Bengio, Hardt, Recht, Vinyals, "Understanding deep learning requires
rethinking generalization", ICLR 2017, Section 2:

  clean       the original data.
  partial p   each *training* label independently, with probability p, is
              replaced by a uniform draw over all classes. The draw may equal
              the true label, so about p * (K-1)/K labels actually change
              (0.9p with 10 classes).
  randlabels  partial with p = 1.
  shufpix     ONE random permutation of the pixel positions, applied to every
              image, train and test (a fixed, invertible change of input space).
  randpix     an independent random permutation of pixel positions per image.
  gaussian    every training image replaced by Gaussian noise whose mean and
              variance match the training set's (a scalar mean and variance
              over all pixels of the dataset's FULL training split, before
              dataset.train_size: `input_statistics`).
plus Badger 2022 ("Why deep learning generalizes", arXiv 2211.09639):
  noise f     input mixing x * f + noise * (1 - f), with the same Gaussian noise
              as `gaussian` (so noise f=0 is `gaussian`, f=1 is `clean`).
plus Arpit et al. 2017 ("A closer look at memorization in deep networks", Sec. 4):
  randinput p each training input independently, with probability p, replaced by
              `gaussian`'s noise for that example (labels kept), so randinput 1 is
              `gaussian` and the replaced examples nest as p grows.
  noise_both f  the mixing of Badger's released code (objective_generalization.py):
              x * f + (N(0, 1)/3 + 1/2) * (1 - f) in BOTH splits, training and
              test inputs alike (fixed noise per example; [0, 1]-pixel units),
              so that the held-out data of forced memorization and the test set
              share the training inputs' distribution. The test split's noise is
              its own stream. f=0: pure noise inputs with the true labels.

Every corruption is a pure function of (seed, example index): the randomness of
example i comes from `fold_in(key, i)`, never from a batch or device layout, so
the corrupted data is the same on 1 device or 1,000, on 1 host or 64. The
corruptions nest across training-set sizes: example i's corrupted label or
input is the same at every dataset.train_size. For gaussian and noise this
needs the statistics of the full training split, which the resolver
(workload.resolve -> Workload.input_stats) computes and `corrupt` takes as
`input_stats`; without them (a direct call) they are the given x_train's. Test
labels are never corrupted; test inputs are changed only by `shufpix`, the one
corruption that is a fixed re-coding of the input space, and by `noise_both`,
whose test set measures generalization on equally noisy inputs (Badger's
held-out accuracy), so that the test set measures generalization on clean data
everywhere else. A "pixel" is one spatial
position: its channels move together.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import flax
import jax
import jax.numpy as jnp

from memobench import specs
from memobench.registry import Registry

# Distinct sub-streams of the corruption key, so that label and input
# corruptions of one seed are independent of each other.
_LABEL_STREAM, _PERMUTATION_STREAM, _NOISE_STREAM = 1, 2, 3
_TEST_NOISE_STREAM = 4  # noise_both: the test split's noise
_INPUT_COIN_STREAM = 5  # randinput: whether example i's input is replaced


@flax.struct.dataclass
class CorruptedData:
  """The data a run trains and evaluates on, plus what scoring needs to know."""
  x_train: jax.Array
  y_train: jax.Array            # the labels the model is trained on
  x_test: jax.Array
  y_test: jax.Array             # always the true test labels
  y_train_original: jax.Array   # the true training labels
  label_resampled: jax.Array    # bool: the label was redrawn (prob. p)
  label_changed: jax.Array      # bool: the redrawn label differs from the true one
  num_classes: int = flax.struct.field(pytree_node=False)


# (mean, std) of the training inputs that gaussian / noise draw their noise from.
InputStats = tuple[jax.Array, jax.Array]


@dataclasses.dataclass(frozen=True)
class Kind:
  """A corruption kind: `apply(key, data, level, input_stats) -> CorruptedData`."""
  apply: Callable[[jax.Array, CorruptedData, float, InputStats | None], CorruptedData]
  takes_level: bool
  describe: Callable[[float], str]
  # Draws from the training inputs' mean and std (Workload.input_stats).
  uses_input_stats: bool = False


def clean_data(x_train, y_train, x_test, y_test, num_classes: int) -> CorruptedData:
  y_train = jnp.asarray(y_train, jnp.int32)
  none = jnp.zeros(y_train.shape, bool)
  return CorruptedData(jnp.asarray(x_train, jnp.float32), y_train,
                       jnp.asarray(x_test, jnp.float32), jnp.asarray(y_test, jnp.int32),
                       y_train, none, none, num_classes)


def corrupt(key: jax.Array, data: CorruptedData, corruption: specs.CorruptionSpec,
            input_stats: InputStats | None = None) -> CorruptedData:
  """Applies `corruption` to clean data; a pure function of (key, data, input_stats).

  input_stats: (mean, std) of the full training split (`input_statistics`), for
  the kinds that use them (gaussian, noise); None: those of data.x_train.
  """
  return KINDS.get(corruption.kind).apply(key, data, corruption.level, input_stats)


def uses_input_stats(corruption: specs.CorruptionSpec) -> bool:
  return KINDS.get(corruption.kind).uses_input_stats


@jax.jit
def input_statistics(x: jax.Array) -> InputStats:
  """The scalar mean and standard deviation over all of `x` (float32)."""
  x = jnp.asarray(x, jnp.float32)
  return jnp.mean(x), jnp.std(x)


def _example_keys(key: jax.Array, stream: int, n: int) -> jax.Array:
  """One key per example: fold_in(fold_in(key, stream), index)."""
  stream_key = jax.random.fold_in(key, stream)
  return jax.vmap(lambda i: jax.random.fold_in(stream_key, i))(jnp.arange(n, dtype=jnp.uint32))


def _clean(key, data, level, stats):
  del key, level, stats
  return data


def _partial(key, data, level, stats):
  del stats
  return _resample_labels(key, data, level)


def _randlabels(key, data, level, stats):
  del level, stats
  return _resample_labels(key, data, 1.0)


def _resample_labels(key, data, p):
  keys = _example_keys(key, _LABEL_STREAM, data.y_train.shape[0])

  def draw(k):
    k_coin, k_label = jax.random.split(k)
    return (jax.random.bernoulli(k_coin, p),
            jax.random.randint(k_label, (), 0, data.num_classes, jnp.int32))

  resampled, random_label = jax.vmap(draw)(keys)
  y = jnp.where(resampled, random_label, data.y_train_original)
  return data.replace(y_train=y, label_resampled=resampled,
                             label_changed=y != data.y_train_original)


def _flat_pixels(x):
  """(N, *spatial, C) -> (N, P, C): one row per pixel position."""
  return x.reshape(x.shape[0], -1, x.shape[-1])


def pixel_permutation(key: jax.Array, x_shape) -> jax.Array:
  """The single permutation of pixel positions that `shufpix` uses."""
  # math.prod, not jnp.prod: under jit a jnp product of the shape is a tracer.
  num_pixels = math.prod(x_shape[1:-1])
  return jax.random.permutation(jax.random.fold_in(key, _PERMUTATION_STREAM), num_pixels)


def _shufpix(key, data, level, stats):
  del level, stats
  perm = pixel_permutation(key, data.x_train.shape)
  shuffle = lambda x: _flat_pixels(x)[:, perm].reshape(x.shape)
  return data.replace(x_train=shuffle(data.x_train), x_test=shuffle(data.x_test))


def _randpix(key, data, level, stats):
  del level, stats
  x = data.x_train
  flat = _flat_pixels(x)
  keys = _example_keys(key, _PERMUTATION_STREAM, x.shape[0])
  permuted = jax.vmap(lambda k, img: img[jax.random.permutation(k, img.shape[0])])(keys, flat)
  return data.replace(x_train=permuted.reshape(x.shape))


def gaussian_noise(key: jax.Array, x: jax.Array, stats: InputStats | None = None) -> jax.Array:
  """Per-example Gaussian noise of x's shape with mean and std `stats` (None: x's own)."""
  mean, std = (jnp.mean(x), jnp.std(x)) if stats is None else stats
  keys = _example_keys(key, _NOISE_STREAM, x.shape[0])
  noise = jax.vmap(lambda k: jax.random.normal(k, x.shape[1:], x.dtype))(keys)
  return mean + std * noise


def _gaussian(key, data, level, stats):
  del level
  return data.replace(x_train=gaussian_noise(key, data.x_train, stats))


def _noise(key, data, level, stats):
  x = data.x_train
  return data.replace(x_train=x * level + gaussian_noise(key, x, stats) * (1.0 - level))


def released_code_noise(key: jax.Array, shape, stream: int = _NOISE_STREAM) -> jax.Array:
  """Per-example N(0, 1)/3 + 1/2 of `shape` (examples first): Badger's released code's noise."""
  keys = _example_keys(key, stream, shape[0])
  return jax.vmap(lambda k: jax.random.normal(k, shape[1:], jnp.float32))(keys) / 3.0 + 0.5


def mix_both_splits(key: jax.Array, x_train: jax.Array, x_test: jax.Array, level):
  """noise_both's inputs: x * f + noise * (1 - f) in each split, noise per example index."""
  mix = lambda x, stream: x * level + released_code_noise(key, x.shape, stream) * (1.0 - level)
  return mix(x_train, _NOISE_STREAM), mix(x_test, _TEST_NOISE_STREAM)


def _noise_both(key, data, level, stats):
  del stats
  x_train, x_test = mix_both_splits(key, data.x_train, data.x_test, level)
  return data.replace(x_train=x_train, x_test=x_test)


def input_replaced(key: jax.Array, n: int, p) -> jax.Array:
  """randinput's mask: example i's input is replaced iff uniform(fold_in(key, i)) < p.

  One uniform per example (not a Bernoulli draw per level), so the examples
  replaced at p are a subset of those replaced at any larger p.
  """
  keys = _example_keys(key, _INPUT_COIN_STREAM, n)
  return jax.vmap(lambda k: jax.random.uniform(k))(keys) < p


def _randinput(key, data, level, stats):
  x = data.x_train
  replaced = input_replaced(key, x.shape[0], level).reshape((-1,) + (1,) * (x.ndim - 1))
  return data.replace(x_train=jnp.where(replaced, gaussian_noise(key, x, stats), x))


# The table of corruption kinds (each a pure function of (key, example index)).
KINDS: Registry[Kind] = Registry("corruption", "corruption.kind", {
    "clean": Kind(_clean, takes_level=False,
        describe=lambda _: "clean data"),
    "partial": Kind(_partial, takes_level=True,
        describe=lambda p: f"each training label resampled uniformly with prob. {p:g}"),
    "randlabels": Kind(_randlabels, takes_level=False,
        describe=lambda _: "every training label replaced by a uniform random class"),
    "shufpix": Kind(_shufpix, takes_level=False,
        describe=lambda _: "one fixed pixel permutation for every image, train and test"),
    "randpix": Kind(_randpix, takes_level=False,
        describe=lambda _: "an independent pixel permutation per training image"),
    "gaussian": Kind(_gaussian, takes_level=False,
        describe=lambda _: "training images replaced by Gaussian noise of the data's mean/variance",
        uses_input_stats=True),
    "randinput": Kind(_randinput, takes_level=True,
        describe=lambda p: f"each training input replaced by gaussian noise with prob. {p:g}",
        uses_input_stats=True),
    "noise": Kind(_noise, takes_level=True,
        describe=lambda f: f"training inputs mixed x*{f:g} + gaussian noise*{1 - f:g} (Badger 2022)",
        uses_input_stats=True),
    "noise_both": Kind(_noise_both, takes_level=True,
        describe=lambda f: f"training and test inputs mixed x*{f:g} + (randn/3+1/2)*{1 - f:g} "
                           "(Badger 2022's released code)"),
})


def check(spec: specs.Spec) -> None:
  c = spec.corruption
  kind = KINDS.get(c.kind)
  if kind.takes_level and not 0.0 <= c.level <= 1.0:
    raise specs.SpecError(f"corruption.level must be in [0, 1] for {c.kind}, got {c.level}")
  if not kind.takes_level and c.level != 0.0:
    raise specs.SpecError(f"corruption.level is not used by {c.kind}; leave it at 0")


def describe(corruption: specs.CorruptionSpec) -> str:
  return KINDS.get(corruption.kind).describe(corruption.level)
