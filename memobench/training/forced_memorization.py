"""Badger 2022's forced memorization as its released code runs it.

Badger, "Why deep learning generalizes" (arXiv 2211.09639), equations (4)-(5);
released code: github.com/blbadger/learning-generality, objective_generalization.py.
The network minimizes

  CE(training batch) - CE(held-out batch)

with the held-out batch paired in order with the training batch (the code zips
an unshuffled training loader with an unshuffled held-out loader, batch b with
batch b), Adam, and a network whose last layer is a softmax, so that PyTorch's
CrossEntropyLoss takes probabilities as logits: each term is the *bounded*
cross-entropy -log softmax(softmax(z))_y (`bounded_cross_entropy`; its exact
range is `bounded_ce_range`). The held-out term is dropped while the held-out
accuracy is below chance + 0.01 (the code's `low = test_accuracy < 0.11` for 10
classes, checked once per epoch on the held-out loader; here on each held-out
batch, `GATE_ABOVE_CHANCE`), so the model is not pushed below chance.

Two held-out sets, as the objective's name says (training/objectives.py):

  forced_memorization_test  the test split itself (the released code's
                            held-out loader is the test set; its 20 batches
                            per epoch equal the training set's 20).
  forced_memorization_pool  an equal-size pool: training-split examples
                            n .. 2n-1 for dataset.train_size = n (needs
                            2n <= the training split), so the held-out set
                            grows with n (a dataset-size sweep).

Both carry the run's corruption (training/objectives.py's capped variant does
not): the held-out inputs and labels are the run's corrupted data, recomputed
here from the same data key as a pure function of (seed, example index), so
input noise (`noise_both`, Badger's x*f + (randn/3 + 1/2)*(1-f)) is in the
training and the held-out inputs alike, and a pool under random labels has
random labels. Test labels are the true ones (as in every memobench test set).

Where memobench departs from the released code: training batches are those of
memobench's loop (reshuffled every epoch; the code never shuffles), and the
held-out batch of the k-th step of an epoch is held-out examples
[kB, (k+1)B) (mod the held-out size), always in index order; the gate is
checked per held-out batch, not per epoch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, specs
from memobench.data import corruptions, datasets
from memobench.training.losses import cross_entropy

# Held-out accuracy above which the held-out term is on: chance + this
# (the released code's 0.11 for CIFAR-10's 10 classes).
GATE_ABOVE_CHANCE = 0.01

SPLITS = ("test", "pool")


def bounded_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example -log softmax(softmax(logits))[label]: the released network's loss.

  Its last layer is nn.Softmax and nn.CrossEntropyLoss applies log-softmax
  again, so the loss sees probabilities p as logits: -p_y + log sum_j exp(p_j).
  """
  return cross_entropy(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), labels)


def bounded_ce_range(num_classes: int) -> tuple[float, float]:
  """The exact (min, max) of `bounded_cross_entropy` over K classes.

  l(p) = -p_y + log sum_j exp(p_j) is convex on the simplex, so its maximum is
  at a vertex: p = e_k, k != y, gives log(e + K - 1). Moving probability from
  any class j to y changes l at rate -1 + (s_y - s_j) < 0 (s = softmax(p)), so
  the minimum is the vertex e_y: log(e + K - 1) - 1. Both are attained only in
  the limit of infinite logits; the range is exactly 1 wide for every K.
  """
  top = math.log(math.e + num_classes - 1)
  return top - 1.0, top


@dataclasses.dataclass(frozen=True)
class HeldOutSource:
  """What the objective needs to rebuild the run's held-out set from its key."""
  split: str                        # test | pool
  dataset: datasets.Dataset         # the full dataset (no train_size)
  input_stats: tuple[Any, Any] | None
  train_size: int                   # n, the examples trained on


def split_of(objective: str) -> str:
  return objective.rsplit("_", 1)[-1]


