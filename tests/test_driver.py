"""experiments/driver.py: resume, changed knobs, shards, staged cells, preemption, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments import cells, driver, knobs
from memobench import signals
from tests import driver_fixture as fixture
from tests.conftest import REPO


def run(workdir, config=fixture.Config(), shard=None, resume=True, lines=None):
  options = driver.Options(str(workdir), resume=resume, shard=shard,
                           log=(lines.append if lines is not None else lambda m: None))
  return driver.run_experiment(fixture.EXPERIMENT, config, options)


@pytest.fixture
def computed(tmp_path, monkeypatch):
  path = tmp_path / "computed.log"
  monkeypatch.setenv("DRIVER_FIXTURE_LOG", str(path))
  return lambda: path.read_text().split() if path.exists() else []


def test_a_rerun_keeps_every_record_and_a_changed_knob_recomputes_exactly_its_cells(
    tmp_path, computed):
  summary = run(tmp_path)
  assert summary == {"total": 0 + 1 + 2 + 0.0, "quick": False}
  assert sorted(computed()) == ["a0", "a1", "a2", "b", "total"]
  assert json.loads((tmp_path / "summary.json").read_text()) == summary
  # A rerun computes nothing.
  lines = []
  run(tmp_path, lines=lines)
  assert len(computed()) == 5 and sum("kept existing record" in m for m in lines) == 5
  # `offset` is read by b only: b and total (downstream of it) are recomputed, no a-cell.
  assert run(tmp_path, fixture.Config(offset=10.0))["total"] == 13.0
  assert computed()[5:] == ["b", "total"]
  # `scale` is read by every a-cell.
  assert run(tmp_path, fixture.Config(scale=2.0))["total"] == 6.0
  assert sorted(computed()[7:]) == ["a0", "a1", "a2", "b", "total"]
  # Back to the first config: its records were replaced, so it is computed again
  # (a record is kept only for the config it was computed with, never because it exists).
  assert run(tmp_path)["total"] == 3.0
  # NaN in a record reads back as null (as JSON stores it); artifacts travel with the record.
  record = json.loads((tmp_path / "cells" / "a1" / "record.json").read_text())
  assert record["record"] == {"value": 1.0, "nan": None} and record["config"] == {
      "i": 1, "scale": 1.0, "sleep": 0.0}
  assert (tmp_path / "cells" / "a1" / "artifact.txt").read_text() == "1"
  # --no_resume recomputes everything.
  before = len(computed())
  run(tmp_path, resume=False)
  assert len(computed()) == before + 5


def test_three_shards_compute_each_cell_once_and_the_last_writes_the_summary(tmp_path, computed):
  """Cells dealt round-robin: a0, b -> 0; a1, total -> 1; a2 -> 2. The staged cell (total)
  waits for its inputs and is computed by whichever worker first finds them."""
  config = fixture.Config(n=3)
  lines = []
  assert run(tmp_path, config, shard=(0, 3), lines=lines) is None
  assert computed() == ["a0", "b"]
  assert any("total: waits for a1, a2" in m for m in lines)
  assert any("shard 0/3 done; 2 of 5 cells have records" in m for m in lines)
  assert run(tmp_path, config, shard=(1, 3)) is None
  assert computed() == ["a0", "b", "a1"]
  summary = run(tmp_path, config, shard=(2, 3))  # the last: computes a2, then total
  assert computed() == ["a0", "b", "a1", "a2", "total"] and summary["total"] == 3.0
  assert (tmp_path / "summary.json").exists()
  # Any later worker finds every record and computes nothing.
  assert run(tmp_path, config, shard=(0, 3))["total"] == 3.0 and len(computed()) == 5


def test_shards_are_disjoint_and_complete_for_any_count(tmp_path):
  grid = fixture.grid(fixture.Config(n=7))
  for count in (1, 2, 3, 5, 9):
    owners = {}
    for index in range(count):
      r = driver.Run(fixture.EXPERIMENT, fixture.Config(n=7),
                     driver.Options(str(tmp_path), shard=(index, count)))
      for key in r.mine:
        owners.setdefault(key, []).append(index)
    assert sorted(owners) == sorted(c.key for c in grid)
    assert all(len(v) == 1 for v in owners.values())


def test_a_cell_being_computed_elsewhere_is_not_computed_twice(tmp_path, computed):
  store = cells.Store(str(tmp_path))
  held = cells.Claim(store, "b")
  assert held.acquire()
  lines = []
  try:
    assert run(tmp_path, lines=lines) is None  # b is another worker's now: no summary yet
  finally:
    held.release()
  assert "b" not in computed() and any("b: being computed by another worker" in m
                                       for m in lines)
  assert run(tmp_path)["total"] == 3.0


def test_a_spec_cells_seeds_stay_on_one_worker_and_train_vmapped(tmp_path, computed):
  """A 2-seed spec cell under 3 shards: its owner trains both seeds in one program."""
  config = fixture.Config(n=1, spec_seeds=2)  # cells a0, b, total, digits: digits is shard 0's
  assert run(tmp_path, config, shard=(1, 3)) is None
  assert not (tmp_path / "runs").exists()
  assert run(tmp_path, config, shard=(2, 3)) is None
  summary = run(tmp_path, config, shard=(0, 3))
  assert summary["vmapped_seeds"] == [[0, 1], [0, 1]]
  for seed in (0, 1):
    result = json.loads((tmp_path / "runs" / "digits" / f"seed{seed}" / "result.json").read_text())
    assert result["run"]["seed"] == seed and result["spec"]["nonstandard"]
  assert (tmp_path / "leaderboard.json").exists() and (tmp_path / "leaderboard.html").exists()


def test_a_workdir_of_another_experiment_is_refused(tmp_path):
  (tmp_path / driver.IDENTITY_FILE).write_text(json.dumps({"experiment": "keskar2017"}))
  with pytest.raises(driver.Failure, match="holds the results of experiment 'keskar2017'"):
    run(tmp_path)
  other = tmp_path / "old"  # older than experiment.json: its summary names its experiment
  other.mkdir()
  (other / "summary.json").write_text(json.dumps({"experiment": "zhang2017_fig1"}))
  with pytest.raises(driver.Failure, match="experiment 'zhang2017_fig1', not 'driver_fixture'"):
    run(other)
  (other / "summary.json").write_text("[1, 2")
  with pytest.raises(driver.Failure, match="not an experiment's file"):
    run(other)


def test_knobs_are_typed_and_bounded():
  config = fixture.Config()
  assert knobs.with_overrides(config, ["n=4", "scale=0.5"]) == fixture.Config(n=4, scale=0.5)
  for bad, message in [("n=0", r"n=0: expected in \[1, 100\]"), ("n=x", "expected an integer"),
                       ("scale=nan", "expected a finite number"),
                       ("scale=inf", "expected a finite number"),
                       ("sleep=-1", "expected >= 0"), ("offest=1", "did you mean offset"),
                       ("n", "expected knob=value")]:
    with pytest.raises(knobs.KnobError, match=message):
      knobs.with_overrides(config, [bad])
  assert knobs.parse("0.1,1,2", tuple[float, ...], "lrs") == (0.1, 1.0, 2.0)
  with pytest.raises(knobs.KnobError, match="at least one"):
    knobs.parse("", tuple[float, ...], "lrs")
  assert knobs.parse("none", int | None, "k") is None
  # A large integer bound reads as typed, not as 4.29497e+09.
  from experiments import memorization_estimators
  with pytest.raises(knobs.KnobError, match=r"seed=4294967296: expected in \[0, 4294967295\]"):
    knobs.with_overrides(memorization_estimators.Config(), ["seed=4294967296"])


def test_a_grid_that_needs_a_later_cell_is_refused():
  grid = [cells.ComputedCell("x", fixture.compute_b, {}, needs=("y",)),
          cells.ComputedCell("y", fixture.compute_b, {})]
  with pytest.raises(ValueError, match="needs"):
    driver.check_grid(grid)


def _command(workdir, *args):
  return [sys.executable, "-m", "tests.driver_fixture", f"--workdir={workdir}", *args]


def _env(log):
  return {**os.environ, "DRIVER_FIXTURE_LOG": str(log), "PYTHONPATH": REPO}


@pytest.mark.parametrize("args,needle,code", [
    (["--n=0"], "n=0: expected in [1, 100]", 2),
    (["--set", "scale=nan"], "scale=nan: expected a finite number", 2),
    (["--bogus=1"], "unrecognized arguments: --bogus=1", 2),
    (["--shard=3/3"], "--shard=3/3: expected INDEX/COUNT", 2),
])
def test_bad_input_is_one_line(tmp_path, args, needle, code):
  out = subprocess.run(_command(tmp_path / "w", *args), capture_output=True, text=True,
                       timeout=120, cwd=REPO, env=_env(tmp_path / "log"))
  assert out.returncode == code and needle in out.stderr, out.stderr
  assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_three_workers_started_at_once_compute_each_cell_once_and_one_writes_the_summary(
    tmp_path):
  """Issue 27 item 11: workers that start together each read the records again after their
  own cells, so the last to finish finds them all and writes the summary."""
  log = tmp_path / "log"
  workers = [subprocess.Popen(_command(tmp_path / "w", "--sleep=1", "--n=5", f"--shard={i}/3"),
                              cwd=REPO, env=_env(log), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
  outs = [w.communicate(timeout=120) for w in workers]
  assert all(w.returncode == 0 for w in workers), [err for _, err in outs]
  computed = log.read_text().split()
  assert sorted(computed) == ["a0", "a1", "a2", "a3", "a4", "b", "total"]
  assert json.loads((tmp_path / "w" / "summary.json").read_text())["total"] == 10.0
  assert sum(out.strip() == "total 10.0" for out, _ in outs) >= 1


def test_resume_after_a_kill_computes_only_what_is_missing(tmp_path):
  """SIGKILL between cells loses nothing saved; the rerun computes only the rest."""
  log = tmp_path / "log"
  proc = subprocess.Popen(_command(tmp_path / "w", "--sleep=1.5", "--n=4"), cwd=REPO,
                          env=_env(log), stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while time.time() < deadline and not (tmp_path / "w" / "cells" / "a1" / "record.json").exists():
    time.sleep(0.1)
  proc.kill()
  proc.communicate(timeout=60)
  done_before = set(os.listdir(tmp_path / "w" / "cells")) & {"a0", "a1", "a2", "a3"}
  assert {"a0", "a1"} <= done_before and not (tmp_path / "w" / "summary.json").exists()
  out = subprocess.run(_command(tmp_path / "w", "--sleep=1.5", "--n=4"), cwd=REPO,
                       env=_env(log), capture_output=True, text=True, timeout=120)
  assert out.returncode == 0 and out.stdout.strip() == "total 6.0", out.stderr
  counts = {k: log.read_text().split().count(k) for k in ("a0", "a1", "a2", "a3", "total")}
  for key in done_before:
    assert counts[key] == 1  # kept, not recomputed
  assert counts["total"] == 1


def test_sigterm_while_a_computed_cell_trains_saves_nothing_exits_143_and_the_rerun_continues(
    tmp_path):
  """A SIGTERM cuts the loop short (status preempted): that cell is never saved as done."""
  log = tmp_path / "log"
  cmd = _command(tmp_path / "w", "--n=1", "--train_steps=3000")
  proc = subprocess.Popen(cmd, cwd=REPO, env=_env(log), stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 180
  runs_log = tmp_path / "w" / "cells"
  while time.time() < deadline and "train" not in (log.read_text() if log.exists() else ""):
    time.sleep(0.2)
  time.sleep(4)  # inside the training loop
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=180)
  assert proc.returncode == 143, err[-2000:]
  assert "preempted while computing cell train (not saved)" in err
  assert not (runs_log / "train").exists()
  out = subprocess.run(_command(tmp_path / "w", "--n=1", "--train_steps=20"), cwd=REPO,
                       env=_env(log), capture_output=True, text=True, timeout=180)
  assert out.returncode == 0, out.stderr[-2000:]
  record = json.loads((runs_log / "train" / "record.json").read_text())["record"]
  assert record == {"status": "budget_exhausted", "steps": 20}


def test_sigterm_while_a_spec_cell_trains_checkpoints_exits_143_and_the_rerun_resumes(tmp_path):
  """The spec-cell kind: the runs checkpoint (status preempted), the rerun resumes them."""
  log = tmp_path / "log"
  cmd = _command(tmp_path / "w", "--n=1", "--spec_seeds=2", "--spec_steps=4000")
  proc = subprocess.Popen(cmd, cwd=REPO, env=_env(log), stderr=subprocess.PIPE, text=True)
  metrics = tmp_path / "w" / "runs" / "digits" / "seed0" / "metrics.jsonl"
  runs_log = tmp_path / "w" / "runs.log"
  deadline = time.time() + 180
  while time.time() < deadline and "step 100/4000" not in (
      runs_log.read_text() if runs_log.exists() else ""):
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=180)
  assert proc.returncode == 143, err[-2000:]
  assert "preempted during digits_clean: checkpointed" in err and "Traceback" not in err
  def result(seed):
    return json.loads((tmp_path / "w" / "runs" / "digits" / f"seed{seed}" / "result.json")
                      .read_text())["run"]
  first = {seed: result(seed) for seed in (0, 1)}
  preempted = {s: r["steps"] for s, r in first.items() if r["status"] == "preempted"}
  assert preempted and all(0 < v < 4000 for v in preempted.values()), first
  out = subprocess.run(cmd, cwd=REPO, env=_env(log), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  for seed, stopped in preempted.items():  # (a seed that fit before the signal was finished)
    run = result(seed)
    assert run["status"] in ("completed", "budget_exhausted") and run["steps"] > stopped
    assert run["resumed_from_step"] == stopped and run["preemption_count"] == 1


def test_the_sigterm_flag_is_process_wide():
  signals.clear()
  assert not driver.preemption_requested()
  signals.note_sigterm()
  assert driver.preemption_requested()
  signals.clear()


def test_a_compute_function_hashes_alike_run_as_a_script_or_imported(tmp_path, monkeypatch):
  """`python experiments/x.py` defines its compute functions in __main__; their cells must
  hash as experiments.x's (imported by a test, or `python -m experiments.x`), or neither
  finds the other's records."""
  import types  # pylint: disable=import-outside-toplevel
  cell = fixture.grid(fixture.Config())[0]
  imported = cells.computed_hash(cell, {})
  as_main = types.FunctionType(fixture.compute_a.__code__, fixture.compute_a.__globals__,
                               "compute_a")
  as_main.__module__, as_main.__qualname__ = "__main__", "compute_a"
  main_cell = cells.ComputedCell(cell.key, as_main, cell.config)
  script = types.ModuleType("__main__")
  script.__file__, script.__spec__ = os.path.join(REPO, "tests", "driver_fixture.py"), None
  monkeypatch.setitem(sys.modules, "__main__", script)
  assert cells.computed_hash(main_cell, {}) == imported                # python tests/x.py
  script.__spec__ = types.SimpleNamespace(name="tests.driver_fixture")
  assert cells.computed_hash(main_cell, {}) == imported                # python -m tests.x
  script.__spec__, script.__file__ = None, str(tmp_path / "elsewhere.py")
  assert cells.computed_hash(main_cell, {}) != imported                # not importable
