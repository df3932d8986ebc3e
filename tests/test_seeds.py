"""Seeds of one spec: one vmapped program equals one run per seed, resumes, and stops on SIGTERM.

The group runs 4 seeds of digits_clean that fit at different steps (121, 132,
143, 143 with evaluations every 11 steps), so a finished seed's slot is masked
out while the others train on, and the group later shrinks to a smaller program.
"""

import dataclasses
import json
import os
import shutil
import signal

import chex
import pytest

from memobench import catalogue, results, run, specs, sweep, workload
from memobench.data import datasets
from tests.conftest import run_main

SEEDS = (0, 1, 2, 3)
OVERRIDES = ["budget.eval_every_steps=11", "budget.max_steps=330",
             "analysis.effective_rank=false"]
TIMING = ("wall_s", "images_per_sec")


def _seed_specs(seeds=SEEDS):
  spec, applied = specs.with_overrides(catalogue.get("digits_clean"), OVERRIDES)
  return [dataclasses.replace(spec, seed=s) for s in seeds], applied


def _run(root, vmap, seeds=SEEDS, logs=None, checkpoint_every=0):
  seed_specs, applied = _seed_specs(seeds)
  return run.run_seeds(seed_specs, [str(root / f"seed{s}") for s in seeds], nonstandard=applied,
                       logs=logs or [lambda _: None] * len(seeds), vmap=vmap,
                       checkpoint_every=checkpoint_every)


