"""End to end: the command line, result.json, and bad input handling."""

import json
import os

import pytest

from memobench import catalogue, results, specs
from tests.conftest import run_main

TINY = ["--set", "budget.max_steps=6", "--set", "budget.eval_every_steps=3"]


def test_end_to_end_writes_valid_result_and_curve(tmp_path):
  out = run_main("--spec=digits_partial40", f"--workdir={tmp_path}", *TINY)
  assert out.returncode == 0, out.stderr
  assert "step 3/6" in out.stdout and "img/s" in out.stdout and "ETA" in out.stdout
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["schema_version"] == results.SCHEMA_VERSION
  spec = catalogue.get("digits_partial40")
  resolved, _ = specs.with_overrides(spec, ["budget.max_steps=6", "budget.eval_every_steps=3"])
  assert result["spec"]["name"] == "digits_partial40"
  assert result["spec"]["hash"] == specs.spec_hash(resolved)
  assert specs.from_dict(result["spec"]["resolved"]) == resolved
  assert result["spec"]["nonstandard"] == {"budget.max_steps": 6, "budget.eval_every_steps": 3}
  run = {k: result["run"][k] for k in ("seed", "status", "steps", "epochs", "preemption_count",
                                       "resumed_from_step")}
  assert run == {"seed": 0, "status": "budget_exhausted", "steps": 6,
                 "epochs": pytest.approx(6 / 22), "preemption_count": 0,
                 "resumed_from_step": None}
  m = result["metrics"]
  for key in ["train_accuracy", "test_accuracy", "generalization_gap", "steps_to_fit",
              "epochs_to_fit", "label_noise_fraction", "memorized_fraction",
              "corrupted_true_label_accuracy", "clean_subset_train_accuracy"]:
    assert key in m
  assert m["steps_to_fit"] is None and m["epochs_to_fit"] is None
  assert m["generalization_gap"] == pytest.approx(m["train_accuracy"] - m["test_accuracy"])
  assert 0.3 < m["label_noise_fraction"] < 0.42  # ~0.9 * 0.4 of 1,437 labels
  env = result["environment"]
  assert env["backend"] == "cpu" and env["device_count"] >= 1 and env["jax"]
  assert result["timing"]["wall_s"] > 0 and result["timing"]["compile_s"] > 0
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [3, 6]
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_standard_run_has_no_overrides_and_seed_flag(tmp_path):
  out = run_main("--spec=digits_clean", f"--workdir={tmp_path}", "--seed=3")
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["spec"]["nonstandard"] == {}
  assert result["run"]["seed"] == 3 and result["run"]["status"] == "completed"
  assert result["metrics"]["train_accuracy"] >= 0.99
  assert result["metrics"]["steps_to_fit"] == result["run"]["steps"]


def test_mnist5k_random_labels_are_memorized_and_clean_fits_faster(tmp_path):
  """The headline of Zhang et al. 2017 on the offline default dataset."""
  rand = run_main("--spec=mnist5k_randlabels", f"--workdir={tmp_path / 'rand'}")
  clean = run_main("--spec=mnist5k_clean", f"--workdir={tmp_path / 'clean'}")
  assert rand.returncode == 0 and clean.returncode == 0, rand.stderr + clean.stderr
  r = json.loads((tmp_path / "rand" / "result.json").read_text())["metrics"]
  c = json.loads((tmp_path / "clean" / "result.json").read_text())["metrics"]
  assert r["train_accuracy"] >= 0.99 and r["memorized_fraction"] >= 0.98
  assert 0.05 < r["test_accuracy"] < 0.15  # chance on the clean test set
  assert 0.88 < r["label_noise_fraction"] < 0.92
  assert c["train_accuracy"] >= 0.99 and c["test_accuracy"] > 0.9
  assert c["steps_to_fit"] < r["steps_to_fit"]


def _assert_one_line_error(out, code, needle):
  assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr
  assert needle in lines[0] and "Traceback" not in out.stderr


@pytest.mark.parametrize("args,code,needle", [
    (["--spec=mnist5k_randlabel"], 2, "did you mean mnist5k_randlabels"),
    (["--spec=digits_clean", "--set", "optimizer.lrr=1"], 2, "did you mean optimizer.lr"),
    (["--spec=digits_clean", "--set", "optimizer.lr=abc"], 2, "expected a value of type float"),
    (["--spec=digits_partial20", "--set", "corruption.level=2"], 2, "must be in [0, 1]"),
    (["--spec=digits_clean", "--set", "budget.batch_size=5000"], 2, "larger than the 1437"),
    (["--seeds=2", "--vmap_seeds=maybe"], 2, "flag --vmap_seeds=maybe: value should be one of"),
    (["--seeds=0"], 2, "flag --seeds=0: 0 is not an integer in the range [1, 10000]"),
])
def test_bad_input_one_line_nonzero_exit(tmp_path, args, code, needle):
  _assert_one_line_error(run_main(*args, f"--workdir={tmp_path}"), code, needle)
  assert not (tmp_path / "result.json").exists()


def test_workdir_under_a_file_is_refused(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  _assert_one_line_error(run_main("--spec=digits_clean", f"--workdir={blocker}/w"), 1,
                         "cannot create workdir")


def test_workdir_of_another_spec_refused_without_overwrite(tmp_path):
  assert run_main("--spec=digits_clean", f"--workdir={tmp_path}", *TINY).returncode == 0
  before = (tmp_path / "result.json").read_text()
  out = run_main("--spec=digits_randlabels", f"--workdir={tmp_path}", *TINY)
  _assert_one_line_error(out, 1, "holds a result of another spec")
  assert (tmp_path / "result.json").read_text() == before  # nothing lost
  out = run_main("--spec=digits_randlabels", f"--workdir={tmp_path}", "--overwrite", *TINY)
  assert out.returncode == 0, out.stderr
  assert json.loads((tmp_path / "result.json").read_text())["spec"]["name"] == "digits_randlabels"


def test_list_specs():
  out = run_main("--list_specs")
  assert out.returncode == 0
  lines = out.stdout.strip().splitlines()
  assert len(lines) == len(catalogue.names())
  assert any(l.startswith("mnist5k_randlabels ") and "mlp1x512" in l for l in lines)


def test_diverged_run_reports_status_not_crash(tmp_path):
  out = run_main("--spec=digits_clean", f"--workdir={tmp_path}", "--set", "optimizer.lr=1e30",
                 *TINY)
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["run"]["status"] == "diverged"
  assert result["metrics"]["train_loss"] is None  # NaN is written as null
