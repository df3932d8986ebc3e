"""TFDS datasets: real array_record reading, mock_data runs, the catalogue, and fail-fast missing data.

No test reaches the network: data comes from `tests.tfds_fakes` (a real prepared
array_record dataset written without TensorFlow, or `tfds.testing.mock_data`),
and the missing-data tests check that nothing tries to download.
"""

import dataclasses
import json
import socket
import time

import jax
import numpy as np
import pytest

from memobench import catalogue, prng, run, specs, workload
from memobench.data import corruptions, datasets, preprocessing, tfds_data
from memobench.training import loop
from memobench.training.steps import make_steps
from tests.conftest import run_main
from tests.tfds_fakes import mock_tfds, write_prepared

TFDS_SPECS = [n for n in catalogue.names() if catalogue.get(n).dataset.name in catalogue.TFDS_DATASETS]
TINY = specs.BudgetSpec(batch_size=8, max_epochs=1, max_steps=2, eval_every_steps=2)
MOCK_EXAMPLES = 16


@pytest.fixture(scope="module")
def mock_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds_mock"))


def _tiny(spec):
  return dataclasses.replace(spec, budget=TINY)


# ---------------------------------------------------------------------------
# Reading real prepared data (array_record, no TensorFlow)
# ---------------------------------------------------------------------------


def test_prepared_cifar10_reads_back_exactly_with_zhang_preprocessing(tmp_path):
  written = write_prepared("cifar10", str(tmp_path), num_train=40, num_test=24)
  ds = datasets.load(specs.DatasetSpec("cifar10"), str(tmp_path))
  assert ds.num_classes == 10 and ds.input_shape == (28, 28, 3)
  assert ds.x_train.shape == (40, 28, 28, 3) and ds.x_test.shape == (24, 28, 28, 3)
  np.testing.assert_array_equal(ds.y_train, written["train"][1])
  np.testing.assert_array_equal(ds.y_test, written["test"][1])
  np.testing.assert_allclose(ds.x_train, preprocessing.zhang_preprocess(written["train"][0]))
  # Per-image whitening: every image has mean ~0 and std ~1.
  np.testing.assert_allclose(ds.x_train.mean(axis=(1, 2, 3)), 0, atol=1e-5)
  np.testing.assert_allclose(ds.x_test.std(axis=(1, 2, 3)), 1, rtol=1e-4)
  sub = datasets.load(specs.DatasetSpec("cifar10", train_size=10), str(tmp_path))
  np.testing.assert_array_equal(sub.x_train, ds.x_train[:10])
  with pytest.raises(datasets.DataError, match="train_size=41 exceeds the 40"):
    datasets.load(specs.DatasetSpec("cifar10", train_size=41), str(tmp_path))


def test_prepared_mnist_is_scaled_not_whitened(tmp_path):
  written = write_prepared("mnist", str(tmp_path), num_train=12, num_test=4)
  ds = datasets.load(specs.DatasetSpec("mnist"), str(tmp_path))
  assert ds.x_train.shape == (12, 28, 28, 1)
  np.testing.assert_allclose(ds.x_train, written["train"][0] / 255.0, rtol=1e-6)


# ---------------------------------------------------------------------------
# Missing data: one line, within seconds, no download attempt
# ---------------------------------------------------------------------------


