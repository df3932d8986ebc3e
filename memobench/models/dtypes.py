"""The models' computation dtype (spec.model.dtype): float32, or bfloat16 mixed precision.

With `bfloat16` every layer's matmuls and convolutions take bfloat16 inputs
and kernels (flax's `dtype=`), while parameters, optimizer state and the loss
stay float32 (`param_dtype` is left at float32; losses.cross_entropy casts the
logits to float32 first), the usual mixed precision of accelerator training.
BatchNorm computes its statistics in float32 either way. `float32` builds the
layers exactly as before the field existed (no dtype passed), so every
existing spec keeps its numbers. On CPU bfloat16 is no faster
(docs/BENCHMARKS.md); it is meant for GPUs and TPUs.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from memobench import specs

DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(model_spec: specs.ModelSpec) -> Any:
  """The `dtype=` to give flax layers: None (float32, flax's default) or jnp.bfloat16."""
  return DTYPES[model_spec.dtype]


def check(model_spec: specs.ModelSpec) -> None:
  if model_spec.dtype not in DTYPES:
    raise specs.SpecError(f"model.dtype must be one of {', '.join(DTYPES)}, got "
                          f"{model_spec.dtype!r}")
