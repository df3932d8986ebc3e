"""The per-example score table: stable example keys, Parquet/CSV round trips, the runs' tables."""

import hashlib
import json
import os
import sys
import tempfile
import types

import numpy as np
import pytest

from memobench import catalogue, example_table, memorization, run, specs
from memobench.data import datasets

# A fixed tiny example set and its keys, computed once and committed: a change of
# the key on any machine, numpy or Python fails here.
TINY_INPUTS = (np.arange(6, dtype=np.float32).reshape(2, 3) / 7).astype(np.float32)
TINY_LABELS = np.array([1, 0])
TINY_KEYS = ["279d88e6c977c62d", "0bbc91db0fc862a1"]


def test_example_key_is_a_committed_literal_and_its_definition():
  assert example_table.example_key(TINY_INPUTS, TINY_LABELS) == TINY_KEYS
  # The documented definition, spelled out byte by byte.
  raw = (b"memobench.example.v1\0" + b"3" + b"\0"
         + np.array([3 / 7, 4 / 7, 5 / 7], "<f4").tobytes() + b"\0" + b"0")
  assert hashlib.sha256(raw).hexdigest()[:16] == TINY_KEYS[1]


def test_example_key_ignores_dtype_and_byte_order_but_not_content():
  keys = example_table.example_key(TINY_INPUTS, TINY_LABELS)
  # float64 values equal to the float32 ones, big-endian bytes, int labels of any width
  assert example_table.example_key(TINY_INPUTS.astype(np.float64), TINY_LABELS) == keys
  assert example_table.example_key(TINY_INPUTS.astype(">f4"), TINY_LABELS.astype(np.int8)) == keys
  # another label, one ulp of one pixel, the same bytes in another shape: other keys
  assert example_table.example_key(TINY_INPUTS, [2, 0])[0] != keys[0]
  nudged = TINY_INPUTS.copy()
  nudged[0, 1] = np.nextafter(nudged[0, 1], np.float32(1))
  nudged_keys = example_table.example_key(nudged, TINY_LABELS)
  assert nudged_keys[0] != keys[0] and nudged_keys[1] == keys[1]
  assert example_table.example_key(TINY_INPUTS.reshape(2, 3, 1), TINY_LABELS) != keys
  # The index does not enter the key: a shuffled set keeps each example's key.
  assert example_table.example_key(TINY_INPUTS[::-1], TINY_LABELS[::-1]) == keys[::-1]
  with pytest.raises(example_table.TableError, match="integers"):
    example_table.example_key(TINY_INPUTS, [0.5, 1])


def _table():
  common = dict(dataset="tiny", original_labels=TINY_LABELS, labels=[1, 2],
                # keys that a CSV reader would take for numbers unless told otherwise
                keys=["0000000000000012", "1e51234567890123"])
  return example_table.concat([
      example_table.rows(estimator="a.mem", scores=[0.25, np.nan], standard_errors=[0.1, np.nan],
                         config={"K": np.int64(8), "seed": 0}, **common),
      example_table.rows(estimator="b.loss", scores=np.array([1, 3], np.int32),
                         config={"epochs": 2.5, "seed": 1}, **common)])


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_round_trip_keeps_values_types_and_nan(tmp_path, suffix):
  path = tmp_path / f"scores.{suffix}"
  example_table.write(str(path), _table())
  frame = example_table.read(str(path))
  assert list(frame.columns) == list(example_table.COLUMNS)
  assert list(frame["example_key"]) == ["0000000000000012", "1e51234567890123"] * 2
  assert list(frame["label_changed"]) == [False, True, False, True]
  assert frame["label"].dtype == np.int64 and frame["score"].dtype == np.float64
  np.testing.assert_array_equal(frame["score"], [0.25, np.nan, 1.0, 3.0])
  np.testing.assert_array_equal(frame["score_se"], [0.1, np.nan, np.nan, np.nan])
  assert frame["config"][0] == '{"K":8,"seed":0}'
  flat = example_table.expand_config(frame)
  assert list(flat["config.K"].iloc[:2]) == [8, 8] and flat["config.epochs"].iloc[2] == 2.5
  assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]  # atomic


def test_read_concatenates_paths_and_tables_join_on_the_key(tmp_path):
  example_table.write(str(tmp_path / "x.parquet"), _table())
  frame = example_table.read(str(tmp_path / "x.parquet"))
  example_table.write(str(tmp_path / "y.csv"), frame)  # a DataFrame writes too
  both = example_table.read([tmp_path / "x.parquet", str(tmp_path / "y.csv")])
  assert len(both) == 8
  wide = both.iloc[:4].pivot(index="example_key", columns="estimator", values="score")
  assert wide.loc["0000000000000012"].tolist() == [0.25, 1.0]
  with pytest.raises(example_table.TableError, match="suffix"):
    example_table.write(str(tmp_path / "x.json"), _table())
  with pytest.raises(example_table.TableError, match="3 entries for 2 scores"):
    example_table.rows(estimator="e", scores=[1, 2], dataset="d", keys=["a", "b", "c"],
                       original_labels=[0, 1])


