"""Turn-over dropout's per-example masks: what the training step applies.

Kobayashi, Yokoi, Suzuki, Inui 2020 (arXiv 2012.04207): each training example
i owns a fixed dropout mask m_i over the units of the model's dropout layers,
a pure function of (run key, layer, i), recomputed on the fly and never
stored. Training applies the example's own mask whenever it is in a batch;
the metric (memobench/metrics/turnover.py, which defines the score and
imports these masks from here) evaluates the own and the flipped mask after
training. They sit beside the steps so that training never imports metrics.

The mask bit of example i, layer L, unit u is
bernoulli(fold_in(fold_in(key, crc32(L's module path)), i))[u], key =
fold_in(run key, prng.TURNOVER). The flipped mask keeps a fraction `rate` of
units and is scaled by 1/rate, the own mask 1/(1 - rate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import zlib
from typing import Any, Callable, ContextManager

import flax.linen as nn
import jax
import jax.numpy as jnp

from memobench import prng, specs


def enabled(spec: specs.Spec) -> bool:
  return spec.analysis.turnover_dropout > 0


def model_spec(spec: specs.Spec) -> specs.ModelSpec:
  """The model spec to build: dropout layers at the turn-over rate when it is on."""
  if not enabled(spec):
    return spec.model
  return dataclasses.replace(spec.model, dropout=spec.analysis.turnover_dropout)


def turnover_key(run_key: jax.Array) -> jax.Array:
  return jax.random.fold_in(run_key, prng.TURNOVER)


def layer_id(module: nn.Module) -> int:
  """A stable integer for a layer: crc32 of its module path (not Python's hash)."""
  path = "/".join(str(p) for p in module.scope.path) if module.scope else module.name
  return zlib.crc32(path.encode()) & 0x7FFFFFFF


def example_masks(key: jax.Array, layer: int, idx: jax.Array, shape: tuple[int, ...],
                  keep: float) -> jax.Array:
  """Boolean keep-masks (len(idx), *shape): example i's mask depends only on (key, layer, i)."""
  layer_key = jax.random.fold_in(key, layer)
  return jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(layer_key, i), keep, shape))(
      jnp.asarray(idx, jnp.uint32))


class NoDropoutLayers(specs.SpecError):
  """The model has no nn.Dropout layer for turn-over dropout to act on."""


@contextlib.contextmanager
def masks_applied(key: jax.Array, rate: float, idx: jax.Array, flip: bool = False,
                  require: bool = True):
  """Within this context, every nn.Dropout call uses the examples' own (or flipped) masks.

  `idx` holds the training-set index of each row of the batch. Applies in
  training and evaluation mode alike. With `require`, a model that has no
  dropout layer raises NoDropoutLayers when the context exits.
  """
  keep = 1.0 - rate
  applied = []

  def interceptor(next_fun, args, kwargs, context):
    if not (isinstance(context.module, nn.Dropout) and context.method_name == "__call__"):
      return next_fun(*args, **kwargs)
    inputs = args[0] if args else kwargs["inputs"]
    mask = example_masks(key, layer_id(context.module), idx, tuple(inputs.shape[1:]), keep)
    if flip:
      mask, scale = ~mask, 1.0 / rate
    else:
      scale = 1.0 / keep
    applied.append(context.module.name)
    return jnp.where(mask, inputs * scale, jnp.zeros_like(inputs)).astype(inputs.dtype)

  with nn.intercept_methods(interceptor):
    yield
  if require and not applied:
    raise NoDropoutLayers("analysis.turnover_dropout: the model has no dropout layer "
                          "(nn.Dropout) for turn-over dropout to act on")


def masker(spec: specs.Spec, run_key: jax.Array) -> Callable[[Any], ContextManager]:
  """idx -> context applying the examples' own masks (a no-op when turn-over is off).

  train.make_steps wraps the training forward pass in `masker(spec, key)(idx)`.
  Calls with idx=None (e.g. a held-out batch) are never masked.
  """
  if not enabled(spec):
    return lambda idx: contextlib.nullcontext()
  key, rate = turnover_key(run_key), spec.analysis.turnover_dropout
  return lambda idx: (contextlib.nullcontext() if idx is None
                      else masks_applied(key, rate, idx))
