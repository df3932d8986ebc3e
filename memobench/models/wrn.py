"""Wide Residual Network WRN-28-1: a modern baseline next to Zhang et al.'s models.

Source: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, Table 1 and
Section 2: depth 28 -> (28 - 4) / 6 = 4 pre-activation basic blocks per group,
three groups of 16k, 32k, 64k channels with widening factor k = 1 (strides 1,
2, 2), a 3x3 stem of 16 channels, BN-ReLU before each 3x3 convolution (no conv
biases), a 1x1 projection shortcut where the shape changes, a final BN-ReLU,
global average pooling and a linear classifier. Dropout between the two
convolutions of a block when the spec asks for it (the paper's "dropout in
residual blocks"). BatchNorm statistics live in 'batch_stats'.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memobench import specs
from memobench.models import dtypes


def _bn(train: bool, dtype: Any) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype)


class WideBlock(nn.Module):
  features: int
  strides: int
  dropout: float = 0.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x, *, train: bool):
    dt = self.dtype
    pre = nn.relu(_bn(train, dt)(x))
    h = nn.Conv(self.features, (3, 3), (self.strides, self.strides), padding="SAME",
                use_bias=False, dtype=dt)(pre)
    h = nn.relu(_bn(train, dt)(h))
    if self.dropout > 0:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False, dtype=dt)(h)
    if x.shape[-1] != self.features or self.strides != 1:
      x = nn.Conv(self.features, (1, 1), (self.strides, self.strides), use_bias=False,
                  dtype=dt)(pre)
    return x + h


class WideResNet(nn.Module):
  num_classes: int
  depth: int = 28
  width: int = 1
  dropout: float = 0.0
  dtype: Any = None  # computation dtype (models/dtypes.py); None: float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool):
    blocks = (self.depth - 4) // 6
    h = nn.Conv(16, (3, 3), padding="SAME", use_bias=False, dtype=self.dtype)(x)
    for group, strides in enumerate((1, 2, 2)):
      for i in range(blocks):
        h = WideBlock(16 * 2**group * self.width, strides if i == 0 else 1,
                      self.dropout, self.dtype)(h, train=train)
    h = nn.relu(_bn(train, self.dtype)(h))
    h = jnp.mean(h, axis=(1, 2))
    self.sow("intermediates", "features", h)
    return nn.Dense(self.num_classes, dtype=self.dtype)(h)


def wrn28_1(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return WideResNet(num_classes, depth=28, width=1, dropout=model_spec.dropout,
                    dtype=dtypes.compute_dtype(model_spec))