def test_missing_data_is_one_line_with_the_prepare_command_and_no_network(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  def no_network(*args, **kwargs):
    raise AssertionError("the loader tried to reach the network")

  monkeypatch.setattr(socket.socket, "connect", no_network)
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
  for name in tfds_data.SOURCES:
    with pytest.raises(datasets.DataError) as e:
      datasets.load(specs.DatasetSpec(name), str(tmp_path / "empty"))
    message = str(e.value)
    assert "\n" not in message and f"dataset {name} is not prepared" in message
    assert str(tmp_path / "empty") in message
    assert message.endswith(f"python -m memobench.prepare --dataset={name} "
                            f"--data_dir={tmp_path / 'empty'}")


def test_tfrecord_preparation_is_refused_with_the_prepare_command(tmp_path):
  write_prepared("cifar10", str(tmp_path), 2, 2)
  info = tmp_path / "cifar10" / "3.0.2" / "dataset_info.json"
  meta = json.loads(info.read_text())
  assert meta["fileFormat"] == "array_record"
  info.write_text(json.dumps({**meta, "fileFormat": "tfrecord"}))
  with pytest.raises(datasets.DataError, match="stored as tfrecord.*memobench.prepare"):
    datasets.load(specs.DatasetSpec("cifar10"), str(tmp_path))


def test_cli_missing_data_fails_fast_in_one_line(tmp_path):
  empty = tmp_path / "tfds"
  empty.mkdir()
  start = time.perf_counter()
  out = run_main("--spec=cifar10_randpix", f"--workdir={tmp_path / 'w'}", timeout=60,
                 env={"TFDS_DATA_DIR": str(empty)})
  elapsed = time.perf_counter() - start
  assert out.returncode == 1, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
  assert str(empty / "cifar10") in lines[0]
  assert lines[0].endswith("python -m memobench.prepare --dataset=cifar10")
  # ~2 s on an idle machine (mostly Python/JAX start-up); the bound is loose for a
  # loaded CI machine but far below a TFDS download retry loop (~200 s offline).
  assert elapsed < 45, elapsed
  assert not (tmp_path / "w" / "result.json").exists()


def test_cli_trains_on_prepared_data_found_through_tfds_data_dir(tmp_path):
  data_dir = tmp_path / "tfds"
  write_prepared("cifar10", str(data_dir), num_train=32, num_test=16)
  out = run_main("--spec=cifar10_randpix_mlp1x512", f"--workdir={tmp_path / 'w'}",
                 "--set", "budget.batch_size=8", "--set", "budget.max_steps=2",
                 "--set", "budget.eval_every_steps=2", env={"TFDS_DATA_DIR": str(data_dir)})
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "w" / "result.json").read_text())
  assert result["spec"]["resolved"]["dataset"]["name"] == "cifar10"
  assert result["run"]["steps"] == 2