def load(spec: specs.Spec, data_dir: str | None = None) -> HeldOutSource:
  """The objective's `heldout` loader: the full dataset and its input statistics."""
  full = datasets.load(dataclasses.replace(spec.dataset, train_size=None), data_dir)
  n = full.num_train if spec.dataset.train_size is None else min(spec.dataset.train_size,
                                                                 full.num_train)
  split = split_of(spec.analysis.objective)
  if split == "pool" and 2 * n > full.num_train:
    raise specs.SpecError(
        f"analysis.objective={spec.analysis.objective} needs dataset.train_size <= "
        f"{full.num_train // 2} (half the {full.num_train} training examples of {full.name}: "
        f"the next n are its held-out pool), got {n}")
  stats = None
  if corruptions.uses_input_stats(spec.corruption):
    # As workload._input_stats / Workload.corrupted_data compute them.
    mean, std = corruptions.input_statistics(full.x_train)
    stats = (np.float32(float(mean)), np.float32(float(std)))
  return HeldOutSource(split, full, stats, n)


# Jitted as Workload.corrupted_data jits it, so that both give the same floats (to rounding).
_corrupt = jax.jit(corruptions.corrupt, static_argnums=2)


def heldout_set(spec: specs.Spec, run_key: jax.Array,
                source: HeldOutSource) -> tuple[jax.Array, jax.Array]:
  """(x, y) of the held-out set, corrupted exactly as the run's data (same data key).

  Every corruption is a pure function of (seed, example index), so corrupting
  the first 2n training examples gives examples n..2n-1 as a run on 2n examples
  has them, and the test split as the run's own test split.
  """
  ds, n = source.dataset, source.train_size
  data_key = jax.random.fold_in(run_key, prng.DATA)
  if source.split == "test":
    clean = corruptions.clean_data(ds.x_train[:1], ds.y_train[:1], ds.x_test, ds.y_test,
                                   ds.num_classes)
    out = _corrupt(data_key, clean, spec.corruption, source.input_stats)
    return out.x_test, out.y_test
  clean = corruptions.clean_data(ds.x_train[:2 * n], ds.y_train[:2 * n], ds.x_test[:1],
                                 ds.y_test[:1], ds.num_classes)
  out = _corrupt(data_key, clean, spec.corruption, source.input_stats)
  return out.x_train[n:], out.y_train[n:]


def paired_indices(step: jax.Array, steps_per_epoch: int, batch: int, size: int) -> jax.Array:
  """Held-out indices paired with the training batch of `step`: the k-th batch of the epoch."""
  k = step % steps_per_epoch
  return (k * batch + jnp.arange(batch)) % size


def make(spec: specs.Spec, run_key: jax.Array, source: HeldOutSource):
  """The objective of one batch (objectives.Objective)."""
  x_heldout, y_heldout = heldout_set(spec, run_key, source)
  batch = spec.budget.batch_size
  steps_per_epoch = max(source.train_size // batch, 1)
  size = int(x_heldout.shape[0])
  gate = 1.0 / source.dataset.num_classes + GATE_ABOVE_CHANCE

  def objective(forward, x, y, idx, step, weights=None):
    logits, new_model_state = forward(x, idx)
    train_loss = bounded_cross_entropy(logits, y)
    train_term = (jnp.mean(train_loss) if weights is None else
                  jnp.sum(weights * train_loss) / jnp.maximum(jnp.sum(weights), 1e-12))
    pick = paired_indices(step, steps_per_epoch, batch, size)
    heldout_logits, _ = forward(x_heldout[pick], None)  # its BatchNorm statistics are dropped
    y_pick = y_heldout[pick]
    accuracy = jnp.mean(jnp.argmax(heldout_logits, -1) == y_pick)
    on = jax.lax.stop_gradient((accuracy >= gate).astype(jnp.float32))
    loss = train_term - on * jnp.mean(bounded_cross_entropy(heldout_logits, y_pick))
    return loss, new_model_state
  return objective


def check(spec: specs.Spec) -> None:
  if split_of(spec.analysis.objective) == "pool" and spec.dataset.train_size is None:
    raise specs.SpecError(f"analysis.objective={spec.analysis.objective} needs "
                          "dataset.train_size (training examples n..2n-1 are its held-out pool)")
