"""Each experiment script runs end to end in its --quick mode and writes what it promises."""

import json
import os
import subprocess
import sys

import pytest

from memobench import leaderboard
from tests.conftest import REPO

PNG = b"\x89PNG\r\n\x1a\n"


def run_script(name, workdir, *args):
  out = subprocess.run([sys.executable, os.path.join(REPO, "experiments", name), "--quick",
                        f"--workdir={workdir}", *args], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  return out


def check_outputs(workdir, figure, n_runs):
  assert (workdir / figure).read_bytes()[:8] == PNG
  assert os.path.getsize(workdir / figure) > 10_000
  board = leaderboard.read(str(workdir / "leaderboard.json"))
  runs = sum(len(e["sources"]) for e in board["ranked"] + board["unranked"])
  assert runs == n_runs and board["skipped"] == []
  # --quick runs override the budget: non-standard, never ranked.
  assert board["ranked"] == []
  assert "<table" in (workdir / "leaderboard.html").read_text()
  return json.loads((workdir / "summary.json").read_text())


def test_zhang2017_fig1_quick(tmp_path):
  out = run_script("zhang2017_fig1.py", tmp_path)
  assert "6/6 runs" in out.stderr
  summary = check_outputs(tmp_path, "fig1.png", 6)
  a = summary["panel_a"]
  assert set(a) == {"clean", "randlabels", "shufpix", "randpix", "gaussian"}
  # Even 20 steps separate real labels from random ones on the clean test set.
  assert a["clean"]["test_error"]["mean"] < 0.5 < a["randlabels"]["test_error"]["mean"]
  assert [lv["p"] for lv in summary["label_corruption"]] == [0.0, 0.4, 1.0]
  noise = [lv["label_noise_fraction"]["mean"] for lv in summary["label_corruption"]]
  assert noise[0] == 0 and 0.3 < noise[1] < 0.42 and noise[2] > 0.85
  # Resumable: a second invocation reruns nothing.
  again = run_script("zhang2017_fig1.py", tmp_path)
  assert again.stderr.count("kept existing result") == 6


def test_zhang2017_table1_quick(tmp_path):
  out = run_script("zhang2017_table1.py", tmp_path)
  summary = check_outputs(tmp_path, "table1.png", 2)
  rows = {(r["corruption"], r["weight_decay"]): r for r in summary["rows"]}
  assert set(rows) == {("clean", True), ("randlabels", False)}
  assert rows[("randlabels", False)]["paper_cifar10"] == {"train": 99.34, "test": 10.61}
  table = (tmp_path / "table1.md").read_text()
  assert "| mlp1x512 | random | no | no |" in table and "| 99.34 | 10.61 |" in table
  assert table in out.stdout


def test_arpit2017_regularizers_quick(tmp_path):
  run_script("arpit2017_regularizers.py", tmp_path)
  summary = check_outputs(tmp_path, "regularizers.png", 6)
  assert [r["setting"] for r in summary["rows"]] == ["none", "dropout0.5", "noise0.5"]
  for r in summary["rows"]:
    assert 0 <= r["random_label_train_accuracy"]["mean"] <= 1
    assert r["clean_test_accuracy"]["mean"] > 0.5


@pytest.mark.parametrize("script,args,needle", [
    ("zhang2017_fig1.py", ["--dataset=nosuchset"], "unknown spec 'nosuchset_clean'"),
    ("zhang2017_table1.py", ["--models=nosuchmodel"], "unknown model 'nosuchmodel'"),
])
def test_bad_input_is_one_line(tmp_path, script, args, needle):
  out = subprocess.run([sys.executable, os.path.join(REPO, "experiments", script), "--quick",
                        f"--workdir={tmp_path}", *args], capture_output=True, text=True,
                       timeout=120, cwd=REPO)
  assert out.returncode == 2 and needle in out.stderr
  assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script", ["zhang2017_fig1.py", "zhang2017_table1.py",
                                    "arpit2017_regularizers.py"])
def test_docstring_gives_command_runtime_and_expected_result(script):
  import ast  # pylint: disable=import-outside-toplevel
  doc = ast.get_docstring(ast.parse(open(os.path.join(REPO, "experiments", script)).read()))
  assert f"python experiments/{script}" in doc and f"python experiments/{script} --quick" in doc
  assert "Expected runtime:" in doc and "Expected result" in doc


def test_three_sharded_workers_complete_one_grid_exactly_once(tmp_path):
  """--shard=i/3 (a SLURM array, an Indexed Job): each run of the 6-run grid trains once."""
  script = os.path.join(REPO, "experiments", "zhang2017_fig1.py")
  workers = [subprocess.Popen([sys.executable, script, "--quick", f"--workdir={tmp_path}",
                               f"--shard={i}/3"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
  logs = [w.communicate(timeout=600) for w in workers]
  for w, (_, err) in zip(workers, logs):
    assert w.returncode == 0, err[-3000:]
  trained = [line for _, err in logs for line in err.splitlines()
             if "runs |" in line and ("completed" in line or "budget_exhausted" in line)]
  labels = [line.rsplit("| ", 1)[-1].split(":")[0] for line in trained]
  assert len(labels) == 6 and len(set(labels)) == 6, trained
  # Whoever finished last found every result and wrote the summary; a later call reruns nothing.
  again = run_script("zhang2017_fig1.py", tmp_path)
  assert again.stderr.count("kept existing result") == 6
  check_outputs(tmp_path, "fig1.png", 6)


def test_a_bad_shard_is_one_line():
  out = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "zhang2017_fig1.py"),
                        "--quick", "--shard=3/3"], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
  assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
  assert "--shard=3/3: expected INDEX/COUNT" in out.stderr
