"""Small Inception of Zhang et al. 2017 (Table 1: "Inception (small)", 1,649,402 parameters).

Source: Zhang, Bengio, Hardt, Recht, Vinyals, "Understanding deep learning
requires rethinking generalization", ICLR 2017, Appendix A and Figure 3, a
reduced Inception v3 for 28x28x3 inputs built from three modules:

  Conv(c, k, s)        convolution (with bias) -> BatchNorm -> ReLU
  Inception(c1, c3)    concat[Conv(c1, 1x1, 1), Conv(c3, 3x3, 1)]
  Downsample(c3)       concat[Conv(c3, 3x3, 2), MaxPool(3x3, 2)]

  Conv(96, 3x3, 1)
  Inception(32, 32), Inception(32, 48), Downsample(80)                     28x28 -> 14x14
  Inception(112, 48), Inception(96, 64), Inception(80, 80), Inception(48, 96), Downsample(96)
                                                                           14x14 -> 7x7
  Inception(176, 160), Inception(176, 160), mean pool 7x7, Dense(10)

BatchNorm has no learnable scale or offset (the convolutions carry the biases),
which is what makes the count equal Table 1's 1,649,402. Running statistics are
kept in the 'batch_stats' collection (momentum 0.9, eps 1e-3). `inception_nobn`
is the same network without BatchNorm (Zhang et al. Section 3 discuss batch
normalization as an implicit regularizer); it has the same parameter count.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memobench import specs
from memobench.models import dtypes


class ConvModule(nn.Module):
  features: int
  kernel: int
  strides: int = 1
  batch_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = nn.Conv(self.features, (self.kernel, self.kernel), (self.strides, self.strides),
                padding="SAME", dtype=self.dtype)(x)
    if self.batch_norm:
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-3,
                       use_scale=False, use_bias=False, dtype=self.dtype)(h)
    return nn.relu(h)


class InceptionModule(nn.Module):
  ch1: int
  ch3: int
  batch_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    a = ConvModule(self.ch1, 1, batch_norm=self.batch_norm, dtype=self.dtype)(x, train=train)
    b = ConvModule(self.ch3, 3, batch_norm=self.batch_norm, dtype=self.dtype)(x, train=train)
    return jnp.concatenate([a, b], axis=-1)


class DownsampleModule(nn.Module):
  ch3: int
  batch_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    a = ConvModule(self.ch3, 3, strides=2, batch_norm=self.batch_norm, dtype=self.dtype)(
        x, train=train)
    b = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    return jnp.concatenate([a, b], axis=-1)


class SmallInception(nn.Module):
  num_classes: int
  batch_norm: bool = True
  dropout: float = 0.0
  dtype: Any = None  # computation dtype (models/dtypes.py); None: float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool):
    bn, dt = self.batch_norm, self.dtype
    h = ConvModule(96, 3, batch_norm=bn, dtype=dt)(x, train=train)
    for c1, c3 in ((32, 32), (32, 48)):
      h = InceptionModule(c1, c3, bn, dt)(h, train=train)
    h = DownsampleModule(80, bn, dt)(h, train=train)
    for c1, c3 in ((112, 48), (96, 64), (80, 80), (48, 96)):
      h = InceptionModule(c1, c3, bn, dt)(h, train=train)
    h = DownsampleModule(96, bn, dt)(h, train=train)
    for c1, c3 in ((176, 160), (176, 160)):
      h = InceptionModule(c1, c3, bn, dt)(h, train=train)
    h = jnp.mean(h, axis=(1, 2))  # global mean pool (7x7 on 28x28 inputs)
    if self.dropout > 0:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    self.sow("intermediates", "features", h)
    return nn.Dense(self.num_classes, dtype=self.dtype)(h)


def inception(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return SmallInception(num_classes, batch_norm=True, dropout=model_spec.dropout,
                        dtype=dtypes.compute_dtype(model_spec))


def inception_nobn(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return SmallInception(num_classes, batch_norm=False, dropout=model_spec.dropout,
                        dtype=dtypes.compute_dtype(model_spec))
