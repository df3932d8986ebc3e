"""A run's randomness: one root key per seed, and one named sub-stream per purpose.

Every random draw of a run descends from `run_key(seed)` through
``jax.random.fold_in(run_key(seed), STREAM)``, with a different STREAM for each
purpose, so that no two purposes share random bits (a dropout mask never
correlates with a crop, nor a corruption with an initialization). A new purpose
takes a new number here; `STREAMS` is checked for duplicates at import.

The PRNG implementation is pinned (threefry2x32), so a seed gives the same
numbers whatever JAX's default implementation becomes.
"""

from __future__ import annotations

import jax

DATA = 0          # corruptions (workload.corrupted_data -> corruptions.corrupt)
INIT = 1          # parameter initialization
SHUFFLE = 2       # each epoch's order of the training set
DROPOUT = 3       # the model's dropout masks, per step
TURNOVER = 4      # turn-over dropout's per-example masks (turnover.py)
HELDOUT = 5       # forced memorization's held-out batches (objectives.py)
CSR = 6           # critical sample ratio's search (metrics/critical_sample_ratio.py)
AUGMENT = 7       # random-crop augmentation, per step (preprocessing.random_crop)
MEMORIZATION = 8  # the Feldman & Zhang ensemble's models (memorization.py)
INPUT_NOISE = 9   # Gaussian input noise, per step (dataset.input_noise)
SHARPNESS = 10    # sharpness: the power iteration's start vector (metrics/sharpness.py)
INPUT_STABILITY = 16  # input stability's noise inputs (metrics/input_stability.py)
EPS_SHARPNESS = 21  # eps-sharpness: L-BFGS-B's start and the random projection (eps_sharpness.py)
PARITY_ONLINE = 31  # sparse parity's fresh online batches (experiments/barak2022_sparse_parity.py)
LEAVE_ONE_OUT = 41  # exact leave-one-out's training seeds (estimators/leave_one_out.py)
PROXY_RUNS = 42     # the one-run estimators' runs of the estimator benchmark (same module)
POPULATION_DESIGN = 43  # the balanced inclusion design's blocks (estimators/population.py)

STREAMS = {name: value for name, value in globals().items() if name.isupper()}
if len(set(STREAMS.values())) != len(STREAMS):
  raise AssertionError(f"prng streams must be distinct: {STREAMS}")


def run_key(seed: int) -> jax.Array:
  """The root PRNG key of a run, with the PRNG implementation pinned."""
  return jax.random.key(seed, impl="threefry2x32")
