"""Image preprocessing of Zhang et al. 2017 and their random-crop augmentation.

Zhang, Bengio, Hardt, Recht, Vinyals, ICLR 2017, Section 2 / Appendix A: CIFAR-10
images are scaled to [0, 1], center-cropped to 28x28 and whitened per image
(`tf.image.per_image_standardization`); Table 1's "random crop" column adds
random-crop augmentation during training.

`zhang_preprocess` runs once, in numpy, when a dataset is loaded. `random_crop`
is a pure JAX function applied to each training batch inside the jitted train
step (training/steps.py), with one PRNG key per example.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Zhang et al.'s CIFAR-10 input size.
CROP_SIZE = 28
# Random-crop padding: a 28x28 window of the 28x28 image padded by 2 on every
# side shifts it by up to +-2 pixels, the same range as a random 28x28 crop of
# the original 32x32 image around its center crop.
CROP_PADDING = 2


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
  """Central size x size window of (N, H, W, C) images; unchanged if already that size."""
  h, w = x.shape[1:3]
  if h < size or w < size:
    raise ValueError(f"cannot center-crop {h}x{w} images to {size}x{size}")
  top, left = (h - size) // 2, (w - size) // 2
  return x[:, top:top + size, left:left + size, :]


def per_image_standardization(x: np.ndarray) -> np.ndarray:
  """(x - mean) / max(std, 1/sqrt(num_elements)) per image, like tf.image.per_image_standardization."""
  x = x.astype(np.float32)
  axes = tuple(range(1, x.ndim))
  mean = x.mean(axis=axes, keepdims=True)
  std = x.std(axis=axes, keepdims=True)
  min_std = 1.0 / np.sqrt(np.prod(x.shape[1:]))
  return ((x - mean) / np.maximum(std, min_std)).astype(np.float32)


def whitening_scale(x: np.ndarray) -> np.ndarray:
  """float32 (N,): 1 / max(std, 1/sqrt(num_elements)) of each image, per_image_standardization's factor.

  A displacement d of image i in the units of `x` is a displacement
  d * whitening_scale(x)[i] of its whitened copy: what converts a radius given
  in [0, 1]-pixel units (the critical sample ratio's) to whitened units.
  """
  x = x.astype(np.float32)
  std = x.std(axis=tuple(range(1, x.ndim)))
  return (1.0 / np.maximum(std, 1.0 / np.sqrt(np.prod(x.shape[1:])))).astype(np.float32)


def zhang_preprocess(images: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
  """uint8 (N, H, W, C) -> float32 (N, size, size, C): /255, center crop, per-image whitening."""
  x = images.astype(np.float32) / 255.0
  return per_image_standardization(center_crop(x, size))


def zhang_input_scale(images: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
  """float32 (N,): per image, how much zhang_preprocess magnifies a [0, 1]-pixel displacement."""
  return whitening_scale(center_crop(images.astype(np.float32) / 255.0, size))


def random_crop(key: jax.Array, x: jax.Array, padding: int = CROP_PADDING) -> jax.Array:
  """Zero-pads each (H, W, C) image of the batch x by `padding` and crops a random H x W window.

  Example i of the batch uses key fold_in(key, i), so the crops of a batch are a
  pure function of (key, position in the batch). Zero padding of a whitened
  image pads with its mean.
  """
  n, h, w = x.shape[:3]
  padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def crop_one(i, img):
    k = jax.random.fold_in(key, i)
    top, left = jax.random.randint(k, (2,), 0, 2 * padding + 1)
    return jax.lax.dynamic_slice(img, (top, left, 0), (h, w, img.shape[-1]))

  return jax.vmap(crop_one)(jnp.arange(n), padded)
