"""Training objectives: the table of `spec.analysis.objective` -> loss of one batch.

An objective is called inside the training step as

  objective(forward, x, y, idx, step[, weights=w]) -> (loss, new_model_state)

where ``forward(inputs, example_idx)`` runs the model in training mode and
returns (logits, new_model_state); `example_idx` (the batch's training-set
indices) lets per-example hooks such as turn-over dropout act, and is None for
inputs that are not training examples. `weights` (per example of the batch;
given only for runs with loop.Member.loss_weights, e.g. leave-one-out) weight
the training batch's mean: sum(w * loss) / sum(w). An objective that needs data beyond
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
                       memobench's capped variant; label-only corruptions.
  forced_memorization_test, forced_memorization_pool
                       the same split objective as Badger's released code runs
                       it (training/forced_memorization.py): the bounded
                       softmax-then-CE for both terms, the held-out batch
                       paired in order with the training batch, from the test
                       split itself (_test) or an equal-size pool of training
                       examples n..2n-1 (_pool), carrying the run's corruption
                       (input noise included), and the term dropped while the
                       held-out batch is at chance.
  igr                  mean CE + analysis.igr_lambda * ||grad_params CE||^2 of
                       the training batch: Barrett & Dherin 2021, "Implicit
                       gradient regularization" (ICLR), their explicit
                       gradient regularizer, by double backprop. Their
                       backward error analysis gives plain gradient descent
                       with step h the same penalty implicitly, with lambda =
                       h/4 (its modified loss L + h/4 ||grad L||^2). The
                       penalty wraps the step's whole loss function
                       (`gradient_penalized`, applied by training/steps.py),
                       since it differentiates with respect to the parameters.
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
from memobench.training import forced_memorization
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

  def objective(forward, x, y, idx, step, weights=None):
    del step
    logits, new_model_state = forward(x, idx)
    return weighted_mean(cross_entropy(logits, y), weights), new_model_state
  return objective


def weighted_mean(per_example: jax.Array, weights: jax.Array | None) -> jax.Array:
  """The batch mean, or sum(w * l) / sum(w) with per-example weights (0 where all are 0)."""
  if weights is None:
    return jnp.mean(per_example)
  return jnp.sum(weights * per_example) / jnp.maximum(jnp.sum(weights), 1e-12)


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

  def objective(forward, x, y, idx, step, weights=None):
    logits, new_model_state = forward(x, idx)
    pick = jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, x_pool.shape[0])
    heldout_logits, _ = forward(x_pool[pick], None)  # its BatchNorm statistics are dropped
    heldout_ce = jnp.minimum(cross_entropy(heldout_logits, y_pool[pick]), chance_ce)
    loss = weighted_mean(cross_entropy(logits, y), weights) - jnp.mean(heldout_ce)
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


def gradient_penalized(loss_fn: Callable[[Any], tuple[jax.Array, Any]], lam: float):
  """params -> (loss + lam * ||grad loss||^2, aux) for loss_fn: params -> (loss, aux).

  The squared norm sums over every parameter; differentiating the result is
  double backprop (the gradient of the gradient's norm).
  """
  def penalized(params):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    norm_sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))
    return loss + lam * norm_sq, aux
  return penalized


def _check_igr(spec: specs.Spec) -> None:
  if not 0.0 <= spec.analysis.igr_lambda < float("inf"):
    raise specs.SpecError(f"analysis.igr_lambda must be finite and >= 0, got "
                          f"{spec.analysis.igr_lambda}")


OBJECTIVES: Registry[ObjectiveEntry] = Registry("objective", "analysis.objective", {
    "ce": ObjectiveEntry(_ce),
    "igr": ObjectiveEntry(_ce, _check_igr),
    "forced_memorization": ObjectiveEntry(_forced_memorization, _check_forced_memorization,
                                          heldout_pool),
    "forced_memorization_test": ObjectiveEntry(forced_memorization.make,
                                               forced_memorization.check,
                                               forced_memorization.load),
    "forced_memorization_pool": ObjectiveEntry(forced_memorization.make,
                                               forced_memorization.check,
                                               forced_memorization.load),
})


def names() -> list[str]:
  return OBJECTIVES.names()


def check(spec: specs.Spec) -> None:
  OBJECTIVES.get(spec.analysis.objective).check(spec)
  if spec.analysis.igr_lambda and spec.analysis.objective != "igr":
    raise specs.SpecError(f"analysis.igr_lambda={spec.analysis.igr_lambda} needs "
                          f"analysis.objective=igr, got {spec.analysis.objective}")
