"""A (spec, seed)'s corrupted training labels as a file, for other tools to train on or join.

  python -m memobench.noise_files --spec=digits_partial40 --seed=0 --out=labels.npy
  python -m memobench.noise_files --spec=cifar10_partial20 --out=labels.parquet

The labels are the ones every memobench run of that spec and seed trains on
(workload.corrupted_data: a pure function of the seed and the example index,
the same on any machine or device count), in memobench's training order
(`index`). Two formats, by the suffix of --out:

  .npy      int64 (N,) the corrupted labels; beside it <out>.json with the spec,
            its hash, the seed, N, the noise fraction, and the dataset's
            `source_index` per example (its order in the source data set)
  .parquet  one row per training example: index, source_index, example_key,
            raw_key, label (corrupted), original_label, label_changed, spec,
            spec_hash, seed; the spec hash also in the file's schema metadata

Default --out: <spec>_seed<seed>_<first 12 digits of the spec hash>.npy in the
working directory. Errors print one line on stderr (exit 2 for a bad command
line, 1 otherwise).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Any

import numpy as np

from memobench import cli, example_table, results, specs

FORMATS = (".npy", ".parquet")


def labels_of(spec: specs.Spec, seed: int, data_dir: str | None = None) -> dict[str, Any]:
  """The corrupted training labels of (spec, seed) with their keys and provenance."""
  from memobench import workload as workload_lib  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  workload_lib.validate(spec)
  dataset = datasets.load(spec.dataset, data_dir)
  data = workload_lib.resolve(dataclasses.replace(spec, seed=seed),
                              dataset=dataset).corrupted_data(seed)
  original = np.asarray(data.y_train_original, np.int64)
  return {"labels": np.asarray(data.y_train, np.int64), "original": original,
          "changed": np.asarray(data.label_changed, bool),
          "columns": example_table.dataset_columns(dataset, original),
          "spec": spec.name, "spec_hash": specs.spec_hash(spec), "seed": int(seed)}


def default_path(spec: specs.Spec, seed: int) -> str:
  return f"{spec.name}_seed{seed}_{specs.spec_hash(spec)[:12]}.npy"


def export(spec: specs.Spec, seed: int, path: str, data_dir: str | None = None) -> str:
  """Writes the labels of (spec, seed) to `path` (.npy + .json, or .parquet), atomically."""
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in FORMATS:
    raise specs.SpecError(f"--out must end in {' or '.join(FORMATS)}, got {path!r}")
  got = labels_of(spec, seed, data_dir)
  labels, columns = got["labels"], got["columns"]
  n = labels.size
  provenance = {"spec": got["spec"], "spec_hash": got["spec_hash"], "seed": got["seed"],
                "examples": int(n), "label_noise_fraction": float(got["changed"].mean())}
  if suffix == ".npy":
    buffer = io.BytesIO()
    np.save(buffer, labels)
    results.write_atomic(path, buffer.getvalue())
    source = columns["source_indices"]
    results.write_json_atomic(path + ".json", {
        **provenance, "file": os.path.basename(path), "dtype": "int64",
        "source_index": None if source is None else [int(v) for v in source]})
    return path
  import pandas as pd  # pylint: disable=import-outside-toplevel
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  source = columns["source_indices"]
  frame = pd.DataFrame({
      "index": np.arange(n, dtype=np.int64),
      "source_index": np.full(n, -1, np.int64) if source is None else np.asarray(source),
      "example_key": columns["keys"],
      "raw_key": [""] * n if columns["raw_keys"] is None else columns["raw_keys"],
      "label": labels, "original_label": got["original"], "label_changed": got["changed"],
      "spec": got["spec"], "spec_hash": got["spec_hash"], "seed": np.int64(got["seed"])})
  table = pa.Table.from_pandas(frame, preserve_index=False)
  table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                         b"memobench": json.dumps(provenance).encode()})
  buffer = io.BytesIO()
  pq.write_table(table, buffer)
  results.write_atomic(path, buffer.getvalue())
  return path


def main(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  f = flags.FLAGS
  if len(argv) > 1:
    cli.fail("memobench.noise_files", f"unexpected arguments: {' '.join(argv[1:])}", 2)
  try:
    spec, _ = specs.with_overrides(catalogue.get(f.spec), f.set)
    seed = spec.seed if f.seed is None else f.seed
    specs.check_seeds(seed, 1, "--seed")
    spec = dataclasses.replace(spec, seed=seed)
    path = f.out or default_path(spec, seed)
    export(spec, seed, path, f.data_dir)
  except specs.SpecError as e:
    cli.fail("memobench.noise_files", str(e), 2)
  except datasets.DataError as e:
    cli.fail("memobench.noise_files", str(e), 1)
  except OSError as e:
    cli.fail("memobench.noise_files", cli.os_error_line(e), 1)
  except ImportError as e:
    cli.fail("memobench.noise_files", f"Parquet needs pandas and pyarrow ({e})", 1)
  print(path)


def entry():
  from absl import app, flags, logging  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("spec", None, "Registered spec name.", required=False)
  flags.DEFINE_integer("seed", None, "Seed (default: the spec's).")
  flags.DEFINE_multi_string("set", [], "Override a spec field: key=value.")
  flags.DEFINE_string("out", None, "Output file, .npy (with a .json beside it) or .parquet "
                      "(default <spec>_seed<seed>_<hash>.npy).")
  flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR).")
  logging.set_verbosity(logging.WARNING)

  def checked(argv):
    if flags.FLAGS.spec is None:
      cli.fail("memobench.noise_files", "--spec is required", 2)
    return main(argv)
  app.run(checked, flags_parser=cli.flags_parser("memobench.noise_files"))


if __name__ == "__main__":
  entry()
