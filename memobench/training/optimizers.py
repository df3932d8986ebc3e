"""The optimizer table: an `OptimizerSpec` -> an optax transformation.

Zhang et al. 2017 train with SGD, momentum 0.9, and a learning rate multiplied
by 0.95 after every epoch (`lr_decay_per_epoch`); weight decay, when a spec asks
for it, is coupled L2 (added to the gradient before momentum), as in their runs.
"""

from __future__ import annotations

from typing import Callable

import optax

from memobench import specs
from memobench.registry import Registry

Factory = Callable[[specs.OptimizerSpec, optax.Schedule], optax.GradientTransformation]


def learning_rate(opt: specs.OptimizerSpec, steps_per_epoch: int) -> optax.Schedule:
  """lr * decay ** floor(step / steps_per_epoch)."""
  return optax.exponential_decay(opt.lr, transition_steps=steps_per_epoch,
                                 decay_rate=opt.lr_decay_per_epoch, staircase=True)


def build(opt: specs.OptimizerSpec, steps_per_epoch: int) -> optax.GradientTransformation:
  schedule = learning_rate(opt, steps_per_epoch)
  tx = OPTIMIZERS.get(opt.kind)(opt, schedule)
  if opt.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(opt.weight_decay), tx)
  return tx


def _sgd(opt, schedule):
  return optax.sgd(schedule, momentum=opt.momentum or None)


def _adam(opt, schedule):
  return optax.adam(schedule)


OPTIMIZERS: Registry[Factory] = Registry("optimizer", "optimizer.kind", {
    "sgd": _sgd,
    "adam": _adam,
})


def check(spec: specs.Spec) -> None:
  OPTIMIZERS.get(spec.optimizer.kind)
