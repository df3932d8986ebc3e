"""Per-example scores as one tidy table: one row per (example, estimator, configuration).

Every per-example score memobench writes (a run's metric arrays: learning
dynamics, turn-over self-influence; the subsample estimator; the estimator
benchmark, experiments/memorization_estimators.py) also goes to a table in
this layout, so that scores of different runs, seeds and tools join on the
example key. Parquet (pyarrow) by default, CSV as an option; a run writes
``workdir/scores.parquet`` (SCORES_FILE). docs/METRICS.md ("Per-example score
table") documents the columns:

  dataset         str    the dataset's name (spec.dataset.name), e.g. "digits"
  split           str    "train" or "test"
  index           int64  the example's position in that split as memobench loads it
  example_key     str    example_key(): a content hash of the example's input and
                         ORIGINAL label (16 hex digits); the same example has the
                         same key in every run, seed, corruption and machine
  source_index    int64  the example's index in its source data set, before memobench's
                         train/test split (data.Dataset.source_index_*); -1: unknown
  raw_key         str    raw_key(): a content hash of the example as its source gave it,
                         before any preprocessing, and its original label: stable
                         when preprocessing changes, and computable by other tools
                         from the source alone; "": unknown
  label           int64  the label trained on (the corrupted one where labels are)
  original_label  int64  the true label
  label_changed   bool   label != original_label (the planted corruption)
  estimator       str    which score, e.g. "turnover.self_influence_loss",
                         "subsample.mem", "loo.mem"
  config          str    the estimator's configuration as compact JSON with sorted
                         keys, e.g. {"K":64,"epochs":40,"seed":0,"spec":"digits_partial40",
                         "spec_hash":"..."}: one column whatever keys an estimator has,
                         so equal configurations are equal strings (joinable);
                         expand_config() spreads it into flat columns
  score           float64
  score_se        float64  its standard error; NaN where the estimator gives none

API (the names other code calls; keep them):

  example_key(inputs, original_labels) -> list[str]
      one key per example: the first 16 hex digits of
      sha256(b"memobench.example.v1\\0" + shape as "8x8x1" + b"\\0"
             + the input as float32 little-endian bytes + b"\\0" + the label in decimal).
      Depends only on the values, never on the platform, numpy or run.
  raw_key(raw, original_labels) -> list[str]
      one key per example: the first 16 hex digits of
      sha256(b"memobench.raw.v1\0" + the source dtype (numpy's str, e.g. "<f8") + b"\0"
             + shape as "8x8" + b"\0" + the raw array's bytes, little-endian
             + b"\0" + the label in decimal).
  dataset_columns(dataset, original_labels, split="train", indices=None) -> dict
      keys, raw_keys and source_indices of a data.Dataset's examples, for rows(**...)
  rows(*, estimator, scores, dataset, split="train", keys=None, inputs=None,
       original_labels=None, labels=None, label_changed=None, standard_errors=None,
       config=None, indices=None, raw_keys=None, source_indices=None) -> dict of columns
      the rows of one estimator's (N,) scores; pass `keys` (computed once) or
      `inputs` + `original_labels` (hashed here).
  concat(tables) -> dict of columns      several rows() results as one table
  write(path, table, fmt=None)           table: a pandas DataFrame or a dict of
                                         columns; fmt "parquet" or "csv", default from
                                         the suffix (.parquet / .csv); atomic
                                         (results.write_atomic)
  read(paths) -> pandas.DataFrame        one path or several, concatenated
  expand_config(frame) -> pandas.DataFrame  adds a column config.<key> per config key

Parquet needs pyarrow and read() needs pandas; neither is imported until used,
so `import memobench.example_table` never fails. Runs write their table
through `write_quietly`, which logs one line instead of failing the run when
pyarrow is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from memobench import results

SCORES_FILE = "scores.parquet"
KEY_VERSION = b"memobench.example.v1"
RAW_KEY_VERSION = b"memobench.raw.v1"
KEY_HEX_DIGITS = 16
FORMATS = ("parquet", "csv")

# Column order and dtypes of the table.
COLUMNS: dict[str, str] = {
    "dataset": "str", "split": "str", "index": "int64", "example_key": "str",
    "source_index": "int64", "raw_key": "str",
    "label": "int64", "original_label": "int64", "label_changed": "bool",
    "estimator": "str", "config": "str", "score": "float64", "score_se": "float64",
}
# Columns added after the first layout: a table written before them reads with these values.
LATER_COLUMNS: dict[str, Any] = {"source_index": -1, "raw_key": ""}


class TableError(ValueError):
  """A table that cannot be built, written or read; the message is one line."""


def example_key(inputs: np.ndarray, original_labels: np.ndarray) -> list[str]:
  """The content hash of each example (module docstring): one str per row of `inputs`."""
  x = np.asarray(inputs)
  labels = np.asarray(original_labels).reshape(-1)
  if x.shape[0] != labels.shape[0]:
    raise TableError(f"{x.shape[0]} inputs but {labels.shape[0]} labels")
  if labels.size and not np.all(labels == np.round(labels)):
    raise TableError("original labels must be integers")
  shape = "x".join(str(d) for d in x.shape[1:]).encode()
  # Converted to float32 little-endian once, whatever dtype and byte order came in.
  x = np.ascontiguousarray(x, dtype="<f4")
  prefix = KEY_VERSION + b"\0" + shape + b"\0"
  return [hashlib.sha256(prefix + x[i].tobytes() + b"\0" + str(int(labels[i])).encode())
          .hexdigest()[:KEY_HEX_DIGITS] for i in range(x.shape[0])]


def raw_key(raw: np.ndarray, original_labels: np.ndarray) -> list[str]:
  """The source-content hash of each example (module docstring): one str per row of `raw`."""
  x = np.asarray(raw)
  labels = np.asarray(original_labels).reshape(-1)
  if x.shape[0] != labels.shape[0]:
    raise TableError(f"{x.shape[0]} raw examples but {labels.shape[0]} labels")
  if x.dtype.kind not in "biuf":
    raise TableError(f"raw examples must be numeric arrays, got {x.dtype}")
  # Little-endian whatever came in; the dtype (its kind and size) enters the hash.
  x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
  shape = "x".join(str(d) for d in x.shape[1:]).encode()
  prefix = RAW_KEY_VERSION + b"\0" + x.dtype.str.encode() + b"\0" + shape + b"\0"
  return [hashlib.sha256(prefix + x[i].tobytes() + b"\0" + str(int(labels[i])).encode())
          .hexdigest()[:KEY_HEX_DIGITS] for i in range(x.shape[0])]


def dataset_columns(dataset, original_labels: np.ndarray, split: str = "train",
                    indices: np.ndarray | None = None) -> dict[str, Any]:
  """keys, raw_keys, source_indices (and indices) of a data.Dataset's examples, for rows().

  original_labels: the split's true labels (all of them); indices: the examples
  to key (default all).

  keys hash the clean preprocessed inputs (never a corrupted input), so every
  corruption of an example shares its key; raw_keys and source_indices are
  empty / -1 where the dataset does not record its source.
  """
  x = getattr(dataset, f"x_{split}")
  raw = getattr(dataset, f"raw_{split}", None)
  source = getattr(dataset, f"source_index_{split}", None)
  original = np.asarray(original_labels).reshape(-1)
  if x.shape[0] != original.shape[0]:
    raise TableError(f"{x.shape[0]} {split} examples but {original.shape[0]} original labels")
  pick = (lambda a: a) if indices is None else (lambda a: np.asarray(a)[indices])  # noqa: E731
  original = pick(original)
  out = {"keys": example_key(pick(x), original),
         "raw_keys": None if raw is None else raw_key(pick(raw), original),
         "source_indices": None if source is None else pick(source)}
  if indices is not None:
    out["indices"] = np.asarray(indices)
  return out


def config_json(config: Mapping[str, Any] | None) -> str:
  """The configuration's canonical JSON: sorted keys, no spaces; numpy scalars as numbers."""
  def plain(v):
    if isinstance(v, np.generic):
      return v.item()
    if isinstance(v, Mapping):
      return {str(k): plain(w) for k, w in v.items()}
    if isinstance(v, (list, tuple)):
      return [plain(w) for w in v]
    return v
  return json.dumps(plain(dict(config or {})), sort_keys=True, separators=(",", ":"))


