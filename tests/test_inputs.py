"""Bad input is refused in one line (issue "Nothing wrong, nothing lost", items 4, 6, 10, 11).

Seeds alias modulo 2**32 (threefry's key), so a seed outside [0, 2**32) would
train another seed's run under its own name; non-finite optimizer fields would
train and record `diverged`; a workdir holding another seed's result would be
overwritten silently (the spec hash leaves the seed out).
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from memobench import catalogue, results, specs, workload
from tests.conftest import REPO


@pytest.mark.parametrize("seed,ok", [(0, True), (2 ** 32 - 1, True), (2 ** 32, False),
                                     (2 ** 63, False), (-1, False)])
def test_seeds_outside_the_keys_range_are_refused(seed, ok):
  spec = dataclasses.replace(catalogue.get("digits_clean"), seed=seed)
  if ok:
    workload.validate(spec)
  else:
    with pytest.raises(specs.SpecError, match=r"seed must be in \[0, 2\*\*32\)"):
      workload.validate(spec)


@pytest.mark.parametrize("assignment,needle", [
    ("optimizer.lr=nan", "optimizer.lr must be positive and finite"),
    ("optimizer.lr=inf", "optimizer.lr must be positive and finite"),
    ("optimizer.weight_decay=nan", "optimizer.weight_decay must be finite"),
    ("optimizer.momentum=-5", "optimizer.momentum must be in [0, 1)"),
    ("optimizer.momentum=nan", "optimizer.momentum must be in [0, 1)"),
    ("model.dropout=nan", "model.dropout must be in [0, 1)"),
    ("budget.fit_threshold=nan", "budget.fit_threshold must be in (0, 1]"),
    ("corruption.level=nan", "corruption.level"),
])
def test_non_finite_fields_are_refused(assignment, needle):
  spec = catalogue.get("digits_partial20")
  with pytest.raises(specs.SpecError) as e:
    workload.validate(specs.with_overrides(spec, [assignment])[0])
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_workdir_holding_another_seeds_result_is_refused(tmp_path):
  spec = catalogue.get("digits_clean")
  h = specs.spec_hash(spec)
  (tmp_path / results.RESULT_FILE).write_text(json.dumps(
      {"spec": {"hash": h}, "run": {"seed": 1}}))
  results.prepare_workdir(str(tmp_path), h, overwrite=False, seed=1)  # the same run: fine
  with pytest.raises(results.WorkdirError, match="holds the result of seed 1 .this run: seed 0"):
    results.prepare_workdir(str(tmp_path), h, overwrite=False, seed=0)
  results.prepare_workdir(str(tmp_path), h, overwrite=True, seed=0)


def _module(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        timeout=120, cwd=REPO)


@pytest.mark.parametrize("module", ["memobench.main", "memobench.memorization",
                                    "memobench.bench"])
def test_help_is_not_an_error(module):
  proc = _module(module, "--help")
  assert proc.returncode == 0 and "--" in proc.stdout, proc.stderr[-500:]


@pytest.mark.parametrize("module,args,needle", [
    ("memobench.main", ["--checkpoint_every=-1"], "--checkpoint_every=-1"),
    ("memobench.main", ["--seed=4294967296", "--spec=digits_clean"], "seed must be in"),
    ("memobench.main", ["--seeds=100000"], "--seeds=100000"),
    ("memobench.memorization", ["--models=abc"], "--models=abc"),
    ("memobench.memorization", ["--seed=-3"], "seed must be in"),
])
def test_bad_command_lines_are_one_line_and_exit_2(module, args, needle):
  proc = _module(module, *args)
  assert proc.returncode == 2, proc.stderr[-800:]
  assert proc.stderr.strip().count("\n") == 0 and needle in proc.stderr
  assert proc.stderr.startswith(f"{module.replace('.main', '')}: error: ")


def test_a_result_json_that_is_not_a_file_is_refused_even_with_overwrite(tmp_path):
  (tmp_path / results.RESULT_FILE).mkdir()
  spec = catalogue.get("digits_clean")
  with pytest.raises(results.WorkdirError, match="is not a regular file"):
    results.prepare_workdir(str(tmp_path), specs.spec_hash(spec), overwrite=True, seed=0)


def test_an_experiment_whose_workdir_is_a_file_fails_in_one_line(tmp_path):
  target = tmp_path / "a_file"
  target.write_text("")
  proc = subprocess.run([sys.executable, "experiments/zhang2017_fig1.py", "--quick",
                         f"--workdir={target}"], capture_output=True, text=True, timeout=120,
                        cwd=REPO)
  assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0, proc.stderr[-800:]
  assert "cannot create workdir" in proc.stderr


def test_a_second_run_on_a_workdir_in_use_is_refused_in_one_line(tmp_path):
  workdir = tmp_path / "w"
  args = [sys.executable, "-m", "memobench.main", "--spec=digits_randlabels",
          f"--workdir={workdir}", "--checkpoint_every=0", "--compilation_cache_dir="]
  first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
  try:
    lock = workdir / results.LOCK_FILE
    for _ in range(600):  # until the first run holds the lock (JAX start-up: seconds)
      if lock.exists() and lock.read_text().startswith("pid"):
        break
      if first.poll() is not None:
        pytest.fail("the first run ended before taking the lock: " + first.stderr.read())
      import time  # pylint: disable=import-outside-toplevel
      time.sleep(0.1)
    second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr[-800:]
    assert second.stderr.strip().count("\n") == 0
    assert f"is in use by pid {first.pid} on " in second.stderr
  finally:
    first.kill()
    first.wait()
  # The holder is gone (killed): the lock went with it, and a rerun may start.
  results.prepare_workdir(str(workdir), "x", overwrite=True, seed=0, lock=True).release()


def test_an_unusable_checkpoint_folder_is_refused_before_training(tmp_path):
  (tmp_path / "checkpoints").write_text("not a folder")
  proc = subprocess.run([sys.executable, "-m", "memobench.main", "--spec=digits_clean",
                         f"--workdir={tmp_path}", "--compilation_cache_dir="],
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0, proc.stderr[-800:]
  assert "checkpoints is not writable" in proc.stderr and "step" not in proc.stdout


def _largest_file(folder):
  files = [p for p in folder.rglob("*") if p.is_file()]
  return max(files, key=lambda p: p.stat().st_size)


def test_a_checkpoint_with_damaged_array_bytes_is_detected_and_skipped(tmp_path):
  """Same-size damage (8 bytes overwritten): orbax restores it; the sha256 digests do not."""
  args = ["--spec=digits_partial40", "--set", "budget.max_epochs=4",
          "--set", "budget.eval_every_steps=11", "--set", "analysis.effective_rank=false",
          "--checkpoint_every=11", "--compilation_cache_dir=", f"--workdir={tmp_path}"]
  proc = subprocess.run([sys.executable, "-m", "memobench.main", *args], capture_output=True,
                        text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-800:]
  want = json.loads((tmp_path / results.RESULT_FILE).read_text())["metrics"]
  (tmp_path / results.RESULT_FILE).unlink()
  latest = max((p for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()),
               key=lambda p: int(p.name))
  target = _largest_file(latest / "state")
  data = bytearray(target.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 8] = bytes(255 - b for b in data[middle:middle + 8])
  target.write_bytes(bytes(data))
  proc = subprocess.run([sys.executable, "-m", "memobench.main", *args], capture_output=True,
                        text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-800:]
  assert f"checkpoint step {latest.name}" in proc.stderr and "does not restore" in proc.stderr
  got = json.loads((tmp_path / results.RESULT_FILE).read_text())["metrics"]
  assert got == want  # resumed from the previous checkpoint: exactly the same run


def test_seeds_shard_runs_only_its_share(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "memobench.main", "--spec=digits_clean",
                         "--seeds=3", "--shard=1/2", "--set", "budget.max_steps=22",
                         "--checkpoint_every=0", "--compilation_cache_dir=",
                         f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=300,
                        cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-800:]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["seed1"]
  assert (tmp_path / "seed1" / results.RESULT_FILE).exists()


@pytest.mark.parametrize("module", ["memobench.prepare", "memobench.leaderboard"])
def test_help_is_not_an_error_either(module):
  proc = _module(module, "--help")
  assert proc.returncode == 0 and "--" in proc.stdout, proc.stderr[-500:]


def test_prepare_refuses_a_bad_flag_in_one_line():
  proc = _module("memobench.prepare", "--dataset=nope")
  assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr[-800:]
  assert proc.stderr.startswith("memobench.prepare: error: ") and "nope" in proc.stderr


@pytest.fixture
def small_disk(tmp_path):
  """A mounted tmpfs of a given size: a disk that really fills up (needs root)."""
  mounts = []

  def make(size):
    folder = tmp_path / f"disk{len(mounts)}"
    folder.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
      pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:100]}): needs root")
    mounts.append(folder)
    return folder
  yield make
  for folder in mounts:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_mid_run_stops_checkpointing_in_one_line_and_keeps_the_result(small_disk):
  # ~300 KB per checkpoint of this model: the second or third save fills 700 KB.
  workdir = small_disk("700k") / "run"
  proc = subprocess.run([sys.executable, "-m", "memobench.main", "--spec=digits_partial40",
                         f"--workdir={workdir}", "--set", "budget.max_epochs=6",
                         "--set", "budget.eval_every_steps=11", "--checkpoint_every=11"],
                        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-2000:]
  # memobench says it in one line. (Depending on when the disk fills, orbax's
  # asyncio workers may still print "Event loop is closed" tracebacks at exit, in
  # orbax's own frames; none comes from memobench.)
  lines = [line for line in proc.stderr.splitlines() if "memobench" in line]
  assert len(lines) == 1 and "checkpointing failed by step" in lines[0], proc.stderr[-2000:]
  assert "No space left on device" in lines[0] and "memobench/" not in proc.stderr
  result = json.loads((workdir / results.RESULT_FILE).read_text())
  assert result["run"]["status"] == "budget_exhausted"
  assert "No space left on device" in result["run"]["checkpoint"]["failed"]
  # The half-written save was removed: only whole checkpoints are left.
  assert all(name.isdigit() for name in (workdir / "checkpoints").iterdir() for name in [name.name])


def test_a_disk_too_full_for_the_result_is_one_line(small_disk):
  workdir = small_disk("24k") / "run"
  proc = subprocess.run([sys.executable, "-m", "memobench.main", "--spec=digits_partial40",
                         f"--workdir={workdir}", "--set", "budget.max_epochs=1",
                         "--checkpoint_every=0"], capture_output=True, text=True, timeout=300,
                        cwd=REPO)
  assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0, proc.stderr[-2000:]
  assert proc.stderr.startswith("memobench: error: No space left on device (")
  assert "rerun the same command" in proc.stderr


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
  target = tmp_path / "leaderboard.json"
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  dead_pid = int(dead.stdout)  # exited: its pid names no live process
  prefix = results._temp_prefix()  # pylint: disable=protected-access
  stale = tmp_path / f"{prefix}{dead_pid}-abc123leaderboard.json"
  live = tmp_path / f"{prefix}{os.getppid()}-def456leaderboard.json"  # a live writer
  elsewhere = tmp_path / f".tmp-otherhost-{dead_pid}-ghi789leaderboard.json"
  other_file = tmp_path / f"{prefix}{dead_pid}-jkl000result.json"
  for f in (stale, live, elsewhere, other_file):
    f.write_text("{partial")
  results.write_json_atomic(str(target), {"ok": 1})
  assert json.loads(target.read_text()) == {"ok": 1}
  assert not stale.exists()
  assert live.exists() and elsewhere.exists() and other_file.exists()


# --------------------------------------------------------------------------
# The workdir lock file (issue 27, item 15)
# --------------------------------------------------------------------------


def test_a_lock_file_that_is_a_symlink_is_never_followed(tmp_path):
  target = tmp_path / "precious.txt"
  target.write_text("keep me\n")
  workdir = tmp_path / "w"
  workdir.mkdir()
  os.symlink(target, workdir / results.LOCK_FILE)
  with pytest.raises(results.WorkdirError, match="is a symbolic link, not memobench's lock"):
    results.prepare_workdir(str(workdir), "x", overwrite=False, seed=0, lock=True)
  assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir])
def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path, make):
  make(tmp_path / results.LOCK_FILE)
  with pytest.raises(results.WorkdirError) as e:
    results.prepare_workdir(str(tmp_path), "x", overwrite=False, seed=0, lock=True)
  assert ("not a regular file" in str(e.value) or "cannot open the lock file" in str(e.value))


def test_only_ewouldblock_means_in_use(tmp_path, monkeypatch):
  import errno  # pylint: disable=import-outside-toplevel
  import fcntl  # pylint: disable=import-outside-toplevel
  held = results.prepare_workdir(str(tmp_path), "x", overwrite=False, seed=0, lock=True)
  with pytest.raises(results.WorkdirError, match=f"is in use by pid {os.getpid()} on "):
    results.prepare_workdir(str(tmp_path), "x", overwrite=False, seed=0, lock=True)
  held.release()
  real_flock = fcntl.flock
  for code, needle in ((errno.ENOSYS, "does not support flock (Function not implemented)"),
                       (errno.ENOLCK, "does not support flock (No locks available)"),
                       (errno.EIO, "cannot lock")):
    def flock(f, op, code=code):
      raise OSError(code, os.strerror(code))
    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(results.WorkdirError) as e:
      results.prepare_workdir(str(tmp_path), "x", overwrite=False, seed=0, lock=True)
    message = str(e.value)
    assert needle in message and "in use" not in message and "\n" not in message
    if code != errno.EIO:  # names the filesystem and the ways around it
      assert f"its filesystem ({results.filesystem_of(str(tmp_path))})" in message
      assert results.filesystem_of(str(tmp_path)) != "unknown"
      assert "-o flock" in message and f"{results.LOCK_ENV}=0" in message
  monkeypatch.setattr(fcntl, "flock", real_flock)
  monkeypatch.setenv(results.LOCK_ENV, "0")  # the way around it when the mount is fixed
  assert results.prepare_workdir(str(tmp_path), "x", overwrite=False, seed=0, lock=True) is None


# --------------------------------------------------------------------------
# Bounds up front (issue 27, item 8: the library's part)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("iters,needle", [
    (10 ** 9, "analysis.sharpness_iters must be at most 1000 Lanczos steps, got 1000000000"),
    (1001, "at most 1000"), (-1, "analysis.sharpness_iters must be >= 0")])
def test_sharpness_iterations_are_bounded(iters, needle):
  spec = catalogue.get("digits_clean")
  with pytest.raises(specs.SpecError) as e:
    workload.validate(specs.with_overrides(spec, [f"analysis.sharpness_iters={iters}"])[0])
  assert needle in str(e.value) and "\n" not in str(e.value)
  workload.validate(specs.with_overrides(spec, ["analysis.sharpness_iters=1000"])[0])


@pytest.mark.parametrize("first,count,needle", [
    (0, 4294967290, "--seeds must be an integer in [1, 10000], got 4294967290"),
    (0, 0, "--seeds must be an integer in [1, 10000], got 0"),
    (2 ** 32 - 2, 3, "--seeds=3 from seed 4294967294 passes the largest seed 2**32 - 1"),
    (-1, 2, "seed must be in [0, 2**32), got -1"),
    (10 ** 20, 1, "seed must be in [0, 2**32)"),
])
def test_seed_counts_are_bounded_before_any_job_list(first, count, needle):
  with pytest.raises(specs.SpecError) as e:
    specs.check_seeds(first, count)
  assert str(e.value) == needle or needle in str(e.value)
  specs.check_seeds(0, specs.MAX_SEEDS)
  specs.check_seeds(2 ** 32 - 3, 3)


@pytest.mark.parametrize("field,bad", [
    ("y_train", lambda d: d.y_train[:-1]),                 # a label short
    ("y_test", lambda d: d.y_test.astype("float32")),      # labels that are not integers
])
def test_the_training_loop_checks_the_data_at_its_boundary(field, bad):
  import chex  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      "dataset.train_size=100", "budget.max_steps=1", "budget.batch_size=50",
      "analysis.effective_rank=false", "analysis.dynamics=false"])
  resolved = workload.resolve(spec)
  data = resolved.corrupted_data(0)
  broken = dataclasses.replace(data, **{field: bad(data)})
  with pytest.raises(AssertionError, match=r"\[Chex\]"):
    loop.train(resolved, broken, log=lambda _: None)
  chex.assert_trees_all_equal(loop.train(resolved, data, log=lambda _: None).data.y_train,
                              data.y_train)
