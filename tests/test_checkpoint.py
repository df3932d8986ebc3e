"""Checkpoints: exact resume after SIGKILL, preemption by SIGTERM, corrupted checkpoints.

One uninterrupted reference run is shared; every interrupted run must end with
the very same result.json metrics, learning curve and (bitwise) final parameters.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys

import chex
import pytest

from tests.conftest import REPO, run_main

SPEC = "--spec=mnist5k_randlabels"  # random labels: does not fit within the budget
ARGS = ["--set", "budget.max_steps=186", "--set", "budget.eval_every_steps=31",
        "--set", "analysis.effective_rank=false",  # seconds of SVD, not under test here
        "--checkpoint_every=62"]
EVAL_STEPS = list(range(31, 187, 31))
TIMING_FIELDS = ("wall_s", "images_per_sec")


def _result(workdir):
  return json.loads((workdir / "result.json").read_text())


def _curve(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


def _steps(workdir):
  return sorted(int(p) for p in os.listdir(workdir / "checkpoints") if p.isdigit())


def _final_state(workdir):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  step = _steps(workdir)[-1]
  with ocp.StandardCheckpointer() as ckptr:
    return step, ckptr.restore(workdir / "checkpoints" / str(step) / "state")


def _assert_same_run(workdir, reference):
  got, want = _result(workdir), _result(reference)
  assert got["metrics"] == want["metrics"]
  assert {k: got["run"][k] for k in ("status", "steps", "epochs")} == \
         {k: want["run"][k] for k in ("status", "steps", "epochs")}
  assert _curve(workdir) == _curve(reference)
  # Per-example learning dynamics (an on_eval tracker) survive the resume too.
  strip = lambda m: {k: v for k, v in (m or {}).items() if k != "timing_s"}
  assert strip(got.get("memorization")) == strip(want.get("memorization"))
  step, state = _final_state(workdir)
  ref_step, ref_state = _final_state(reference)
  assert step == ref_step == want["run"]["steps"]
  assert "kernel" in ref_state["params"]["Dense_0"]
  chex.assert_trees_all_equal(state, ref_state)  # bitwise, the same tree structure


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("reference")
  out = run_main(SPEC, f"--workdir={workdir}", *ARGS)
  assert out.returncode == 0, out.stderr
  assert _result(workdir)["run"]["status"] == "budget_exhausted"
  assert _result(workdir)["run"]["preemption_count"] == 0
  # Saves every 62 steps and at the end.
  assert _steps(workdir) == [62, 124, 186]
  return workdir


def _start(workdir, *extra):
  return subprocess.Popen(
      [sys.executable, "-m", "memobench.main", SPEC, f"--workdir={workdir}", *ARGS, *extra],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _signal_at_step(proc, step, signum, after_checkpoint_in=None):
  """Sends `signum` once the run reports `step`; returns the stdout seen so far.

  after_checkpoint_in: a workdir; the signal waits for the first step report
  (from `step` on) at which a checkpoint there is committed (saves are
  asynchronous: a kill right after one was started can leave none).
  """
  seen = []
  try:
    for line in proc.stdout:
      seen.append(line)
      if not line.startswith("step "):
        continue
      reported = int(line.split()[1].split("/")[0])
      if reported >= step and (after_checkpoint_in is None or _steps(after_checkpoint_in)):
        proc.send_signal(signum)
        break
    rest, err = proc.communicate(timeout=120)
  except BaseException:
    proc.kill()
    proc.wait()
    raise
  return "".join(seen) + rest, err


def test_sigkill_at_a_random_step_then_rerun_is_bitwise_identical(tmp_path, reference):
  kill_at = random.choice(EVAL_STEPS[2:5])  # after the first save
  proc = _start(tmp_path)
  out, err = _signal_at_step(proc, kill_at, signal.SIGKILL, after_checkpoint_in=tmp_path)
  assert proc.returncode == -signal.SIGKILL, (out, err)
  assert not (tmp_path / "result.json").exists()
  saved = _steps(tmp_path)
  assert saved and max(saved) < 186, saved
  rerun = run_main(SPEC, f"--workdir={tmp_path}", *ARGS)
  assert rerun.returncode == 0, rerun.stderr
  assert f"resumed from the checkpoint of step {max(saved)}" in rerun.stdout
  _assert_same_run(tmp_path, reference)
  assert _result(tmp_path)["run"]["resumed_from_step"] == max(saved)
  assert _result(tmp_path)["run"]["preemption_count"] == 0


def test_sigterm_checkpoints_and_reports_preempted_then_rerun_completes(tmp_path, reference):
  proc = _start(tmp_path)
  out, err = _signal_at_step(proc, 62, signal.SIGTERM)
  assert proc.returncode == 143, (out, err)
  result = _result(tmp_path)
  assert result["run"]["status"] == "preempted" and result["run"]["preemption_count"] == 1
  stopped = result["run"]["steps"]
  assert 62 <= stopped < 186 and stopped in _steps(tmp_path)
  assert f"preempted at step {stopped}" in out
  assert [r["step"] for r in _curve(tmp_path)] == list(range(31, stopped + 1, 31))

  rerun = run_main(SPEC, f"--workdir={tmp_path}", *ARGS)
  assert rerun.returncode == 0, rerun.stderr
  _assert_same_run(tmp_path, reference)
  run = _result(tmp_path)["run"]
  assert run["status"] == "budget_exhausted" and run["preemption_count"] == 1
  assert run["resumed_from_step"] == stopped


def test_corrupted_latest_checkpoint_is_skipped_for_the_previous(tmp_path, reference):
  workdir = tmp_path / "w"
  shutil.copytree(reference, workdir)
  *_, previous, latest = _steps(workdir)
  for root, _, files in os.walk(workdir / "checkpoints" / str(latest) / "state"):
    for name in files:  # truncate every file of the latest state to half its size
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
  out = run_main(SPEC, f"--workdir={workdir}", *ARGS)
  assert out.returncode == 0, out.stderr
  warnings = [l for l in out.stderr.splitlines() if l.startswith("memobench: warning:")]
  assert len(warnings) == 1 and f"checkpoint step {latest}" in warnings[0], out.stderr
  assert f"resumed from the checkpoint of step {previous}" in out.stdout
  _assert_same_run(workdir, reference)


def _assert_one_line_error(out, needle):
  assert out.returncode == 1, (out.stdout, out.stderr)
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_workdir_of_another_spec_is_refused(tmp_path, reference):
  workdir = tmp_path / "w"
  shutil.copytree(reference, workdir)
  other = ["--spec=mnist5k_clean", f"--workdir={workdir}", *ARGS]
  _assert_one_line_error(run_main(*other), "holds a result of another spec")
  # Killed before its first result.json: the checkpoints still say whose they are.
  (workdir / "result.json").unlink()
  _assert_one_line_error(run_main(*other), "belong to another run")
  # Another seed of the same spec has the same hash but must not resume either.
  _assert_one_line_error(run_main(SPEC, f"--workdir={workdir}", *ARGS, "--seed=1"),
                         "belong to another run")


# --------------------------------------------------------------------------
# Integrity of every checkpointed byte (issue 27, item 5), on a tiny state in-process
# --------------------------------------------------------------------------


def _tiny_checkpoints(workdir, steps=(1, 2, 3)):
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(7)}
  ckpt = checkpoint.Checkpointer(str(workdir), 1, identity={"spec_hash": "0" * 16, "seed": 0})
  for step in steps:
    ckpt.save(step, state, {"saved_at": step, "steps_to_fit": 143, "loss": float("nan")})
  ckpt.close()
  return state


def _restore(workdir, state):
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  ckpt = checkpoint.Checkpointer(str(workdir), 1, identity={"spec_hash": "0" * 16, "seed": 0})
  try:
    restored = checkpoint.restore_or_none(ckpt, checkpoint.abstract_like(state))
  finally:
    ckpt.close()
  return None if restored is None else restored[1]


def _edit(path, old, new):
  text = path.read_text()
  assert old in text, text
  path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("damage,reason", [
    # The reproduction: one flipped digit in the loop record.
    (lambda d: _edit(d / "loop" / "metadata", "143", "153"),
     "sha256 of its loop record differs from the one saved with it"),
    # Damage to the marker that says the checkpoint was written with digests.
    (lambda d: _edit(d / "loop" / "metadata", '"integrity"', '"integrjty"'),
     "sha256 of its loop record differs"),
    # Damage to the digests themselves, to their key, or their item removed.
    (lambda d: _edit(d / "integrity" / "metadata", '"state": "', '"state": "0'),
     "its integrity record is damaged"),
    (lambda d: _edit(d / "integrity" / "metadata", '"digests"', '"digesus"'),
     "its integrity record is damaged"),
    (lambda d: shutil.rmtree(d / "integrity"), "integrity"),
])
def test_damage_to_the_loop_record_or_the_digests_is_detected(tmp_path, capfd, damage, reason):
  state = _tiny_checkpoints(tmp_path)
  damage(tmp_path / "checkpoints" / "3")
  loop = _restore(tmp_path, state)
  assert loop["saved_at"] == 2 and loop["steps_to_fit"] == 143
  warnings = [l for l in capfd.readouterr().err.splitlines() if "memobench: warning" in l]
  assert len(warnings) == 1 and "checkpoint step 3" in warnings[0], warnings
  assert reason in warnings[0] and "trying the previous one" in warnings[0]


def test_undamaged_and_pre_integrity_checkpoints_restore(tmp_path, capfd):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  state = _tiny_checkpoints(tmp_path / "new")
  assert _restore(tmp_path / "new", state)["saved_at"] == 3
  # A checkpoint in the format before the integrity item: digests inside the loop record.
  with ocp.CheckpointManager(str(tmp_path / "old" / "checkpoints")) as manager:
    loop = {"saved_at": 5, "identity": {"spec_hash": "0" * 16, "seed": 0},
            "has_tracker": False, "digests": {"state": checkpoint.tree_digest(state)}}
    manager.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            loop=ocp.args.JsonSave(loop)))
  assert _restore(tmp_path / "old", state)["saved_at"] == 5
  assert "warning" not in capfd.readouterr().err
