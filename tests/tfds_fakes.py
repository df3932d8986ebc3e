"""TFDS test data without TensorFlow and without network.

Two ways, both read through memobench's real loading code (tfds_data.load):

* `write_prepared` (memobench/bench/generated_tfds.py) writes a real prepared TFDS dataset -- dataset_info.json,
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
from unittest import mock

from memobench.bench.generated_tfds import write_prepared  # noqa: F401  (the tests' writer)
from memobench.data import tfds_data


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
