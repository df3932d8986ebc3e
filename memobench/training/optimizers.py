"""Optimizer registry: an `OptimizerSpec` -> an optax transformation.

Zhang et al. 2017 train with SGD, momentum 0.9, and a learning rate multiplied
by 0.95 after every epoch (`lr_decay_per_epoch`); weight decay, when a spec asks
for it, is coupled L2 (added to the gradient before momentum), as in their runs.
"""

from __future__ import annotations

from typing import Callable

import optax

from memobench import specs

Factory = Callable[[specs.OptimizerSpec, optax.Schedule], optax.GradientTransformation]
_OPTIMIZERS: dict[str, Factory] = {}


def register(kind: str):
  def wrap(factory: Factory) -> Factory:
    _OPTIMIZERS[kind] = factory
    return factory
  return wrap


def learning_rate(opt: specs.OptimizerSpec, steps_per_epoch: int) -> optax.Schedule:
  """lr * decay ** floor(step / steps_per_epoch)."""
  return optax.exponential_decay(opt.lr, transition_steps=steps_per_epoch,
                                 decay_rate=opt.lr_decay_per_epoch, staircase=True)


def build(opt: specs.OptimizerSpec, steps_per_epoch: int) -> optax.GradientTransformation:
  schedule = learning_rate(opt, steps_per_epoch)
  tx = _OPTIMIZERS[opt.kind](opt, schedule)
  if opt.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(opt.weight_decay), tx)
  return tx


@register("sgd")
def _sgd(opt, schedule):
  return optax.sgd(schedule, momentum=opt.momentum or None)


@register("adam")
def _adam(opt, schedule):
  return optax.adam(schedule)


@specs.add_validator
def _check_optimizer(spec: specs.Spec) -> None:
  if spec.optimizer.kind not in _OPTIMIZERS:
    raise specs.SpecError(f"optimizer.kind: unknown optimizer {spec.optimizer.kind!r}; "
                          f"known: {', '.join(sorted(_OPTIMIZERS))}")
