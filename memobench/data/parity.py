"""Sparse parities (Barak et al. 2022, "Hidden progress in deep learning: SGD learns
parities near the computational limit"): a procedural, offline task family.

An input is uniform in {-1, +1}^n; its label is the parity of k hidden coordinates
S (|S| = k), i.e. the product chi_S(x) = prod_{i in S} x_i in {-1, +1}. As a
memobench classification dataset the label is the class (1 - chi_S(x)) / 2: class
0 for an even number of -1s among S, class 1 for an odd number (XOR of the bits).

Determinism (everything is a pure function of the dataset's seed):
  * S is drawn once from the dataset's seed, PARITY_SEED (fixed; never the run's
    seed), so the training set, the test set and every online batch of every run
    share the same hidden coordinates;
  * example i is a pure function of (seed, i): its bits come from
    fold_in(examples key, i), whatever the subset or the order asked for. The
    fixed training set is indices [0, num_train), the test set
    [num_train, num_train + num_test): disjoint draws of the same distribution
    (for small n the same input can occur in both, as it would in fresh samples);
  * the online mode (`online_batch`) draws fresh inputs from a key and step the
    caller gives (e.g. a run's own sub-stream), labelled with the same S.

Registered datasets are named ``parity_n{n}_k{k}`` (`dataset_name`), each with
NUM_TRAIN training and NUM_TEST test examples of shape (n, 1) (a 1-D signal, as
mnist1d), float32 in {-1, +1}, int32 labels in {0, 1}.

`coordinate_mass_ratio` is the Fourier-gap measurement of the experiment
(docs/METRICS.md, "Sparse parity: the Fourier gap").
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

from memobench.data.dataset import DataError, Dataset

PARITY_SEED = 0  # the dataset's seed: it picks S and every fixed example
NUM_TRAIN = 10_000
NUM_TEST = 2_000
# Sub-streams of the dataset key (fold_in): the hidden coordinates and the examples.
_COORDS_STREAM, _EXAMPLES_STREAM = 0, 1
# The registered family (datasets.DATASETS); make(n, k) builds any 1 <= k <= n.
REGISTERED = tuple((n, k) for k in (2, 3) for n in (10, 15, 20, 25, 30, 40, 50))

_NAME = re.compile(r"^parity_n(\d+)_k(\d+)$")


def dataset_name(n: int, k: int) -> str:
  return f"parity_n{n}_k{k}"


def parse_name(name: str) -> tuple[int, int]:
  """(n, k) of a name ``parity_n{n}_k{k}``; DataError for anything else."""
  m = _NAME.match(name)
  if not m:
    raise DataError(f"{name!r} is not a sparse-parity dataset name (parity_n<N>_k<K>)")
  n, k = int(m.group(1)), int(m.group(2))
  check_sizes(n, k)
  return n, k


def check_sizes(n: int, k: int) -> None:
  if not 1 <= k <= n:
    raise DataError(f"sparse parity needs 1 <= k <= n, got n={n}, k={k}")


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z: np.ndarray) -> np.ndarray:
  """SplitMix64's finalizer (Steele et al. 2014): a bijective 64-bit mix, vectorized."""
  z = np.asarray(z, np.uint64) + _GOLDEN
  z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return z ^ (z >> np.uint64(31))


def hidden_coordinates(n: int, k: int, seed: int = PARITY_SEED) -> np.ndarray:
  """The k relevant coordinates S (sorted int32), a function of (seed, n, k)."""
  check_sizes(n, k)
  rng = np.random.default_rng([seed, _COORDS_STREAM, n, k])
  return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int32)


def parity_of(x, coords):
  """chi_S(x) = prod_{i in S} x_i for x of shape (..., n) in {-1, +1} (numpy or jax)."""
  return x[..., np.asarray(coords)].prod(axis=-1)


def label_of(x, coords):
  """The class (1 - chi_S(x)) / 2 in {0, 1}, int32 (numpy or jax, as x)."""
  return ((1 - parity_of(x, coords)) // 2).astype(np.int32)


def examples(n: int, indices, seed: int = PARITY_SEED) -> np.ndarray:
  """Inputs (len(indices), n) in {-1, +1}, float32: row i is a function of (seed, i) alone.

  Bit j of example i is the top bit of a counter-based hash of (seed, i, j)
  (SplitMix64), so any subset, in any order, gives the same rows; numpy only
  (no compilation), ~10 ms for the 12,000 examples of n = 20.
  """
  indices = np.asarray(indices, np.uint64).reshape(-1, 1)
  with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
    stream = _splitmix64(np.uint64(seed) * np.uint64(2) + np.uint64(_EXAMPLES_STREAM))
    word = _splitmix64(stream ^ _splitmix64(indices))
    bits = _splitmix64(word + np.arange(n, dtype=np.uint64)[None, :]) >> np.uint64(63)
  return (1.0 - 2.0 * bits).astype(np.float32)


def online_batch(key: jax.Array, step, batch_size: int, n: int, coords):
  """A fresh batch (x (B, n), y (B,) classes) drawn from fold_in(key, step) (jittable)."""
  x = jax.random.rademacher(jax.random.fold_in(key, step), (batch_size, n), dtype=jnp.float32)
  return x, label_of(x, coords)


def make(n: int, k: int, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
         seed: int = PARITY_SEED) -> Dataset:
  """The fixed training and test sets of the (n, k) sparse parity."""
  coords = hidden_coordinates(n, k, seed)
  x_train = examples(n, np.arange(num_train), seed)
  x_test = examples(n, np.arange(num_train, num_train + num_test), seed)
  return Dataset(dataset_name(n, k),
                 x_train[..., None], np.asarray(label_of(x_train, coords)),
                 x_test[..., None], np.asarray(label_of(x_test, coords)), num_classes=2)


def coordinate_mass_ratio(matrix, coords):
  """Mean L2 norm of the rows in S over the mean L2 norm of the other rows.

  `matrix` is (n, width), one row per input coordinate: the first layer's kernel,
  or its movement from initialization (the experiment's Fourier gap), or a
  gradient. ~1 for an i.i.d. matrix; it grows as the rows of the relevant
  coordinates grow relative to the rest. Leading axes (e.g. vmapped seeds) are
  kept: (..., n, width) -> (...). numpy in, numpy out; jax (traced too) in, jax out.
  """
  n = matrix.shape[-2]
  relevant = np.zeros((n,), bool)
  relevant[np.asarray(coords, int)] = True
  k = int(relevant.sum())
  if not 0 < k < n:
    raise ValueError(f"coordinate_mass_ratio needs 0 < |S| < n, got |S|={k}, n={n}")
  norms = ((matrix * matrix).sum(axis=-1)) ** 0.5  # (..., n)
  return norms[..., relevant].mean(axis=-1) / norms[..., ~relevant].mean(axis=-1)