def test_prepare_cli_reports_an_already_prepared_dataset(tmp_path):
  import subprocess, sys  # pylint: disable=import-outside-toplevel,multiple-imports
  write_prepared("mnist", str(tmp_path), 2, 2)
  out = subprocess.run([sys.executable, "-m", "memobench.prepare", "--dataset=mnist",
                        f"--data_dir={tmp_path}"], capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  assert f"mnist is prepared as array_record in {tmp_path}/mnist/" in out.stdout


# ---------------------------------------------------------------------------
# The catalogue under tfds.testing.mock_data
# ---------------------------------------------------------------------------


def test_catalogue_has_the_papers_cifar10_specs_and_hyperparameters():
  for corruption in ["clean", "partial20", "partial40", "partial60", "partial80", "randlabels",
                     "shufpix", "randpix", "gaussian"]:
    assert catalogue.get(f"cifar10_{corruption}").model.name == "inception"
    for model in ["alexnet", "mlp1x512", "mlp3x512", "wrn28_1", "inception_nobn"]:
      assert catalogue.get(f"cifar10_{corruption}_{model}").model.name == model
    for dataset in ["cifar100", "mnist", "fashion_mnist", "svhn_cropped"]:
      assert catalogue.get(f"{dataset}_{corruption}").dataset.name == dataset
  # Zhang et al. 2017: SGD momentum 0.9, x0.95 per epoch; lr 0.1 Inception, 0.01 AlexNet/MLPs.
  for name, lr in [("cifar10_randpix", 0.1), ("cifar10_randpix_alexnet", 0.01),
                   ("cifar10_randpix_mlp1x512", 0.01), ("cifar10_randpix_mlp3x512", 0.01)]:
    o = catalogue.get(name).optimizer
    assert (o.kind, o.lr, o.momentum, o.lr_decay_per_epoch, o.weight_decay) == (
        "sgd", lr, 0.9, 0.95, 0.0)
  # Table 1 regularizer variants and dataset-size variants.
  s = catalogue.get("cifar10_clean_alexnet_crop_wd")
  assert s.dataset.random_crop and s.optimizer.weight_decay == catalogue.WEIGHT_DECAY
  assert s.optimizer.lr == 0.01
  s = catalogue.get("cifar10_clean_wd")
  assert not s.dataset.random_crop and s.optimizer.weight_decay > 0 and s.optimizer.lr == 0.1
  assert catalogue.get("cifar10_randlabels_crop").dataset.random_crop
  assert catalogue.get("cifar10_clean_mlp1x512_wd").optimizer.weight_decay > 0
  s = catalogue.get("cifar10_randlabels_n5000")
  assert s.dataset.train_size == 5000 and s.budget.eval_every_steps == 5000 // 128
  assert catalogue.get("mnist_partial40_n1000").dataset.train_size == 1000


def _program_key(spec, ds):
  """What determines a spec's compiled train step (the corruption and the seed do not)."""
  return (ds.input_shape, ds.num_classes, spec.model, spec.optimizer, spec.dataset.random_crop)


def test_every_tfds_spec_loads_and_traces_under_mock_data(mock_dir):
  """Every TFDS spec: validates, its dataset loads through tfds_data under mock_data, and its
  corruption and train step trace (jax.eval_shape) on that data. Which spec *trains* is
  covered below, for one spec per model/dataset family (compiling ~340 specs is minutes)."""
  assert len(TFDS_SPECS) > 300
  loaded, traced = {}, set()
  with mock_tfds(mock_dir, catalogue.TFDS_DATASETS, MOCK_EXAMPLES):
    for name in TFDS_SPECS:
      spec = workload.validate(_tiny(catalogue.get(name)))
      d = spec.dataset.name
      if d not in loaded:
        loaded[d] = datasets.load(dataclasses.replace(spec.dataset, train_size=None), mock_dir)
      ds = loaded[d]
      assert ds.input_shape == ((28, 28, 1) if "mnist" in d else (28, 28, 3))
      assert ds.num_classes == (100 if d == "cifar100" else 10)
      clean = jax.eval_shape(lambda ds=ds: corruptions.clean_data(
          ds.x_train, ds.y_train, ds.x_test, ds.y_test, ds.num_classes))
      data = jax.eval_shape(lambda c, spec=spec: corruptions.corrupt(
          prng.run_key(0), c, spec.corruption), clean)
      assert data.x_train.shape == (MOCK_EXAMPLES, *ds.input_shape)
      key = _program_key(spec, ds)
      if key in traced:
        continue
      traced.add(key)
      mock = dataclasses.replace(ds, x_train=ds.x_train[:MOCK_EXAMPLES],
                                 y_train=ds.y_train[:MOCK_EXAMPLES])
      steps = make_steps(workload.resolve(spec, dataset=mock), prng.run_key(0))
      state = jax.eval_shape(steps.init, prng.run_key(1))
      new = jax.eval_shape(steps.train_step, state, data)
      assert jax.tree.structure(new.params) == jax.tree.structure(state.params)
  assert set(loaded) == set(catalogue.TFDS_DATASETS)


def test_dataset_size_variants_subset_the_mock_training_set(mock_dir):
  with mock_tfds(mock_dir, ["cifar10"], 1000):
    ds = datasets.load(catalogue.get("cifar10_clean_n1000").dataset, mock_dir)
    assert ds.num_train == 1000
    with pytest.raises(datasets.DataError, match="train_size=2500 exceeds"):
      datasets.load(catalogue.get("cifar10_clean_n2500").dataset, mock_dir)


# Specs that also train (compile + 2 steps), kept few because each CNN compile
# takes seconds on CPU: the headline Inception spec (below), AlexNet with both
# Table 1 regularizers, 100 classes, and 1-channel inputs. The other models and
# datasets are traced by the test above (and WRN-28-1 is trained in
# docs/BENCHMARKS.md's measurements).
REPRESENTATIVE = ["cifar10_clean_alexnet_crop_wd", "cifar100_randlabels_mlp1x512",
                  "mnist_partial80"]


def _run(spec_name, mock_dir, tmp_path):
  spec = _tiny(catalogue.get(spec_name))
  with mock_tfds(mock_dir, catalogue.TFDS_DATASETS, MOCK_EXAMPLES):
    result = run.run_spec(spec, str(tmp_path), data_dir=mock_dir, log=lambda _: None)
  assert result["run"]["steps"] == 2
  assert json.loads((tmp_path / "result.json").read_text())["spec"]["name"] == spec_name
  assert 0 <= result["metrics"]["train_accuracy"] <= 1
  return result


def test_cifar10_randpix_trains_small_inception_with_batchnorm_state(mock_dir, tmp_path,
                                                                     monkeypatch):
  """The headline spec end to end under mock_data; BatchNorm statistics are carried."""
  outcomes = []
  real_train_group = loop.train_group

  def spy(*args, **kwargs):
    outcomes.extend(real_train_group(*args, **kwargs))
    return outcomes

  monkeypatch.setattr(loop, "train_group", spy)
  result = _run("cifar10_randpix", mock_dir, tmp_path)
  assert result["spec"]["resolved"]["model"]["name"] == "inception"
  stats = outcomes[0].state.model_state["batch_stats"]
  means = [np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(stats)[0]
           if "mean" in jax.tree_util.keystr(p)]
  assert len(means) == 19 and all(np.isfinite(m).all() and np.abs(m).sum() > 0 for m in means)


@pytest.mark.parametrize("spec_name", REPRESENTATIVE)
def test_representative_tfds_specs_train_end_to_end(spec_name, mock_dir, tmp_path):
  _run(spec_name, mock_dir, tmp_path)
