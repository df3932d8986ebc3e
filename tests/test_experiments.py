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
  """The spec-cell kind end to end: the script's --quick command, then every run kept."""
  from experiments import driver, zhang2017_fig1  # pylint: disable=import-outside-toplevel
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
  assert "corruption   steps_to_fit" in out.stdout
  # Resumable: a rerun would keep every run.
  run = driver.Run(zhang2017_fig1.EXPERIMENT, zhang2017_fig1.QUICK,
                   driver.Options(str(tmp_path)))
  assert all(r is not None for r in run.records().values())


def test_a_bad_spec_name_is_one_failure_before_training(tmp_path):
  from experiments import driver, zhang2017_fig1  # pylint: disable=import-outside-toplevel
  config = driver.configure(zhang2017_fig1.EXPERIMENT, True, ["dataset=nosuchset"])
  with pytest.raises(driver.Failure, match="unknown spec 'nosuchset_clean'") as e:
    driver.run_experiment(zhang2017_fig1.EXPERIMENT, config, driver.Options(str(tmp_path)))
  assert e.value.code == 2 and not (tmp_path / "runs").exists()


def test_seeds_are_bounded_up_front():
  """Issue 27 item 8: --seeds=4294967290 once built a 3.8 GB job list; now one line."""
  from experiments import driver, knobs, zhang2017_fig1  # pylint: disable=import-outside-toplevel
  with pytest.raises(knobs.KnobError, match=r"seeds=4294967290: expected an integer in \[1, 10000\]"):
    driver.configure(zhang2017_fig1.EXPERIMENT, True, ["seeds=4294967290"])


RECORDED = sorted(f for f in os.listdir(os.path.join(REPO, "tests", "data", "experiments"))
                  if f.endswith(".records.json.gz"))


@pytest.mark.parametrize("name", RECORDED)
def test_summarize_and_plot_on_recorded_cells(tmp_path, name):
  """Each experiment's pure summarize and plot, on the records of a --quick run (no training):
  the summary is the one that run wrote, and every figure renders."""
  import importlib  # pylint: disable=import-outside-toplevel
  from experiments import driver  # pylint: disable=import-outside-toplevel
  from memobench import results  # pylint: disable=import-outside-toplevel
  module = importlib.import_module(f"experiments.{name.split('.')[0]}")
  experiment = module.EXPERIMENT
  config, records, recorded = driver.load_records(
      experiment, os.path.join(REPO, "tests", "data", "experiments", name))
  summary = experiment.summarize(config, records)
  assert json.loads(json.dumps(results.finite_or_none(summary))) == recorded
  if experiment.plot is not None:
    figures = experiment.plot(config, summary)
    assert figures
    driver.save_figures(figures, str(tmp_path), lambda m: None)
    for f in figures:
      assert (tmp_path / f).read_bytes()[:8] == PNG
  if experiment.report is not None:
    assert experiment.report(config, summary).strip()


def recorded(name):
  """(experiment, config, records, summary) of tests/data/experiments/<name>.records.json.gz."""
  import importlib  # pylint: disable=import-outside-toplevel
  from experiments import driver  # pylint: disable=import-outside-toplevel
  experiment = importlib.import_module(f"experiments.{name}").EXPERIMENT
  config, records, _ = driver.load_records(
      experiment, os.path.join(REPO, "tests", "data", "experiments", f"{name}.records.json.gz"))
  return experiment, config, records, experiment.summarize(config, records)


def test_zhang2017_table1_on_recorded_cells():
  """--quick: one regularized clean row and random labels; the paper's values beside them."""
  experiment, config, records, summary = recorded("zhang2017_table1")
  assert set(records) == {"mlp1x512_clean_wd", "mlp1x512_randlabels"}
  assert all(len(runs) == 1 for runs in records.values())
  rows = {(r["corruption"], r["weight_decay"]): r for r in summary["rows"]}
  assert set(rows) == {("clean", True), ("randlabels", False)}
  assert rows[("randlabels", False)]["paper_cifar10"] == {"train": 99.34, "test": 10.61}
  assert rows[("clean", True)]["spec"] == "digits_clean_wd"
  table = experiment.report(config, summary)
  assert "| mlp1x512 | random | no | no |" in table and "| 99.34 | 10.61 |" in table


def test_zhang2017_table1_default_grid_and_bad_models(tmp_path):
  """The default grid (no training): each model's rows with and without weight decay, and
  random labels; convolutional models add the random-crop rows; a bad model is one line."""
  from experiments import driver, knobs, zhang2017_table1 as t1  # pylint: disable=import-outside-toplevel
  experiment = t1.EXPERIMENT
  keys = [c.key for c in experiment.grid(driver.configure(experiment, False, []))]
  assert keys == ["mlp3x512_clean_wd", "mlp3x512_clean", "mlp3x512_randlabels",
                  "mlp1x512_clean_wd", "mlp1x512_clean", "mlp1x512_randlabels"]
  conv = experiment.grid(driver.configure(experiment, False, ["dataset=cifar10",
                                                             "models=alexnet"]))
  assert [c.spec.name for c in conv] == [
      "cifar10_clean_alexnet_crop_wd", "cifar10_clean_alexnet_crop", "cifar10_clean_alexnet_wd",
      "cifar10_clean_alexnet", "cifar10_randlabels_alexnet"]
  with pytest.raises(knobs.KnobError, match="unknown model 'nosuchmodel'"):
    driver.configure(experiment, True, ["models=nosuchmodel"])
  with pytest.raises(knobs.KnobError, match="dataset=nosuchset: unknown"):
    driver.configure(experiment, True, ["dataset=nosuchset"])


