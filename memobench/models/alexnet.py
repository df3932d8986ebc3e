"""Small AlexNet of Zhang et al. 2017 (Table 1: "AlexNet (small)", 1,387,786 parameters).

Source: Zhang, Bengio, Hardt, Recht, Vinyals, "Understanding deep learning
requires rethinking generalization", ICLR 2017, Appendix A: "a modified AlexNet
... two (convolution 5x5 -> max-pool 3x3 -> local response normalization)
modules followed by two fully connected layers with 384 and 192 hidden units,
and a 10-way linear layer". The layer sizes follow the TensorFlow CIFAR-10
tutorial model it derives from: 64 channels per convolution (stride 1, SAME),
max-pool 3x3 stride 2 SAME, LRN with depth radius 4, bias 1, alpha 0.001/9,
beta 0.75. On 28x28x3 inputs the parameter count is exactly Table 1's:

  conv1 5*5*3*64+64 = 4,864        conv2 5*5*64*64+64 = 102,464
  fc1 (7*7*64)*384+384 = 1,204,608 fc2 384*192+192 = 73,920   out 192*10+10 = 1,930
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from memobench import specs
from memobench.models import dtypes


def local_response_norm(x: jax.Array, depth_radius: int = 4, bias: float = 1.0,
                        alpha: float = 0.001 / 9.0, beta: float = 0.75) -> jax.Array:
  """tf.nn.local_response_normalization over the channel axis (NHWC).

  out = x / (bias + alpha * sum_{|j - c| <= depth_radius} x_j^2) ** beta
  """
  sq = jnp.square(x)
  window = 2 * depth_radius + 1
  summed = jax.lax.reduce_window(sq, 0.0, jax.lax.add, (1, 1, 1, window), (1, 1, 1, 1),
                                 ((0, 0), (0, 0), (0, 0), (depth_radius, depth_radius)))
  return x / (bias + alpha * summed) ** beta


class AlexNet(nn.Module):
  num_classes: int
  channels: tuple[int, int] = (64, 64)
  hidden: tuple[int, int] = (384, 192)
  dropout: float = 0.0
  dtype: Any = None  # computation dtype (models/dtypes.py); None: float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = x
    for c in self.channels:
      h = nn.relu(nn.Conv(c, (5, 5), padding="SAME", dtype=self.dtype)(h))
      h = nn.max_pool(h, (3, 3), strides=(2, 2), padding="SAME")
      h = local_response_norm(h)
    h = h.reshape(h.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
      if self.dropout > 0:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    self.sow("intermediates", "features", h)
    return nn.Dense(self.num_classes, dtype=self.dtype)(h)


def alexnet(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return AlexNet(num_classes, dropout=model_spec.dropout,
                 dtype=dtypes.compute_dtype(model_spec))
