"""Multilayer perceptrons of Zhang et al. 2017 (Table 1: "MLP 1x512", "MLP 3x512").

Inputs are flattened; each hidden layer is Dense(512) + ReLU (+ dropout when the
spec asks for it); the output layer is linear. On 28x28x3 inputs the parameter
counts are 1,209,866 (1x512) and 1,735,178 (3x512), as in Table 1.

Options (spec.model; each leaves existing specs' parameters unchanged at its default):
  activation        relu (default) | linear: no nonlinearity, a deep linear network.
  linear_expansion  d > 1: every Dense layer (hidden and output) is trained as a
                    product of d linear layers with nothing between them (Huh et
                    al. 2023, "The low-rank simplicity bias in deep networks",
                    Sec. 6, "linear over-parameterization"): the same function
                    class, and `collapse` folds it back into the plain MLP's
                    parameters. memobench's factorization: in->out without bias,
                    then d-1 factors out->out (no bias but the last), each with
                    flax's default (LeCun normal) initialization.
  depth, width      model "mlp" only: `depth` hidden layers of `width` units.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from memobench import specs
from memobench.models import dtypes


ACTIVATIONS = {"relu": nn.relu, "linear": lambda h: h}


class ExpandedDense(nn.Module):
  """Dense(features) as a product of `factors` linear layers (Dense_0 ... Dense_{d-1})."""
  features: int
  factors: int
  dtype: Any = None

  @nn.compact
  def __call__(self, h):
    for k in range(self.factors):
      h = nn.Dense(self.features, use_bias=k == self.factors - 1, dtype=self.dtype)(h)
    return h


class MLP(nn.Module):
  num_classes: int
  hidden: tuple[int, ...] = (512,)
  dropout: float = 0.0
  activation: str = "relu"
  linear_expansion: int = 1
  dtype: Any = None  # computation dtype (models/dtypes.py); None: float32

  def _dense(self, features: int):
    # At expansion 1 the plain (auto-named Dense_i) layer, so existing specs keep
    # their parameter names and values.
    if self.linear_expansion == 1:
      return nn.Dense(features, dtype=self.dtype)
    return ExpandedDense(features, self.linear_expansion, self.dtype)

  @nn.compact
  def __call__(self, x, *, train: bool):
    act = ACTIVATIONS[self.activation]
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = act(self._dense(width)(h))
      if self.dropout > 0:
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
    self.sow("intermediates", "features", h)
    return self._dense(self.num_classes)(h)


def collapse(params: dict) -> dict:
  """The plain MLP's parameters (Dense_i) of an expanded MLP's (ExpandedDense_i).

  x K_0 K_1 ... K_{d-1} + b_{d-1}: one Dense layer with kernel K_0 K_1 ... K_{d-1}
  and the last factor's bias. Parameters of an unexpanded MLP come back unchanged.
  """
  out = {}
  for name, layer in params.items():
    if not name.startswith("ExpandedDense_"):
      out[name] = layer
      continue
    factors = [layer[f"Dense_{k}"] for k in range(len(layer))]
    kernel = factors[0]["kernel"]
    for f in factors[1:]:
      kernel = kernel @ f["kernel"]
    out["Dense_" + name.removeprefix("ExpandedDense_")] = {"kernel": kernel,
                                                           "bias": factors[-1]["bias"]}
  return out


def check(model_spec: specs.ModelSpec, sized: bool) -> None:
  """The MLP options' values (`sized`: the model reads depth and width)."""
  if model_spec.activation not in ACTIVATIONS:
    raise specs.SpecError(f"model.activation must be one of {', '.join(ACTIVATIONS)}, got "
                          f"{model_spec.activation!r}")
  if model_spec.linear_expansion < 1:
    raise specs.SpecError(f"model.linear_expansion must be >= 1, got "
                          f"{model_spec.linear_expansion}")
  for field in ("depth", "width"):
    value = getattr(model_spec, field)
    if value is not None and not sized:
      raise specs.SpecError(f"model.{field} is read only by model 'mlp', not "
                            f"{model_spec.name!r}")
    if value is not None and value < 1:
      raise specs.SpecError(f"model.{field} must be >= 1, got {value}")


def _mlp(model_spec: specs.ModelSpec, num_classes: int, hidden: tuple[int, ...]) -> MLP:
  return MLP(num_classes, hidden, model_spec.dropout, model_spec.activation,
             model_spec.linear_expansion, dtypes.compute_dtype(model_spec))


def mlp1x512(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return _mlp(model_spec, num_classes, (512,))


def mlp3x512(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return _mlp(model_spec, num_classes, (512, 512, 512))


def mlp(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  """model.depth hidden layers of model.width units (default 1 x 512, i.e. mlp1x512)."""
  depth = 1 if model_spec.depth is None else model_spec.depth
  width = 512 if model_spec.width is None else model_spec.width
  return _mlp(model_spec, num_classes, (width,) * depth)