def rows(*, estimator: str, scores: np.ndarray, dataset: str, split: str = "train",
         keys: Sequence[str] | None = None, inputs: np.ndarray | None = None,
         original_labels: np.ndarray | None = None, labels: np.ndarray | None = None,
         label_changed: np.ndarray | None = None, standard_errors: np.ndarray | None = None,
         config: Mapping[str, Any] | None = None,
         indices: np.ndarray | None = None, raw_keys: Sequence[str] | None = None,
         source_indices: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """The table rows of one estimator's per-example `scores` (N,): a dict of columns.

  labels default to original_labels (no corruption); label_changed defaults to
  labels != original_labels; indices to 0..N-1; standard_errors to NaN.
  """
  score = np.asarray(scores, np.float64).reshape(-1)
  n = score.shape[0]
  if original_labels is None:
    raise TableError(f"{estimator}: original_labels are required")
  original = _column(original_labels, n, "original_labels", estimator).astype(np.int64)
  if keys is None:
    if inputs is None:
      raise TableError(f"{estimator}: pass keys or inputs to key the examples")
    keys = example_key(inputs, original)
  keys = _column(np.asarray(keys, dtype=object), n, "keys", estimator)
  label = original if labels is None else _column(labels, n, "labels", estimator).astype(np.int64)
  changed = (label != original if label_changed is None
             else _column(label_changed, n, "label_changed", estimator).astype(bool))
  se = (np.full(n, np.nan) if standard_errors is None
        else _column(standard_errors, n, "standard_errors", estimator).astype(np.float64))
  index = (np.arange(n, dtype=np.int64) if indices is None
           else _column(indices, n, "indices", estimator).astype(np.int64))
  source = (np.full(n, -1, np.int64) if source_indices is None
            else _column(source_indices, n, "source_indices", estimator).astype(np.int64))
  raw = (np.full(n, "", dtype=object) if raw_keys is None
         else _column(np.asarray(raw_keys, dtype=object), n, "raw_keys", estimator))
  return {
      "dataset": np.full(n, dataset, dtype=object), "split": np.full(n, split, dtype=object),
      "index": index, "example_key": keys.astype(object), "source_index": source,
      "raw_key": raw.astype(object), "label": label,
      "original_label": original, "label_changed": changed,
      "estimator": np.full(n, estimator, dtype=object),
      "config": np.full(n, config_json(config), dtype=object), "score": score, "score_se": se,
  }


def _column(values, n: int, name: str, estimator: str) -> np.ndarray:
  a = np.asarray(values).reshape(-1)
  if a.shape[0] != n:
    raise TableError(f"{estimator}: {name} has {a.shape[0]} entries for {n} scores")
  return a


def concat(tables: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
  """Several dicts of columns (rows() results) as one, in order."""
  tables = list(tables)
  if not tables:
    return {name: np.zeros(0, dtype=object if kind == "str" else kind)
            for name, kind in COLUMNS.items()}
  return {name: np.concatenate([np.asarray(t[name]) for t in tables]) for name in COLUMNS}


def _frame(table):
  import pandas as pd  # pylint: disable=import-outside-toplevel
  frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(
      {k: np.asarray(v) for k, v in table.items()})
  for name, value in LATER_COLUMNS.items():
    if name not in frame.columns:
      frame = frame.assign(**{name: value})
  missing = [c for c in COLUMNS if c not in frame.columns]
  if missing:
    raise TableError(f"the table lacks columns {', '.join(missing)}")
  return _typed(frame[list(COLUMNS) + [c for c in frame.columns if c not in COLUMNS]])


def _typed(frame):
  """The declared dtypes, so that both formats read back alike (str: pandas' string dtype)."""
  out = frame.copy()
  for name, kind in COLUMNS.items():
    out[name] = out[name].astype(object if kind == "str" else kind)
    if kind == "str":
      out[name] = out[name].map(str)
  return out


def format_of(path: str, fmt: str | None = None) -> str:
  if fmt is None:
    suffix = os.path.splitext(str(path))[1].lower().lstrip(".")
    if suffix not in FORMATS:
      raise TableError(f"{path}: cannot tell the format from the suffix; use .parquet or .csv"
                       " or pass fmt")
    return suffix
  if fmt not in FORMATS:
    raise TableError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
  return fmt


def write(path: str, table, fmt: str | None = None) -> None:
  """Writes `table` (DataFrame or dict of columns) to `path` atomically; fmt from the suffix."""
  fmt = format_of(path, fmt)
  frame = _frame(table)
  buffer = io.BytesIO()
  if fmt == "parquet":
    import pyarrow as pa  # pylint: disable=import-outside-toplevel
    import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
  else:
    frame.to_csv(buffer, index=False, float_format="%.17g")
  results.write_atomic(str(path), buffer.getvalue())


def read(paths: str | os.PathLike | Sequence[str | os.PathLike]):
  """The table(s) at `paths` (one or several; .parquet or .csv) as one pandas DataFrame."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  frames = []
  for path in paths:
    fmt = format_of(str(path))
    if not results.is_remote(str(path)):
      if not os.path.exists(path):
        raise TableError(f"{path}: no such file")
      if not os.path.isfile(path):  # a FIFO would block, a folder is no table
        raise TableError(f"{path}: not a regular file")
    try:
      if fmt == "parquet":
        frame = pd.read_parquet(path)
      else:
        # Keys such as "0123456789012345" must stay strings; "" is a NaN score only.
        frame = pd.read_csv(path, dtype={n: str for n, k in COLUMNS.items() if k == "str"},
                            keep_default_na=False, na_values={"score": [""], "score_se": [""]})
      frames.append(_frame(frame))
    except TableError as e:
      raise TableError(f"{path}: {e}") from None
    except ImportError:
      raise  # pandas or pyarrow missing: not the file's fault
    except Exception as e:  # pylint: disable=broad-except  (pyarrow's ArrowInvalid, pandas' parser errors, OSError)
      first = (str(e).strip().splitlines() or [""])[0][:200]
      raise TableError(f"{path}: not a readable {fmt} score table ({type(e).__name__}: "
                       f"{first})") from None
  if not frames:
    raise TableError("read() needs at least one path")
  return pd.concat(frames, ignore_index=True)


def expand_config(frame):
  """`frame` with one column `config.<key>` per key of its config JSON (missing: NaN)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  parsed = pd.json_normalize([json.loads(c) for c in frame["config"]])
  parsed.columns = [f"config.{c}" for c in parsed.columns]
  parsed.index = frame.index
  return pd.concat([frame, parsed], axis=1)


def write_quietly(path: str, table, log: Callable[[str], None] = print) -> bool:
  """write(), but a missing pyarrow/pandas is one log line, not a failure; True if written."""
  try:
    write(path, table)
    return True
  except ImportError as e:
    log(f"{os.path.basename(str(path))} not written ({e.name or e} is not installed)")
    return False