def _approx(tree):
  """`tree` with floats compared to 1e-5 relative: a vmapped program may round losses
  differently in the last bits (accuracies, steps and decisions must agree exactly)."""
  if isinstance(tree, dict):
    return {k: _approx(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return [_approx(v) for v in tree]
  if isinstance(tree, float):
    return pytest.approx(tree, rel=1e-5, abs=1e-7)
  return tree


def _curve(workdir):
  rows = [json.loads(l) for l in (workdir / results.CURVE_FILE).read_text().splitlines()]
  return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _final_params(workdir):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  steps = sorted(int(p) for p in os.listdir(workdir / "checkpoints") if p.isdigit())
  with ocp.StandardCheckpointer() as ckptr:
    return ckptr.restore(workdir / "checkpoints" / str(steps[-1]) / "state")["params"]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
  root = tmp_path_factory.mktemp("sequential")
  out = _run(root, "false", checkpoint_every=1000)
  return root, out


@pytest.fixture(scope="module")
def vmapped(tmp_path_factory):
  root = tmp_path_factory.mktemp("vmapped")
  out = _run(root, "true", checkpoint_every=1000)
  return root, out


def test_vmapped_seeds_equal_their_single_runs(sequential, vmapped):
  (seq_root, seq), (vm_root, vm) = sequential, vmapped
  assert [r["metrics"]["steps_to_fit"] for r in seq] == [143, 143, 121, 132]
  for s, a, b in zip(SEEDS, seq, vm):
    assert a["run"]["vmapped_seeds"] is None and b["run"]["vmapped_seeds"] == list(SEEDS)
    assert (a["run"]["seed"], a["run"]["status"], a["run"]["steps"]) == \
           (b["run"]["seed"], b["run"]["status"], b["run"]["steps"]) == (s, "completed",
                                                                         a["metrics"]["steps_to_fit"])
    assert b["metrics"] == _approx(a["metrics"])
    for k in ("train_accuracy", "test_accuracy", "steps_to_fit"):
      assert a["metrics"][k] == b["metrics"][k]
    assert a["spec"] == b["spec"]
    assert a["memorization"]["learning_dynamics"] == b["memorization"]["learning_dynamics"]
    assert _curve(vm_root / f"seed{s}") == _approx(_curve(seq_root / f"seed{s}"))
    rows = [json.loads(l) for l in (vm_root / f"seed{s}" / results.CURVE_FILE).read_text()
            .splitlines()]
    assert b["timing"]["time_to_fit_s"] == rows[-1]["wall_s"]
    on_disk = json.loads((vm_root / f"seed{s}" / results.RESULT_FILE).read_text())
    assert on_disk["run"]["vmapped_seeds"] == list(SEEDS)
    # The same final parameters, and checkpoints a single run can resume.
    # On CPU the group's program runs its members in slices of one
    # (programs.default_members_per_slice): each member's steps are its single
    # run's computation, so the parameters are equal bitwise, not only close.
    assert b["run"]["members_per_slice"] == 1 and "members_per_slice" not in a["run"]
    want, got = _final_params(seq_root / f"seed{s}"), _final_params(vm_root / f"seed{s}")
    chex.assert_trees_all_equal(got, want)
  # Seeds 0 and 1 go on in a smaller program after step 132, where seed 3 stopped: their
  # clocks keep running through its compilation.
  extra_compile = vm[0]["timing"]["compile_s"] - vm[3]["timing"]["compile_s"]
  assert extra_compile > 0
  assert vm[0]["timing"]["time_to_fit_s"] - vm[3]["timing"]["time_to_fit_s"] > extra_compile


def test_group_preempted_then_resumed_from_mixed_steps(tmp_path, vmapped):
  """SIGTERM checkpoints every seed of the group; a rerun finishes them as if never stopped.

  Seed 2's checkpoints are then deleted, so the rerun resumes seeds 0, 1 and 3
  from step 55 in one program and trains seed 2 from scratch in another.
  """
  vm_root, reference = vmapped

  def log(msg):
    if msg.startswith("step 55/"):
      os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler checkpoints at this boundary

  first = _run(tmp_path, "true", logs=[log] + [lambda _: None] * 3, checkpoint_every=22)
  assert [r["run"]["status"] for r in first] == ["preempted"] * 4
  assert [r["run"]["steps"] for r in first] == [55] * 4
  shutil.rmtree(tmp_path / "seed2")
  lines = []
  second = _run(tmp_path, "true", logs=[lines.append] + [lambda _: None] * 3,
                checkpoint_every=22)
  assert any("resume from different steps (step 0: seeds 2, step 55: seeds 0, 1, 3)" in l
             for l in lines), lines
  for s, got, want in zip(SEEDS, second, reference):
    assert got["metrics"] == _approx(want["metrics"]) and got["run"]["status"] == "completed"
    assert got["run"]["preemption_count"] == (0 if s == 2 else 1)
    assert got["run"]["resumed_from_step"] == (None if s == 2 else 55)
    assert _curve(tmp_path / f"seed{s}") == _approx(_curve(vm_root / f"seed{s}"))


def test_choose_vmapped_auto_small_models_only(monkeypatch):
  spec = catalogue.get("digits_clean")
  digits = datasets.load(spec.dataset)
  small = workload.resolve(spec, dataset=digits)
  conv = workload.resolve(dataclasses.replace(spec, model=specs.ModelSpec("alexnet")),
                          dataset=digits)
  assert run.choose_vmapped("auto", small, 3)[0] is True
  assert run.choose_vmapped("auto", small, 1) == (False, "one seed")
  assert run.choose_vmapped("false", small, 3)[0] is False
  vmapped, why = run.choose_vmapped("auto", conv, 3)
  assert not vmapped and "convolutional" in why and conv.fused is False
  with pytest.raises(specs.SpecError, match="--vmap_seeds=true: one after another: alexnet"):
    run.choose_vmapped("true", conv, 3)
  with pytest.raises(specs.SpecError, match="must be one of auto, true, false"):
    run.choose_vmapped("sometimes", small, 3)
  # mlp1x512 on 8x8 digits: 64*512 + 512 + 512*10 + 10 parameters.
  monkeypatch.setattr(run, "SMALL_MODEL_PARAMS", 38_000)
  vmapped, why = run.choose_vmapped("auto", small, 3)
  assert not vmapped and "38,410 parameters is not a small model" in why
  assert run.choose_vmapped("true", small, 3)[0] is True
  monkeypatch.setattr(run, "SMALL_MODEL_PARAMS", 10**7)
  monkeypatch.setattr(run, "MAX_GROUP_DATA_BYTES", 1000)
  vmapped, why = run.choose_vmapped("auto", small, 3)
  assert not vmapped and "3 copies of digits need" in why


def test_sweep_groups_consecutive_seeds_of_one_spec(tmp_path):
  a = sweep.seed_jobs(catalogue.get("digits_clean"), str(tmp_path / "a"), 3)
  b = sweep.seed_jobs(catalogue.get("digits_clean"), str(tmp_path / "b"), 2,
                      {"optimizer.lr": 0.05})
  c = sweep.seed_jobs(catalogue.get("digits_randlabels"), str(tmp_path / "c"), 2)
  jobs = a + b + c + a[:1]
  assert sweep.groups(jobs) == [[0, 1, 2], [3, 4], [5, 6], [7]]
  # A repeated seed starts a new group.
  assert sweep.groups(a + a) == [[0, 1, 2], [3, 4, 5]]


def test_seeds_flag_vmapped_end_to_end(tmp_path):
  out = run_main("--spec=digits_clean", "--seeds=2", "--vmap_seeds=true",
                 f"--workdir={tmp_path}", "--set", "budget.max_steps=22",
                 "--set", "budget.eval_every_steps=11")
  assert out.returncode == 0, out.stderr
  assert "2 seeds of digits_clean: in one vmapped program (--vmap_seeds=true)" in out.stdout
  assert "digits_clean seed 1: step 22/22" in out.stdout
  for s in (0, 1):
    result = json.loads((tmp_path / f"seed{s}" / "result.json").read_text())
    assert result["run"]["seed"] == s and result["run"]["vmapped_seeds"] == [0, 1]
  assert "2/2 runs" in out.stderr


def test_seeds_flag_refuses_vmapping_a_convolutional_model_in_one_line(tmp_path):
  out = run_main("--spec=digits_clean", "--seeds=2", "--vmap_seeds=true",
                 "--set", "model.name=wrn28_1", f"--workdir={tmp_path}")
  assert out.returncode == 2, out.stderr
  assert out.stderr.strip().splitlines() == [
      "memobench: error: --vmap_seeds=true: one after another: wrn28_1 is convolutional and "
      "its steps are not fused on cpu"]


def test_sigterm_stops_a_sequential_sweep_after_checkpointing(tmp_path):
  """The preempted seed checkpoints, later seeds are not started, exit code 143."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from tests.conftest import REPO  # pylint: disable=import-outside-toplevel
  proc = subprocess.Popen(
      [sys.executable, "-m", "memobench.main", "--spec=mnist5k_randlabels", "--seeds=2",
       "--vmap_seeds=false", f"--workdir={tmp_path}", "--checkpoint_every=31",
       "--set", "budget.eval_every_steps=31", "--set", "analysis.effective_rank=false"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env={**os.environ, "PYTHONUNBUFFERED": "1"})
  try:
    for line in proc.stdout:
      if "step 62/" in line:
        proc.send_signal(signal.SIGTERM)
        break
    _, err = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 143, err
  result = json.loads((tmp_path / "seed0" / "result.json").read_text())
  assert result["run"]["status"] == "preempted"
  assert not (tmp_path / "seed1").exists()
