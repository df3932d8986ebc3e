"""Multilayer perceptrons of Zhang et al. 2017 (Table 1: "MLP 1x512", "MLP 3x512").

Inputs are flattened; each hidden layer is Dense(512) + ReLU (+ dropout when the
spec asks for it); the output layer is linear. On 28x28x3 inputs the parameter
counts are 1,209,866 (1x512) and 1,735,178 (3x512), as in Table 1.
"""

from __future__ import annotations

import flax.linen as nn

from memobench import specs


class MLP(nn.Module):
  num_classes: int
  hidden: tuple[int, ...] = (512,)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
      if self.dropout > 0:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    self.sow("intermediates", "features", h)
    return nn.Dense(self.num_classes)(h)


def mlp1x512(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return MLP(num_classes, (512,), model_spec.dropout)


def mlp3x512(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return MLP(num_classes, (512, 512, 512), model_spec.dropout)
