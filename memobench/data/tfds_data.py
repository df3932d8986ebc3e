"""Real datasets through tensorflow-datasets, read without TensorFlow.

Each loader reads a prepared TFDS dataset with `tfds` random-access data
sources over array_record files (`builder.as_data_source`), which decode with
numpy/PIL: training never needs TensorFlow. Only *preparing* a dataset
(download + encode + write array_record) needs it: `python -m memobench.prepare
--dataset=NAME` with the optional `prepare` extra installed.

The data dir is `--data_dir` when given, else TFDS's own default
($TFDS_DATA_DIR, else ~/tensorflow_datasets). It may be a gs:// path on a pod.

A loader never downloads: data that is not prepared as array_record raises
`DataError` at once with one line naming the dataset, the folder it
looked in and the command that prepares it. (A TFDS download attempt without
network retries for minutes; it must never start from a training run.)

Preprocessing (Zhang et al. 2017, Section 2): CIFAR-10/100 and SVHN images are
scaled to [0, 1], center-cropped to 28x28x3 and whitened per image
(`preprocessing.zhang_preprocess`); MNIST and Fashion-MNIST (already 28x28x1)
are scaled to [0, 1], like the offline `mnist5k`. The TFDS train and test
splits are used as they are, in their stored order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Callable

import numpy as np

from memobench.data import preprocessing
from memobench.data.dataset import DataError, Dataset

# Examples fetched per data-source call (array_record reads a batch in parallel).
_READ_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class TfdsSource:
  """A TFDS dataset as memobench reads it."""
  tfds_name: str
  preprocess: Callable[[np.ndarray], np.ndarray]
  train_split: str = "train"
  test_split: str = "test"
  # Per example, how much `preprocess` magnifies a [0, 1]-pixel displacement
  # (Dataset.input_scale_*); None: the preprocessed inputs are [0, 1] pixels.
  input_scale: Callable[[np.ndarray], np.ndarray] | None = None


def _scale(images: np.ndarray) -> np.ndarray:
  return images.astype(np.float32) / 255.0


SOURCES: dict[str, TfdsSource] = {
    "cifar10": TfdsSource("cifar10", preprocessing.zhang_preprocess,
                            input_scale=preprocessing.zhang_input_scale),
    "cifar100": TfdsSource("cifar100", preprocessing.zhang_preprocess,
                            input_scale=preprocessing.zhang_input_scale),
    "svhn_cropped": TfdsSource("svhn_cropped", preprocessing.zhang_preprocess,
                            input_scale=preprocessing.zhang_input_scale),
    "mnist": TfdsSource("mnist", _scale),
    "fashion_mnist": TfdsSource("fashion_mnist", _scale),
}


def prepare_command(name: str, data_dir: str | None) -> str:
  """The command that prepares dataset `name` where a run with `data_dir` looks."""
  flag = f" --data_dir={data_dir}" if data_dir else ""
  return f"python -m memobench.prepare --dataset={name}{flag}"


@contextlib.contextmanager
def _quiet_absl():
  """Silences TFDS's absl warnings (missing dataset_info, no OpenCV), which are
  expected here and would bury the one-line error of a missing dataset."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def builder(name: str, data_dir: str | None):
  """The TFDS builder of memobench dataset `name` (no download, no network)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds.builder(SOURCES[name].tfds_name, data_dir=data_dir)


def check_prepared(name: str, data_dir: str | None, b) -> None:
  """Raises DataError (one line) unless `b` is prepared as array_record."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  if data_dir:
    where = f"{b.data_path}"
  elif os.environ.get("TFDS_DATA_DIR"):
    where = f"{b.data_path} (from TFDS_DATA_DIR)"
  else:
    where = f"{b.data_path} (TFDS's default; set --data_dir or TFDS_DATA_DIR to look elsewhere)"
  if not b.is_prepared():
    raise DataError(
        f"dataset {name} is not prepared: no TFDS {b.info.full_name} in {where}; "
        f"prepare it with: {prepare_command(name, data_dir)}")
  if b.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
    raise DataError(
        f"dataset {name} in {where} is stored as {b.info.file_format.value}, but memobench "
        f"reads array_record; prepare it with: {prepare_command(name, data_dir)}")


def _read_split(b, split: str) -> tuple[np.ndarray, np.ndarray]:
  """All (image, label) pairs of a split, as uint8 (N, H, W, C) and int32 (N,)."""
  source = b.as_data_source(split=split)
  n = len(source)
  images = np.empty((n, *b.info.features["image"].shape), np.uint8)
  labels = np.empty((n,), np.int32)
  for start in range(0, n, _READ_CHUNK):
    keys = list(range(start, min(n, start + _READ_CHUNK)))
    for i, example in zip(keys, source.__getitems__(keys)):
      images[i] = example["image"]
      labels[i] = example["label"]
  return images, labels


def load(name: str, data_dir: str | None = None) -> Dataset:
  """Loads and preprocesses TFDS dataset `name` from `data_dir` (see module docstring)."""
  src = SOURCES[name]
  with _quiet_absl():
    b = builder(name, data_dir)
    check_prepared(name, data_dir, b)
    x_train, y_train = _read_split(b, src.train_split)
    x_test, y_test = _read_split(b, src.test_split)
  scale = {} if src.input_scale is None else {
      "input_scale_train": src.input_scale(x_train), "input_scale_test": src.input_scale(x_test)}
  return Dataset(name, src.preprocess(x_train), y_train, src.preprocess(x_test),
                          y_test, num_classes=b.info.features["label"].num_classes, **scale,
                          raw_train=x_train, raw_test=x_test,
                          source_index_train=np.arange(len(x_train), dtype=np.int64),
                          source_index_test=np.arange(len(x_test), dtype=np.int64))
