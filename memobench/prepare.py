"""Download and prepare a TFDS dataset as array_record, the format memobench reads.

  pip install -e '.[prepare]'      # brings tensorflow-cpu: TFDS encodes images with it
  python -m memobench.prepare --dataset=cifar10
  python -m memobench.prepare --dataset=cifar10 --data_dir=gs://my-bucket/tfds

Training reads the prepared files with numpy and PIL only (memobench/tfds_data.py);
TensorFlow is needed here alone. The data dir defaults to TFDS's ($TFDS_DATA_DIR,
else ~/tensorflow_datasets); pass the same --data_dir to `memobench.main`.
Preparing needs the network (CIFAR-10 is a ~160 MB download). A dataset already
prepared as array_record is left alone. Errors print one line on stderr and exit 1 (a bad flag: exit 2).
"""

from __future__ import annotations

from absl import app, flags, logging

from memobench import cli
from memobench.data import tfds_data

_DATASET = flags.DEFINE_enum("dataset", None, sorted(tfds_data.SOURCES), "Dataset to prepare.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR, "
                                "else ~/tensorflow_datasets); may be gs://.")


def _fail(message: str) -> None:
  cli.fail("memobench.prepare", message, 1)


class MissingTensorFlow(RuntimeError):
  """The optional `prepare` extra is not installed."""


def prepare(name: str, data_dir: str | None) -> str:
  """Prepares dataset `name` as array_record under `data_dir`; returns where it is."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  b = tfds.builder(tfds_data.SOURCES[name].tfds_name, data_dir=data_dir,
                   file_format=tfds.core.FileFormat.ARRAY_RECORD)
  if b.is_prepared():
    if b.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
      raise RuntimeError(f"{b.data_path} holds {name} as {b.info.file_format.value}; memobench "
                         f"reads array_record: remove that folder or use another --data_dir")
    return str(b.data_path)
  try:
    import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    raise MissingTensorFlow(  # pylint: disable=raise-missing-from
        "preparing a TFDS dataset needs TensorFlow to encode images; install it with: "
        "pip install -e '.[prepare]' (or pip install tensorflow-cpu)")
  b.download_and_prepare()
  return str(b.data_path)


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  if _DATASET.value is None:
    _fail(f"--dataset is required: one of {', '.join(sorted(tfds_data.SOURCES))}")
  logging.set_verbosity(logging.ERROR)
  try:
    path = prepare(_DATASET.value, _DATA_DIR.value)
  except MissingTensorFlow as e:
    _fail(str(e))
  except Exception as e:  # pylint: disable=broad-except  (network, disk, permissions)
    first_line = (str(e).strip().splitlines() or [""])[0]
    _fail(f"could not prepare {_DATASET.value}: {type(e).__name__}: {first_line}")
  print(f"{_DATASET.value} is prepared as array_record in {path}")


def entry():
  app.run(main, flags_parser=cli.flags_parser("memobench.prepare"))


if __name__ == "__main__":
  entry()