def test_arpit2017_regularizers_on_recorded_cells():
  """--quick: the baseline, one dropout and one input-noise level, each on random and
  clean labels; rows in that order."""
  _, _, records, summary = recorded("arpit2017_regularizers")
  assert set(records) == {f"{c}_{k}" for c in ("randlabels", "clean")
                          for k in ("none", "dropout0.5", "noise0.5")}
  assert [r["setting"] for r in summary["rows"]] == ["none", "dropout0.5", "noise0.5"]
  for r in summary["rows"]:
    assert 0 <= r["random_label_train_accuracy"]["mean"] <= 1
    assert r["clean_test_accuracy"]["mean"] > 0.5
  # The regularizer reaches the spec: the dropout cell's runs trained with it.
  spec = records["randlabels_dropout0.5"][0]["spec"]
  assert spec["resolved"]["model"]["dropout"] == 0.5 and spec["nonstandard"]


def test_arpit2017_regularizers_verdict_rule():
  """A cap is >= 0.1 lower random-label train accuracy beyond 2 se; it hurts when clean test
  accuracy is > 1 point lower beyond 2 se (known answers on a made-up summary)."""
  from experiments import arpit2017_regularizers as reg  # pylint: disable=import-outside-toplevel

  def row(setting, regularizer, mem, gen, std=0.005):
    cell = lambda mean: {"mean": mean, "std": std, "n": 3}  # pylint: disable=unnecessary-lambda-assignment
    return {"setting": setting, "regularizer": regularizer, "random_label_train_accuracy":
            cell(mem), "clean_test_accuracy": cell(gen)}
  summary = {"seeds": 3, "rows": [
      row("none", "none", 0.99, 0.94), row("dropout0.8", "dropout", 0.50, 0.945),
      row("wd0.01", "weight_decay", 0.40, 0.90), row("noise0.1", "input_noise", 0.985, 0.94)]}
  words = {v["claim"].split(" can ")[0]: v["verdict"] for v in reg.judge(summary)}
  assert words == {"dropout": "agrees", "weight decay": "partly", "input noise": "disagrees"}
  one_seed = {"seeds": 1, "rows": [{**r, "random_label_train_accuracy": {
      **r["random_label_train_accuracy"], "std": None, "n": 1}} for r in summary["rows"]]}
  assert {v["verdict"] for v in reg.judge(one_seed)} == {"inconclusive"}


def _is_experiment(f):
  if not f.endswith(".py") or f.startswith("_"):
    return False
  text = open(os.path.join(REPO, "experiments", f)).read()
  return 'if __name__ == "__main__"' in text and "EXPERIMENT = driver.Experiment(" in text


EXPERIMENT_SCRIPTS = sorted(f for f in os.listdir(os.path.join(REPO, "experiments"))
                            if _is_experiment(f))


def test_every_experiment_is_listed():
  assert len(EXPERIMENT_SCRIPTS) >= 14 and "common.py" not in EXPERIMENT_SCRIPTS
  assert "driver.py" not in EXPERIMENT_SCRIPTS and "reproduce.py" not in EXPERIMENT_SCRIPTS


@pytest.mark.parametrize("script", EXPERIMENT_SCRIPTS)
def test_docstring_gives_command_runtime_finding_and_agreement(script):
  """The brief: the docstring opens with the command and its runtime here, then the
  paper's finding, the measured result, and whether they agree."""
  import ast  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  doc = ast.get_docstring(ast.parse(open(os.path.join(REPO, "experiments", script)).read()))
  lines = doc.splitlines()
  assert f"python experiments/{script}" in doc and f"python experiments/{script} --quick" in doc
  opening = "\n".join(lines[:30])
  assert f"python experiments/{script}" in opening
  assert re.search(r"^(Expected |Measured )?[Rr]untime:", opening, re.M), "no runtime line"
  assert re.search(r"Measured|Expected result", doc), "no measured result"
  assert re.search(r"(?i)agree|does not reproduce|did not reproduce|matches the paper|"
                   r"as in the paper", doc), "no statement of agreement with the paper"
  assert "PLACEHOLDER" not in doc and "TODO" not in doc


def test_the_template_is_a_valid_experiment(tmp_path):
  """experiments/_template.py (BUILD.md's one file to copy) declares a grid the driver runs."""
  from experiments import _template, driver  # pylint: disable=import-outside-toplevel
  listing = driver.list_cells(_template.EXPERIMENT, _template.QUICK,
                              driver.Options(str(tmp_path)))
  assert "clean" in listing and "gap" in listing and "computed compute_gap <- clean, randlabels" \
      in listing
  assert driver.configure(_template.EXPERIMENT, False, ["seeds=2"]).seeds == 2
