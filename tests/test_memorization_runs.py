"""Memorization scores on small label-noise runs: corrupted examples must score higher."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from memobench import catalogue, memorization, metrics, run, specs
from memobench.metrics import dynamics, turnover
from tests.conftest import REPO, run_main


def test_main_reports_self_influence_learning_times_and_geometry(tmp_path):
  """digits with 40% label noise, turn-over dropout 0.5, all geometry on (bounded)."""
  overrides = ["analysis.turnover_dropout=0.5", "budget.max_epochs=40",
               "analysis.csr_samples=100", "analysis.sharpness_iters=10",
               "analysis.sharpness_examples=256"]
  out = run_main("--spec=digits_partial40", f"--workdir={tmp_path}",
                 *[arg for o in overrides for arg in ("--set", o)])
  assert out.returncode == 0, out.stderr
  m = json.loads((tmp_path / "result.json").read_text())["memorization"]
  # Every metric the spec enables, in the table's order, found through the table alone.
  spec = specs.with_overrides(catalogue.get("digits_partial40"), overrides)[0]
  assert list(m) == [metric.section for metric in metrics.enabled(spec)] + ["timing_s"]
  assert list(m) == ["learning_dynamics", "turnover", "effective_rank", "critical_sample_ratio",
                     "sharpness", "timing_s"]
  assert list(m["timing_s"]) == ["turnover", "effective_rank", "csr", "sharpness"]
  t, d, er = m["turnover"], m["learning_dynamics"], m["effective_rank"]
  csr, sharp = m["critical_sample_ratio"], m["sharpness"]
  fmt = lambda v: f"{v:.4g}"
  assert (f"memorization: self-influence AUC {fmt(t['self_influence_auc'])}, learning-time AUC "
          f"{fmt(d['learning_time_auc'])}, effective rank {fmt(er['effective_rank'])}, CSR "
          f"{fmt(csr['critical_sample_ratio'])}, sharpness "
          f"{fmt(sharp['top_hessian_eigenvalue'])}\n") in out.stdout
  assert t["self_influence_auc"] > 0.8  # measured 0.985
  assert t["self_influence_loss_mean"]["corrupted"] > t["self_influence_loss_mean"]["clean"]
  assert t["own_mask_accuracy"]["all"] > t["flipped_mask_accuracy"]["all"]
  assert d["learning_time_auc"] > 0.8  # noisy labels are learned later (Arpit 2017)
  assert d["evaluations"] == 40
  assert d["first_learned_epoch_mean"]["corrupted"] > d["first_learned_epoch_mean"]["clean"]
  assert 1.0 < er["effective_rank"] < er["embedding_dim"] == 512 and er["examples"] == 360
  assert 0.0 <= m["critical_sample_ratio"]["critical_sample_ratio"] <= 1.0
  assert m["critical_sample_ratio"]["samples"] == 100
  assert m["sharpness"]["top_hessian_eigenvalue"] > 0 and m["sharpness"]["examples"] == 256
  with np.load(tmp_path / turnover.METRIC.arrays_file) as z:
    assert z["self_influence_loss"].shape == (1437,) and z["label_changed"].sum() > 400
  with np.load(tmp_path / dynamics.METRIC.arrays_file) as z:
    assert z["first_learned_step"].shape == (1437,)
    assert set(np.unique(z["forgetting_events"])) <= set(range(41))
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_forced_memorization_fits_without_generalizing(tmp_path):
  """Badger 2022: the split objective keeps the fit and loses the test accuracy."""
  results = {}
  for objective in ("ce", "forced_memorization"):
    spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
        "dataset.train_size=1000", f"analysis.objective={objective}", "budget.max_epochs=100"])
    results[objective] = run.run_spec(spec, str(tmp_path / objective), log=lambda _: None,
                                      checkpoint_every=0)["metrics"]
  ce, forced = results["ce"], results["forced_memorization"]
  assert ce["train_accuracy"] >= 0.99 and forced["train_accuracy"] >= 0.99
  assert forced["test_accuracy"] < ce["test_accuracy"] - 0.1  # measured 0.68 vs 0.96
  assert forced["steps_to_fit"] > ce["steps_to_fit"]


def test_subsample_estimator_one_program_scores_corrupted_labels_higher(tmp_path):
  """8 models on 70% subsets of 600 mnist5k examples with 40% label noise."""
  spec, _ = specs.with_overrides(catalogue.get("mnist5k_partial40"), [
      "dataset.train_size=600", "budget.batch_size=64"])
  config = memorization.EnsembleConfig(models=8, subset_fraction=0.7, epochs=40)
  summary = memorization.run(spec, config, str(tmp_path), sequential=True, log=lambda _: None)
  s = summary["scores"]
  assert s["model_subset_train_accuracy_mean"] > 0.97  # the models fit their subsets
  assert s["mem_auc"] > 0.75  # measured 0.83
  assert s["mem_mean"]["corrupted"] > s["mem_mean"]["clean"] + 0.3
  # The one-program ensemble and the model-by-model runs are the same models.
  assert summary["timing"]["sequential_matches_ensemble"] > 0.98
  on_disk = json.loads((tmp_path / memorization.SUMMARY_FILE).read_text())
  assert on_disk["scores"]["mem_auc"] == pytest.approx(s["mem_auc"])
  with np.load(tmp_path / memorization.SCORES_FILE) as z:
    assert z["in_subset"].shape == (8, 600) and (z["in_subset"].sum(1) == 420).all()
    assert z["mem"].shape == (600,)


_SHARDED = """
import sys
import jax
jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
import numpy as np
from memobench import catalogue, memorization as M, specs
from memobench.data import datasets
spec, _ = specs.with_overrides(catalogue.get("digits_partial20"), ["dataset.train_size=200",
                                                              "budget.batch_size=32"])
w = M.estimator_workload(spec, M.EnsembleConfig(models=4, epochs=2), datasets.load(spec.dataset))
out = M.train_models(w, w.corrupted_data(spec.seed), M.model_keys(0, 4))
np.savez(sys.argv[2], train=out.train_predictions, in_subset=out.in_subset)
# The loop's program ran on every device (each batch sharded over 'data').
params = jax.tree.leaves(out.outcomes[0].state.params)[0]
print(jax.device_count(), len(params.sharding.device_set))
"""


def test_ensemble_shards_batches_over_devices(tmp_path):
  """The K models through the loop on 2 devices: each batch split over both, same models."""
  got = {}
  for devices in (1, 2):
    path = tmp_path / f"d{devices}.npz"
    out = subprocess.run([sys.executable, "-c", _SHARDED, str(devices), str(path)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(devices), str(devices)]
    got[devices] = np.load(path)
  assert (got[1]["in_subset"] == got[2]["in_subset"]).all()
  assert float(np.mean(got[1]["train"] == got[2]["train"])) > 0.98


def test_memorization_cli_bad_input_is_one_line(tmp_path):
  out = subprocess.run([sys.executable, "-m", "memobench.memorization", "--spec=digits_nope",
                        f"--workdir={tmp_path}"], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
  assert out.returncode == 2
  assert out.stderr.strip().count("\n") == 0 and "unknown spec" in out.stderr
  assert "Traceback" not in out.stderr
