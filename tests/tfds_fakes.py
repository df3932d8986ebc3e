"""TFDS test data without TensorFlow and without network.

Two ways, both read through memobench's real loading code (tfds_data.load):

* `write_prepared` writes a real prepared TFDS dataset -- dataset_info.json,
  features.json and array_record shards of serialized examples -- to a data dir.
  Images are PNG-encoded with PIL, so no TensorFlow is needed; TFDS reads it
  exactly as it reads a dataset prepared by `python -m memobench.prepare`.
* `mock_tfds` wraps `tfds.testing.mock_data` with the policy that works for
  array_record data sources: USE_FILES over a data dir holding the dataset's
  metadata (so `builder.is_prepared()` is true; USE_CODE points the builder at a
  non-existing dir), random examples from the mock generator. It also works
  around a TFDS 4.9.10 mock bug: the mocked source's `__getitems__` is set as an
  unbound partial and fails with "missing 1 required positional argument:
  'record_keys'"; the wrapper binds it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from unittest import mock

import numpy as np
from PIL import Image

from memobench.data import tfds_data


def write_prepared(name: str, data_dir: str, num_train: int, num_test: int, seed: int = 0):
  """Writes a real, prepared (array_record) TFDS dataset `name` of random images.

  Returns {split: (uint8 images, int labels)}, what was written, in order.
  """
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from array_record.python.array_record_module import ArrayRecordWriter  # pylint: disable=import-outside-toplevel
  b = tfds_data.builder(name, data_dir)
  features = b.info.features
  shape = features["image"].shape
  rng = np.random.RandomState(seed)
  os.makedirs(b.data_path, exist_ok=True)
  split_infos, written = [], {}
  for split, n in (("train", num_train), ("test", num_test)):
    writer = ArrayRecordWriter(
        os.path.join(b.data_path, f"{b.name}-{split}.array_record-00000-of-00001"),
        "group_size:1")
    num_bytes = 0
    images, labels = np.empty((n, *shape), np.uint8), np.empty((n,), np.int64)
    for i in range(n):
      img = rng.randint(0, 256, shape, np.uint8)
      png = io.BytesIO()
      Image.fromarray(img[..., 0] if shape[-1] == 1 else img).save(png, format="PNG")
      example = {"image": png.getvalue()}
      for key, feature in features.items():
        if key == "id":
          example[key] = f"{split}_{i}"
        elif key != "image":
          example[key] = int(rng.randint(feature.num_classes))
      images[i], labels[i] = img, example["label"]
      record = features.serialize_example(example)
      num_bytes += len(record)
      writer.write(record)
    writer.close()
    written[split] = (images, labels)
    split_infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[n], num_bytes=num_bytes,
                                           filename_template=None))
  b.info.set_file_format("array_record", override=True)
  b.info.set_splits(tfds.core.SplitDict(split_infos))
  b.info.write_to_directory(b.data_path)
  return written


class _BoundGetitems(mock.MagicMock):
  """A data-source mock whose `__getitems__` receives `self`, as TFDS's partial expects."""

  def __setattr__(self, name, value):
    if name == "__getitems__" and isinstance(value, functools.partial):
      value = functools.partial(value, self)
    super().__setattr__(name, value)


@contextlib.contextmanager
def mock_tfds(data_dir: str, names, num_examples: int):
  """tfds.testing.mock_data for `names`, reading `num_examples` random examples per split."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  for name in names:
    b = tfds_data.builder(name, data_dir)
    if not b.is_prepared():
      write_prepared(name, data_dir, 1, 1)  # metadata; the mock supplies the examples
  source = tfds.testing.PickableDataSourceMock()
  source.return_value = _BoundGetitems()
  with tfds.testing.mock_data(num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_FILES,
                              data_dir=data_dir, mock_array_record_data_source=source):
    yield
