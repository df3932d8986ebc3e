"""Dinh et al. 2017's reparametrization of a ReLU MLP: sharper or flatter, the same function.

"Sharp minima can generalize for deep nets" (Dinh, Pascanu, Bengio & Bengio,
ICML 2017), Sec. 4 (the alpha-scale transformation): ReLU is positively
homogeneous (relu(alpha z) = alpha relu(z) for alpha > 0), so for two
consecutive dense layers k and k+1

    W_k <- alpha W_k,  b_k <- alpha b_k,  W_{k+1} <- W_{k+1} / alpha

leaves the network's function unchanged while the loss Hessian at the new
point is T^-1 H T^-1 with T = diag(alpha on layer k, 1/alpha on layer k+1):
the layer-k block shrinks by alpha^2, the layer-(k+1) block grows by alpha^2,
so the top eigenvalue can be made as large as one likes. b_{k+1} is unchanged.
It holds for any positively homogeneous activation (ReLU, the identity);
dropout and max-pooling commute with it too; BatchNorm does not enter an MLP here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def dense_layer_names(params: dict[str, Any]) -> list[str]:
  """The MLP's dense layers in order: Dense_0, Dense_1, ... (flax's auto names)."""
  names = sorted((k for k in params if k.startswith("Dense_")),
                 key=lambda k: int(k.split("_", 1)[1]))
  if len(names) != len(params) or [int(k.split("_", 1)[1]) for k in names] != list(
      range(len(names))):
    raise ValueError(f"not a plain MLP's parameters (Dense_0 ... Dense_N): {sorted(params)}")
  return names


def rescale(params: dict[str, Any], layer: int, alpha: float) -> dict[str, Any]:
  """Dinh et al.'s alpha-scale transformation of dense layers `layer` and `layer + 1`.

  params: an MLP's {"Dense_i": {"kernel", "bias"}} (memobench.models.mlp). The
  function computed is unchanged for alpha > 0 (ReLU or linear hidden units).
  Returns new parameters; the input is not modified.
  """
  if not alpha > 0:
    raise ValueError(f"alpha must be positive (ReLU is only positively homogeneous), got {alpha}")
  names = dense_layer_names(params)
  if not 0 <= layer < len(names) - 1:
    raise ValueError(f"layer must be in [0, {len(names) - 2}] (a dense layer followed by "
                     f"another), got {layer}")
  first, second = names[layer], names[layer + 1]
  out = {k: dict(v) for k, v in params.items()}
  out[first] = {"kernel": params[first]["kernel"] * alpha, "bias": params[first]["bias"] * alpha}
  out[second] = {"kernel": params[second]["kernel"] / alpha, "bias": params[second]["bias"]}
  return out


def scaling(params: dict[str, Any], layer: int, alpha: float) -> dict[str, Any]:
  """T of the transformation as a pytree like `params`: the factor of each coordinate."""
  names = dense_layer_names(params)
  factor = {names[layer]: alpha, names[layer + 1]: 1.0 / alpha}
  return {k: {"kernel": np.full(np.shape(v["kernel"]), factor.get(k, 1.0)),
              "bias": np.full(np.shape(v["bias"]),
                              alpha if k == names[layer] else 1.0)}
          for k, v in params.items()}
