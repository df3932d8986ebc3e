"""Launchers: the SLURM array wrapper (shard mapping, time-limit requeue) and the
Kubernetes Indexed Job, run locally (issue 27, item 16 and "Sweeps on the schedulers
people use"). SLURM is not installed here: its environment is set by hand and
`scontrol` is a stub on PATH that records its arguments."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from memobench import leaderboard
from tests.conftest import REPO

SLURM_ARRAY = os.path.join(REPO, "launch", "slurm_array.sh")
K8S_JOB = os.path.join(REPO, "launch", "k8s_indexed_job.yaml")

_STUB_PYTHON = """#!/usr/bin/env bash
echo "$@" > "$STUB_OUT"
if [[ -n "${STUB_WAIT:-}" ]]; then
  trap 'echo term >> "$STUB_OUT"; exit 143' TERM
  touch "$STUB_OUT.started"
  while :; do sleep 0.05; done
fi
"""
_STUB_SCONTROL = """#!/usr/bin/env bash
echo "$@" >> "$SCONTROL_OUT"
"""


@pytest.fixture
def stubs(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name, text in (("python_stub", _STUB_PYTHON), ("scontrol", _STUB_SCONTROL)):
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)
  env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SHARD_"))}
  env.update(PATH=f"{bin_dir}:{env['PATH']}", PYTHON=str(bin_dir / "python_stub"),
             STUB_OUT=str(tmp_path / "args"), SCONTROL_OUT=str(tmp_path / "scontrol"))
  return tmp_path, env


def _array(**ids):
  names = {"id": "SLURM_ARRAY_TASK_ID", "min": "SLURM_ARRAY_TASK_MIN",
           "max": "SLURM_ARRAY_TASK_MAX", "step": "SLURM_ARRAY_TASK_STEP",
           "count": "SLURM_ARRAY_TASK_COUNT"}
  return {names.get(k, k): str(v) for k, v in ids.items()}


@pytest.mark.parametrize("env,shard", [
    (_array(id=1, min=1, max=8, step=1, count=8), "0/8"),     # --array=1-8: shard 0 runs
    (_array(id=8, min=1, max=8, step=1, count=8), "7/8"),
    (_array(id=6, min=0, max=14, step=2, count=8), "3/8"),    # --array=0-14:2
    (_array(id=9, min=3, max=9, step=3, count=3), "2/3"),     # --array=3-9:3
    (_array(id=5, min=0, max=7, count=8), "5/8"),             # no STEP variable: step 1
    ({"SHARD_INDEX": "1", "SHARD_COUNT": "4", **_array(id=9, min=0, max=9)}, "1/4"),
])
def test_slurm_array_maps_its_task_to_a_shard(stubs, env, shard):
  tmp_path, base = stubs
  out = subprocess.run([SLURM_ARRAY, "-m", "memobench.main", "--seeds=8"], env={**base, **env},
                       capture_output=True, text=True, timeout=30)
  assert out.returncode == 0, out.stderr
  assert (tmp_path / "args").read_text().split() == [
      "-m", "memobench.main", "--seeds=8", f"--shard={shard}"]


@pytest.mark.parametrize("env,needle", [
    (_array(id=3, min=1, max=8, count=3), "not one range"),   # --array=1,3,8
    (_array(id=4, min=0, max=8, step=2, count=4), "not one range"),  # --array=0-4:2,8
    ({"SHARD_INDEX": "5", "SHARD_COUNT": "4"}, "shard index 5 is not below the count 4"),
    ({"SHARD_INDEX": "x", "SHARD_COUNT": "4"}, "must both be set to integers"),
    ({}, "usage: sbatch --array=0-N"),
])
def test_slurm_array_refuses_what_it_cannot_map_in_one_line(stubs, env, needle):
  tmp_path, base = stubs
  out = subprocess.run([SLURM_ARRAY, "x.py"], env={**base, **env}, capture_output=True,
                       text=True, timeout=30)
  assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
  assert needle in out.stderr and not (tmp_path / "args").exists()


def _term_after_start(tmp_path, env):
  proc = subprocess.Popen([SLURM_ARRAY, "-m", "memobench.main"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for _ in range(600):
    if (tmp_path / "args.started").exists():
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)  # what --signal=B:TERM@300 sends the batch shell
  _, err = proc.communicate(timeout=30)
  return proc.returncode, err


def test_slurm_time_limit_signal_checkpoints_then_requeues_the_task(stubs):
  tmp_path, base = stubs
  env = {**base, **_array(id=3, min=0, max=7, step=1, count=8), "STUB_WAIT": "1",
         "SLURM_ARRAY_JOB_ID": "77", "SLURM_JOB_ID": "80",
         "SLURM_JOB_END_TIME": str(int(time.time()) + 290)}
  rc, err = _term_after_start(tmp_path, env)
  assert rc == 143, err  # the run's own exit: checkpointed, status preempted
  assert (tmp_path / "args").read_text().splitlines()[-1] == "term"  # the run got the SIGTERM
  assert (tmp_path / "scontrol").read_text() == "requeue 77_3\n"
  assert "time limit in" in err and "requeueing 77_3" in err


def test_slurm_term_that_is_not_the_time_limit_is_not_requeued(stubs):
  tmp_path, base = stubs
  env = {**base, **_array(id=3, min=0, max=7, step=1, count=8), "STUB_WAIT": "1",
         "SLURM_ARRAY_JOB_ID": "77", "SLURM_JOB_ID": "80",
         "SLURM_JOB_END_TIME": str(int(time.time()) + 10_000)}  # scancel, hours before it
  rc, _ = _term_after_start(tmp_path, env)
  assert rc == 143 and (tmp_path / "args").read_text().splitlines()[-1] == "term"
  assert not (tmp_path / "scontrol").exists()


def test_slurm_script_asks_for_the_time_limit_signal_it_handles():
  text = open(SLURM_ARRAY).read()
  (lead,) = re.findall(r"^#SBATCH --signal=B:TERM@(\d+)$", text, re.M)
  assert f"SIGNAL_LEAD=${{MEMOBENCH_SIGNAL_LEAD:-{lead}}}" in text
  assert re.search(r"^#SBATCH --requeue$", text, re.M)


# --------------------------------------------------------------------------
# Kubernetes Indexed Job
# --------------------------------------------------------------------------

TINY = ["--set", "budget.max_steps=8", "--set", "budget.eval_every_steps=4",
        "--set", "analysis.effective_rank=false"]


def test_k8s_indexed_job_runs_its_command_for_two_indices_into_one_folder(tmp_path):
  with open(K8S_JOB) as f:
    job = yaml.safe_load(f)
  spec = job["spec"]
  pod = spec["template"]["spec"]
  assert (job["apiVersion"], job["kind"], spec["completionMode"]) == ("batch/v1", "Job", "Indexed")
  assert pod["restartPolicy"] == "Never" and spec["backoffLimitPerIndex"] >= 1
  (container,) = pod["containers"]
  env = {e["name"]: e for e in container["env"]}
  assert env["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
      "metadata.annotations['batch.kubernetes.io/job-completion-index']")
  count = int(env["SHARD_COUNT"]["value"])
  assert count == spec["completions"] == spec["parallelism"] == 2
  (mount,) = container["volumeMounts"]
  (volume,) = pod["volumes"]
  assert mount["name"] == volume["name"] and "persistentVolumeClaim" in volume
  root = mount["mountPath"]

  def expand(arg, index):
    """Kubernetes' $(VAR) expansion, with the shared volume at tmp_path."""
    values = {k: str(index) if k == "SHARD_INDEX" else e.get("value", "")
              for k, e in env.items()}
    arg = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg)
    return arg.replace(root, str(tmp_path))

  command = container["command"] + container["args"]
  assert command[0] == "python" and any(a.startswith("--shard=") for a in command)
  procs = []
  for index in range(count):  # the pods of an Indexed Job run at once
    argv = [sys.executable] + [expand(a, index) for a in command[1:]] + TINY
    proc_env = {**os.environ, "TFDS_DATA_DIR": expand(env["TFDS_DATA_DIR"]["value"], index)}
    procs.append(subprocess.Popen(argv, cwd=REPO, env=proc_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  workdir = next(a for a in command if a.startswith("--workdir=")).split("=", 1)[1]
  folder = expand(workdir, 0)
  seeds = sorted(d for d in os.listdir(folder) if d.startswith("seed"))
  assert seeds == ["seed0", "seed1"]
  for index, seed in enumerate(seeds):  # each index ran its own seed, once
    with open(os.path.join(folder, seed, "result.json")) as f:
      assert json.load(f)["run"]["seed"] == index
    assert f"seed {index})" in outs[index][0] and f"seed {1 - index})" not in outs[index][0]
  board = leaderboard.build([folder], warn=lambda m: None)
  assert [e["n_seeds"] for e in board["ranked"] + board["unranked"]] == [2]