def test_a_missing_pyarrow_is_one_log_line(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
  lines = []
  assert not example_table.write_quietly(str(tmp_path / "s.parquet"), _table(), lines.append)
  assert lines == ["s.parquet not written (pyarrow is not installed)"]
  assert not (tmp_path / "s.parquet").exists()


def test_a_run_writes_its_npz_arrays_as_table_rows_keyed_by_the_dataset(tmp_path):
  spec, _ = specs.with_overrides(catalogue.get("digits_partial40"), [
      "dataset.train_size=300", "budget.max_epochs=1", "budget.batch_size=50",
      "analysis.effective_rank=false"])
  run.run_spec(spec, str(tmp_path), log=lambda _: None, checkpoint_every=0)
  frame = example_table.read(str(tmp_path / "scores.parquet"))
  dataset = datasets.load(spec.dataset)
  keys = example_table.example_key(dataset.x_train, dataset.y_train)
  with np.load(tmp_path / "dynamics.npz") as z:
    arrays = {k: z[k] for k in z.files}
  # One estimator per per-example array of the npz (label_changed is a column,
  # spec_hash the npz's provenance).
  assert str(arrays["spec_hash"]) == specs.spec_hash(spec)
  assert sorted(frame["estimator"].unique()) == sorted(
      f"learning_dynamics.{k}" for k in arrays if k not in ("label_changed", "spec_hash"))
  rows = frame[frame["estimator"] == "learning_dynamics.forgetting_events"]
  assert list(rows["example_key"]) == keys and list(rows["index"]) == list(range(300))
  assert list(rows["original_label"]) == list(dataset.y_train)
  np.testing.assert_array_equal(rows["score"], arrays["forgetting_events"])
  np.testing.assert_array_equal(rows["label_changed"], arrays["label_changed"])
  assert (rows["label"] != rows["original_label"]).tolist() == arrays["label_changed"].tolist()
  config = json.loads(rows["config"].iloc[0])
  assert config == {"spec": spec.name, "spec_hash": specs.spec_hash(spec), "seed": 0,
                    "epochs": 1.0, "steps": 6}


def test_the_subsample_estimator_table_carries_mem_and_its_se():
  dataset = types.SimpleNamespace(x_train=TINY_INPUTS)
  data = types.SimpleNamespace(y_train_original=TINY_LABELS, y_train=np.array([1, 2]),
                               label_changed=np.array([False, True]))
  scores = {"mem": np.array([0.1, np.nan]), "mem_se": np.array([0.05, np.nan]),
            "heldout_accuracy": np.array([0.9, 0.0]), "in_accuracy": np.array([1.0, 1.0])}
  spec = catalogue.get("digits_partial40")
  with tempfile.TemporaryDirectory() as folder:
    memorization._write_score_table(folder, spec, memorization.EnsembleConfig(models=8),
                                    dataset, data, scores, log=print)
    frame = example_table.read(os.path.join(folder, "scores.parquet"))
  assert list(frame["estimator"]) == ["subsample.mem"] * 2 + [
      "subsample.heldout_accuracy"] * 2 + ["subsample.in_accuracy"] * 2
  assert list(frame["example_key"]) == TINY_KEYS * 3
  np.testing.assert_array_equal(frame["score_se"][:2], [0.05, np.nan])
  assert list(frame["label_changed"][:2]) == [False, True]
  assert json.loads(frame["config"][0])["K"] == 8


@pytest.mark.parametrize("suffix,damage", [
    (".parquet", lambda b: b[: len(b) // 2]),               # truncated
    (".parquet", lambda b: b[:8] + b"\0" * (len(b) - 8)),    # zeroed after the magic
    (".parquet", lambda b: b""),                              # empty
    (".csv", lambda b: b"dataset,split\nx,train,extra,fields\n" + b"\xff\xfe" * 3),
    (".csv", lambda b: b.replace(b"train,", b"train,notanint", 1)),  # index not an integer
])
def test_a_damaged_table_raises_its_documented_error(tmp_path, suffix, damage):
  path = tmp_path / f"s{suffix}"
  example_table.write(str(path), _table())
  path.write_bytes(damage(path.read_bytes()))
  with pytest.raises(example_table.TableError) as e:
    example_table.read(str(path))
  assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_a_table_that_is_not_a_regular_file_is_refused(tmp_path):
  os.mkfifo(tmp_path / "s.parquet")
  with pytest.raises(example_table.TableError, match="not a regular file"):
    example_table.read(str(tmp_path / "s.parquet"))
