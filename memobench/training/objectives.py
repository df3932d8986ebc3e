"""Training objectives: the table of `spec.analysis.objective` -> loss of one batch.

An objective is called inside the training step as

  objective(forward, x, y, idx, step) -> (loss, new_model_state)

where ``forward(inputs, example_idx)`` runs the model in training mode and
returns (logits, new_model_state); `example_idx` (the batch's training-set
indices) lets per-example hooks such as turn-over dropout act, and is None for
inputs that are not training examples. An objective that needs data beyond
the training set declares a `heldout` loader; the resolver (workload.py) loads
it once, before any step is built.

  ce                   mean cross-entropy of the training batch (the default;
                       Zhang et al. 2017).
  forced_memorization  CE(training batch) - CE(held-out batch): Badger 2022,
                       "Why deep learning generalizes" (arXiv 2211.09639):
                       minimizing the training loss while *maximizing* the loss
                       on held-out data of the same distribution drives a model
                       to memorize natural data without generalizing. The
                       held-out pool is the dataset's training examples beyond
                       `dataset.train_size` (same split, same distribution,
                       never trained on), with their true labels and clean
                       inputs; each step draws a batch of `budget.batch_size`
                       from it, uniformly with replacement, from
                       fold_in(key, step). Each held-out example's CE is capped
                       at log K (the loss of a uniform prediction over K
                       classes): the uncapped objective is unbounded below and,
                       measured on digits (train_size 1000), collapsed to
                       chance on the training set too (train acc 0.11); capped
                       per example, the model fits (train acc 0.99) while test
                       accuracy falls from 0.96 (ce) to 0.68, and fitting takes
                       ~9x the steps: memorization without generalization.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, specs
from memobench.registry import Registry
from memobench.data import datasets
from memobench.training.losses import cross_entropy

# Corruptions that leave inputs alone: the clean held-out inputs then come from
# the distribution the model trains on.
_LABEL_ONLY = ("clean", "partial", "randlabels")

Forward = Callable[[jax.Array, Any], tuple[jax.Array, Any]]
Objective = Callable[[Forward, jax.Array, jax.Array, jax.Array, jax.Array], tuple[jax.Array, Any]]
HeldOut = Any  # whatever an objective's `heldout` loader returns


@dataclasses.dataclass(frozen=True)
class ObjectiveEntry:
  # (spec, run key, held-out data or None) -> the objective of one batch.
  make: Callable[[specs.Spec, jax.Array, HeldOut], Objective]
  check: Callable[[specs.Spec], None] = lambda spec: None
  # (spec, data_dir) -> data the objective needs beyond the training set.
  heldout: Callable[[specs.Spec, "str | None"], HeldOut] | None = None


def _ce(spec, run_key, heldout):
  del spec, run_key, heldout

  def objective(forward, x, y, idx, step):
    del step
    logits, new_model_state = forward(x, idx)
    return jnp.mean(cross_entropy(logits, y)), new_model_state
  return objective


def heldout_pool(spec: specs.Spec, data_dir: str | None = None):
  """(x, y, num_classes): the training examples beyond `dataset.train_size`, true labels."""
  full = datasets.load(dataclasses.replace(spec.dataset, train_size=None), data_dir)
  n = spec.dataset.train_size
  if n is None or n >= full.num_train:
    raise specs.SpecError(
        f"analysis.objective=forced_memorization needs dataset.train_size below the "
        f"{full.num_train} training examples of {full.name}: the rest are its held-out pool")
  return full.x_train[n:], full.y_train[n:], full.num_classes


def _forced_memorization(spec, run_key, heldout):
  x_pool, y_pool, num_classes = heldout
  # The pool is closed over, so it becomes a constant of the compiled step:
  # fine for the offline datasets (~1-3 MB), not meant for pools of CIFAR size.
  x_pool, y_pool = jnp.asarray(x_pool, jnp.float32), jnp.asarray(y_pool, jnp.int32)
  key = jax.random.fold_in(run_key, prng.HELDOUT)
  batch = spec.budget.batch_size
  chance_ce = float(np.log(num_classes))  # CE of a uniform prediction, log K

  def objective(forward, x, y, idx, step):
    logits, new_model_state = forward(x, idx)
    pick = jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, x_pool.shape[0])
    heldout_logits, _ = forward(x_pool[pick], None)  # its BatchNorm statistics are dropped
    heldout_ce = jnp.minimum(cross_entropy(heldout_logits, y_pool[pick]), chance_ce)
    loss = jnp.mean(cross_entropy(logits, y)) - jnp.mean(heldout_ce)
    return loss, new_model_state
  return objective


def _check_forced_memorization(spec: specs.Spec) -> None:
  if spec.dataset.train_size is None:
    raise specs.SpecError("analysis.objective=forced_memorization needs dataset.train_size "
                          "(the training examples beyond it are the held-out pool)")
  if spec.corruption.kind not in _LABEL_ONLY:
    raise specs.SpecError(f"analysis.objective=forced_memorization needs a corruption that "
                          f"leaves inputs clean ({', '.join(_LABEL_ONLY)}), got "
                          f"{spec.corruption.kind}")


OBJECTIVES: Registry[ObjectiveEntry] = Registry("objective", "analysis.objective", {
    "ce": ObjectiveEntry(_ce),
    "forced_memorization": ObjectiveEntry(_forced_memorization, _check_forced_memorization,
                                          heldout_pool),
})


def names() -> list[str]:
  return OBJECTIVES.names()


def check(spec: specs.Spec) -> None:
  OBJECTIVES.get(spec.analysis.objective).check(spec)
