"""Model registry: name -> constructor of a flax module.

Every model is a `flax.linen.Module` called as
``module.apply(variables, x, train=bool, rngs=...)`` on a batch shaped
(B, *input_shape) and returning logits (B, num_classes). A model records its
penultimate-layer features with ``self.sow('intermediates', 'features', h)`` so
that representation metrics (effective rank) can read them. Non-parameter
collections (e.g. BatchNorm's 'batch_stats') are carried by the training loop.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn

from memobench import specs

Constructor = Callable[[specs.ModelSpec, int], nn.Module]
_MODELS: dict[str, Constructor] = {}
_CONVOLUTIONAL: set[str] = set()


def register(name: str, convolutional: bool = False):
  """Registers a model; `convolutional` models are not step-fused on CPU (train.py)."""
  def wrap(constructor: Constructor) -> Constructor:
    _MODELS[name] = constructor
    if convolutional:
      _CONVOLUTIONAL.add(name)
    return constructor
  return wrap


def has_convolutions(name: str) -> bool:
  return name in _CONVOLUTIONAL


def names() -> list[str]:
  return sorted(_MODELS)


def build(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return _MODELS[model_spec.name](model_spec, num_classes)


@specs.add_validator
def _check_model(spec: specs.Spec) -> None:
  if spec.model.name not in _MODELS:
    raise specs.SpecError(
        f"model.name: unknown model {spec.model.name!r}; known: {', '.join(names())}")


# Importing the model modules registers them.
from memobench.models import mlp  # noqa: E402,F401  pylint: disable=wrong-import-position
from memobench.models import alexnet, inception, wrn  # noqa: E402,F401  pylint: disable=wrong-import-position
