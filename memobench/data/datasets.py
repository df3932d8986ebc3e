"""The dataset table: name -> loader of whole splits as numpy arrays (data/dataset.py).

Offline datasets (data/offline.py) need no network: digits, mnist5k, mnist1d.
Sparse parities (data/parity.py, Barak et al. 2022) are procedural and offline:
parity_n{n}_k{k} for the (n, k) of parity.REGISTERED.
TFDS datasets (data/tfds_data.py) read prepared array_record files: cifar10,
cifar100, svhn_cropped, mnist, fashion_mnist (tensorflow_datasets itself is
imported only when one is loaded).

Adding a dataset: a loader in one of those modules (or a new one), one line in
DATASETS, and its defaults (model, optimizer, budget) in catalogue.py.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from memobench import specs
from memobench.data import offline, parity, tfds_data
from memobench.data.dataset import DataError, Dataset  # noqa: F401  (the names callers know)
from memobench.registry import Registry

Loader = Callable[[str | None], Dataset]


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  load: Loader
  offline: bool  # ships with an installed package (or is procedural): no download, no --data_dir
  # The catalogue crosses it with every corruption (catalogue.py); False for the
  # sparse-parity task family, whose specs are registered one per (n, k).
  every_corruption: bool = True


def _tfds(name: str) -> DatasetEntry:
  return DatasetEntry(lambda data_dir=None: tfds_data.load(name, data_dir), offline=False)


DATASETS: Registry[DatasetEntry] = Registry("dataset", "dataset.name", {
    "digits": DatasetEntry(offline.load_digits, offline=True),
    "mnist5k": DatasetEntry(offline.load_mnist5k, offline=True),
    "mnist1d": DatasetEntry(offline.load_mnist1d, offline=True),
    **{name: _tfds(name) for name in tfds_data.SOURCES},
    **{parity.dataset_name(n, k):
       DatasetEntry(lambda data_dir=None, n=n, k=k: parity.make(n, k), offline=True,
                    every_corruption=False)
       for n, k in parity.REGISTERED},
})
# The offline datasets the catalogue crosses with every corruption.
OFFLINE = tuple(name for name, entry in DATASETS.items()
                if entry.offline and entry.every_corruption)


def names() -> list[str]:
  return DATASETS.names()


def check(spec: specs.Spec) -> None:
  DATASETS.get(spec.dataset.name)


def load(dataset_spec: specs.DatasetSpec, data_dir: str | None = None) -> Dataset:
  """Loads the dataset a spec names, restricted to `train_size` if set."""
  if dataset_spec.name not in DATASETS:
    raise DataError(f"unknown dataset {dataset_spec.name!r}; known: {', '.join(names())}")
  ds = DATASETS.get(dataset_spec.name).load(data_dir)
  n = dataset_spec.train_size
  if n is not None:
    if n > ds.num_train:
      raise DataError(f"dataset.train_size={n} exceeds the {ds.num_train} training "
                      f"examples of {ds.name}")
    first = lambda a: None if a is None else a[:n]  # noqa: E731
    ds = dataclasses.replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n],
                             input_scale_train=first(ds.input_scale_train),
                             raw_train=first(ds.raw_train),
                             source_index_train=first(ds.source_index_train))
  return ds
