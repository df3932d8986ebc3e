"""The model table: name -> a constructor of a flax module, and its metadata.

Every model is a `flax.linen.Module` called as
``module.apply(variables, x, train=bool, rngs=...)`` on a batch shaped
(B, *input_shape) and returning logits (B, num_classes). A model records its
penultimate-layer features with ``self.sow('intermediates', 'features', h)`` so
that representation metrics (effective rank) can read them. Non-parameter
collections (e.g. BatchNorm's 'batch_stats') are carried by the training loop.

Adding a model: its module and constructor in a file here, one line in MODELS.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn

from memobench import specs
from memobench.models import alexnet, dtypes, inception, mlp, wrn
from memobench.registry import Registry

Constructor = Callable[[specs.ModelSpec, int], nn.Module]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  build: Constructor
  # Convolutional models are not step-fused on CPU (training/steps.py,
  # `uses_fused_steps`): XLA:CPU runs convolutions in loop bodies 20-50x slower.
  convolutional: bool = False
  # Reads spec.model's MLP options (activation, linear_expansion; mlp.check), and
  # also depth and width (`sized`). Other models refuse those options when set.
  mlp_options: bool = False
  sized: bool = False


MODELS: Registry[ModelEntry] = Registry("model", "model.name", {
    "mlp1x512": ModelEntry(mlp.mlp1x512, mlp_options=True),
    "mlp3x512": ModelEntry(mlp.mlp3x512, mlp_options=True),
    "mlp": ModelEntry(mlp.mlp, mlp_options=True, sized=True),
    "alexnet": ModelEntry(alexnet.alexnet, convolutional=True),
    "inception": ModelEntry(inception.inception, convolutional=True),
    "inception_nobn": ModelEntry(inception.inception_nobn, convolutional=True),
    "wrn28_1": ModelEntry(wrn.wrn28_1, convolutional=True),
})


def names() -> list[str]:
  return MODELS.names()


def has_convolutions(name: str) -> bool:
  return MODELS.get(name).convolutional


def build(model_spec: specs.ModelSpec, num_classes: int) -> nn.Module:
  return MODELS.get(model_spec.name).build(model_spec, num_classes)


def check(spec: specs.Spec) -> None:
  entry = MODELS.get(spec.model.name)
  dtypes.check(spec.model)  # every model reads model.dtype
  if entry.mlp_options:
    mlp.check(spec.model, entry.sized)
    return
  for field in ("activation", "linear_expansion", "depth", "width"):
    if getattr(spec.model, field) != getattr(specs.ModelSpec, field):
      raise specs.SpecError(f"model.{field} is an MLP option; {spec.model.name!r} does not "
                            "read it")
