"""The in-memory dataset every loader returns, and the fixed train/test split.

Inputs are float32 arrays shaped (N, *spatial, channels) -- (N, H, W, C) for
images, (N, L, 1) for 1-D signals -- and labels int32. The train/test split of
each dataset is fixed (it never depends on the run's seed), so results of
different seeds are comparable.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# The fixed permutation that orders examples before a train/test split.
_SPLIT_SEED = 0


class DataError(RuntimeError):
  """Data that cannot be loaded; the message says what, where and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  # Per example, the factor by which preprocessing magnified a [0, 1]-pixel
  # displacement (1/sigma_i of per-image whitening, preprocessing.whitening_scale),
  # float32 (N,); None: the inputs are in [0, 1]-pixel units (factor 1). Used to
  # give the critical sample ratio's radius in pixel units (metrics/critical_sample_ratio.py).
  input_scale_train: np.ndarray | None = None
  input_scale_test: np.ndarray | None = None
  # The examples as the source gave them, before any preprocessing (dtype kept),
  # and their index in the source (before the train/test split): the cross-tool
  # keys of the per-example table (example_table.raw_key). None: not recorded.
  raw_train: np.ndarray | None = None
  raw_test: np.ndarray | None = None
  source_index_train: np.ndarray | None = None
  source_index_test: np.ndarray | None = None

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.x_train.shape[1:])

  @property
  def num_train(self) -> int:
    return int(self.x_train.shape[0])


def fixed_split(x: np.ndarray, y: np.ndarray, num_test: int, name: str,
                num_classes: int, raw: np.ndarray | None = None) -> Dataset:
  """The first `num_test` examples of a fixed shuffle are the test set.

  raw: the source's examples before preprocessing (default `x`), kept with their
  source indices (Dataset.raw_*, source_index_*).
  """
  order = np.random.RandomState(_SPLIT_SEED).permutation(len(x))
  raw = (x if raw is None else raw)[order]
  x, y = x[order].astype(np.float32), y[order].astype(np.int32)
  return Dataset(name, x[num_test:], y[num_test:], x[:num_test], y[:num_test], num_classes,
                 raw_train=raw[num_test:], raw_test=raw[:num_test],
                 source_index_train=order[num_test:].astype(np.int64),
                 source_index_test=order[:num_test].astype(np.int64))
