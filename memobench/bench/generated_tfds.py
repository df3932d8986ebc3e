"""A prepared TFDS dataset of generated images, written without TensorFlow or network.

`write_prepared(name, data_dir, num_train, num_test)` writes what
`python -m memobench.prepare --dataset=NAME` would: dataset_info.json,
features.json and array_record shards of serialized examples, images
PNG-encoded with PIL, random pixels and labels. memobench's real loading code
(data/tfds_data.py) reads it as it reads a real prepared dataset. The tests
use it for small fakes (tests/tfds_fakes.py); the accelerator command
(bench/accelerator.py) for a CIFAR-10-shaped dataset of 50,000 + 10,000 images,
since CIFAR-10 itself cannot be downloaded there.
"""

from __future__ import annotations

import io
import os

import numpy as np


def write_prepared(name: str, data_dir: str, num_train: int, num_test: int, seed: int = 0):
  """Writes a real, prepared (array_record) TFDS dataset `name` of random images.

  Returns {split: (uint8 images, int labels)}, what was written, in order.
  """
  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter
  from PIL import Image

  from memobench.data import tfds_data
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
