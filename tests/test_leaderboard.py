"""Leaderboard: statistics, grouping and ranking rules, schemas, atomic export, --seeds, TensorBoard."""

import dataclasses
import json
import math
import os
import struct
import subprocess
import sys

import pytest

from memobench import leaderboard, schemas, specs
from tests.conftest import REPO, run_main

def _fixture_spec(k):
  return specs.Spec(name="fixture_spec", description="", dataset=specs.DatasetSpec("digits"),
                    budget=specs.BudgetSpec(max_epochs=100 + k))


# Distinct specs whose real hashes label the fixtures (the leaderboard recomputes
# a result's hash from its spec.resolved and skips a file where they differ).
FIXTURE_SPECS = {specs.spec_hash(s): s for s in map(_fixture_spec, range(5))}
HASH_A, HASH_B, HASH_C, HASH_D, HASH_E = FIXTURE_SPECS


def fake_result(name, spec_hash, seed, test_acc, *, status="completed", nonstandard=None,
                steps_to_fit=100, extra_metrics=None):
  """A result.json document in the layout of memobench/results.py (22 steps an epoch)."""
  steps = max(100, steps_to_fit or 0)
  return {
      "schema_version": 1,
      "spec": {"name": name, "hash": spec_hash,
               "resolved": (dataclasses.asdict(FIXTURE_SPECS[spec_hash])
                            if spec_hash in FIXTURE_SPECS else {"dataset": {"name": "digits"}}),
               "nonstandard": nonstandard or {}},
      "run": {"seed": seed, "status": status, "steps": steps, "epochs": steps / 22},
      "metrics": {"train_accuracy": 1.0, "test_accuracy": test_acc,
                  "generalization_gap": 1.0 - test_acc, "steps_to_fit": steps_to_fit,
                  "epochs_to_fit": None if steps_to_fit is None else steps_to_fit / 22,
                  **(extra_metrics or {})},
      "environment": {"python": "3.11.7", "jax": "0.10.2", "backend": "cpu",
                      "device_count": 1, "process_count": 1},
      "timing": {"wall_s": 1.5},
  }


def write(tmp_path, rel, doc, curve=None):
  folder = tmp_path / rel
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "result.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
  if curve is not None:
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curve))
  return str(folder / "result.json")


# --------------------------------------------------------------------------
# Statistics against hand-computed values
# --------------------------------------------------------------------------


def test_summarize_sample_std_and_student_t_interval():
  s = leaderboard.summarize([0.1, 0.2, 0.3, None])
  # mean 0.2; sample std sqrt((0.01 + 0 + 0.01) / 2) = 0.1; t(0.975, 2) = 4.302653
  assert s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
  half = 4.302652729911275 * 0.1 / math.sqrt(3)
  assert s["ci95"] == pytest.approx([0.2 - half, 0.2 + half])
  assert s["n"] == 3 and s["missing"] == 1


def test_summarize_two_values_and_degenerate_cases():
  s = leaderboard.summarize([1.0, 3.0])
  # std sqrt(2) (ddof=1, not 1 as ddof=0 would give); t(0.975, 1) = 12.706205
  assert s["std"] == pytest.approx(math.sqrt(2))
  assert s["ci95"] == pytest.approx([2 - 12.706204736174707, 2 + 12.706204736174707])
  assert leaderboard.summarize([5.0]) == {"mean": 5.0, "std": None, "ci95": None, "n": 1,
                                          "missing": 0}
  assert leaderboard.summarize([None, float("nan")])["mean"] is None
  assert leaderboard.t_quantile_975(10) == pytest.approx(2.228139, abs=1e-6)


# --------------------------------------------------------------------------
# Grouping, ranking, skipping
# --------------------------------------------------------------------------


@pytest.fixture
def results_tree(tmp_path):
  curve = [{"step": 10, "train_loss": 2.0, "train_accuracy": 0.3, "test_accuracy": 0.2},
           {"step": 20, "train_loss": float("nan"), "train_accuracy": 0.9, "test_accuracy": 0.8}]
  for seed, acc in enumerate([0.90, 0.92, 0.94]):
    write(tmp_path, f"a/seed{seed}", fake_result("digits_clean", HASH_A, seed, acc), curve)
  # preempted runs are not final: not counted in the statistics
  write(tmp_path, "a/seed9", fake_result("digits_clean", HASH_A, 9, 0.0, status="preempted"))
  for seed, acc in enumerate([0.10, 0.12, 0.14]):
    write(tmp_path, f"b/seed{seed}", fake_result("digits_randlabels", HASH_B, seed, acc,
                                                 steps_to_fit=None))
  for seed in range(2):
    write(tmp_path, f"c/seed{seed}", fake_result("digits_gaussian", HASH_C, seed, 0.1))
  for seed in range(3):
    write(tmp_path, f"d/seed{seed}", fake_result("digits_clean", HASH_D, seed, 0.99,
                                                 nonstandard={"optimizer.lr": 0.5}))
  write(tmp_path, "e/seed0", fake_result("digits_shufpix", HASH_E, 0, 0.5))
  write(tmp_path, "e/seed1", fake_result("digits_shufpix", HASH_E, 1, 0.5, status="diverged"))
  write(tmp_path, "e/seed2", fake_result("digits_shufpix", HASH_E, 2, 0.5))
  write(tmp_path, "e/seed3", fake_result("digits_shufpix", HASH_E, 3, 0.5))
  # Malformed and foreign files, and a duplicate seed: reported, never counted.
  write(tmp_path, "junk/notjson", "{oops")
  write(tmp_path, "junk/foreign", {"accuracy": 0.99, "model": "resnet"})
  bad = fake_result("digits_clean", HASH_A, 5, 0.5)
  del bad["metrics"]["test_accuracy"]
  write(tmp_path, "junk/missing_metric", bad)
  write(tmp_path, "junk/dup", fake_result("digits_clean", HASH_A, 0, 0.0))
  return tmp_path


def test_aggregate_groups_ranks_and_explains(results_tree):
  warnings = []
  board = leaderboard.build([str(results_tree)], warn=warnings.append)
  schemas.validate(board, "leaderboard")
  ranked = {e["spec_hash"]: e for e in board["ranked"]}
  unranked = {e["spec_hash"]: e for e in board["unranked"]}
  assert list(ranked) == [HASH_A, HASH_B]  # by mean test accuracy, best first
  assert [e["rank"] for e in board["ranked"]] == [1, 2]
  a = ranked[HASH_A]
  assert a["seeds"] == [0, 1, 2] and a["n_seeds"] == 3
  assert a["statuses"] == {"completed": 3, "preempted": 1}
  assert a["metrics"]["test_accuracy"]["mean"] == pytest.approx(0.92)
  assert a["metrics"]["test_accuracy"]["std"] == pytest.approx(0.02)
  assert a["environments"] == [{"seeds": [0, 1, 2, 9],
                                "environment": fake_result("x", HASH_A, 0, 0)["environment"]}]
  assert a["curves"]["0"]["step"] == [10, 20] and a["curves"]["0"]["train_loss"] == [2.0, None]
  b = ranked[HASH_B]
  assert b["metrics"]["steps_to_fit"] == {"mean": None, "std": None, "ci95": None, "n": 0,
                                          "missing": 3}
  assert "ranking needs 3" in unranked[HASH_C]["reason"]
  assert unranked[HASH_C]["reason"].startswith("2 usable seed")
  assert unranked[HASH_D]["reason"] == "non-standard run (--set optimizer.lr=0.5)"
  assert unranked[HASH_E]["reason"] == "1 of 4 seeds diverged"
  skipped = {os.path.basename(os.path.dirname(s["path"])): s["reason"]
             for s in board["skipped"]}
  assert set(skipped) == {"notjson", "foreign", "missing_metric", "dup"}
  assert skipped["foreign"] == "not a memobench result: no integer schema_version"
  assert skipped["missing_metric"] == "metrics: 'test_accuracy' is a required property"
  assert skipped["dup"].startswith("duplicate of seed 0 of spec " + HASH_A)
  assert len(warnings) == 4 and all("skipping" in w for w in warnings)


def test_rank_by_lower_is_better_and_ties_share_a_rank(tmp_path):
  for h, name, steps in ((HASH_A, "x_a", [100, 200, 300]), (HASH_B, "x_b", [300, 200, 100]),
                         (HASH_C, "x_c", [50, 50, 50])):
    for seed, s in enumerate(steps):
      write(tmp_path, f"{h}/{seed}", fake_result(name, h, seed, 0.5, steps_to_fit=s))
  board = leaderboard.build([str(tmp_path)], rank_by="steps_to_fit", warn=lambda m: None)
  assert [(e["spec_name"], e["rank"]) for e in board["ranked"]] == [
      ("x_c", 1), ("x_a", 2), ("x_b", 2)]
  with pytest.raises(leaderboard.LeaderboardError, match="not a rankable metric"):
    leaderboard.build([str(tmp_path)], rank_by="wall_s")


# --------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r["run"].update(status="weird"),
     "run.status: 'weird' is not one of ['completed', 'budget_exhausted', 'diverged', "
     "'preempted']"),
    (lambda r: r["metrics"].update(test_accuracy=1.5),
     "metrics.test_accuracy: 1.5 is greater than the maximum of 1"),
    (lambda r: r["spec"].update(hash="not-a-hash"),
     "spec.hash: 'not-a-hash' does not match '^[0-9a-f]{16}$'"),
    (lambda r: r.pop("environment"), "(top level): 'environment' is a required property"),
    (lambda r: r.update(schema_version=99), "unknown result schema_version 99"),
    (lambda r: r["run"].update(seed="0"), "run.seed: '0' is not of type 'integer'"),
])
def test_schema_rejects_malformed_results_with_a_clear_message(mutate, message):
  doc = fake_result("digits_clean", HASH_A, 0, 0.9)
  mutate(doc)
  with pytest.raises(schemas.SchemaError) as e:
    schemas.validate(doc, "result")
  assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_schema_accepts_new_sections_statuses_and_metrics():
  doc = fake_result("digits_clean", HASH_A, 0, 0.9, status="preempted",
                    extra_metrics={"csr": 0.1, "effective_rank": {"train": 3.2}})
  doc["run"]["preemption_count"] = 2
  doc["memorization"] = {"per_example": [0.1, 0.2]}
  schemas.validate(doc, "result")
  # leaderboard v2 added tracks (memobench/tracks.py); v1 files still read.
  assert schemas.versions("result") == (1,) and schemas.versions("leaderboard") == (1, 2)


def test_schemas_ship_as_package_data():
  pyproject = open(os.path.join(REPO, "pyproject.toml")).read()
  assert '"memobench.schemas" = ["*.schema.json"]' in pyproject
  assert schemas.load("result", 1)["properties"]["schema_version"] == {"const": 1}


def test_export_refuses_an_invalid_board(tmp_path):
  board = leaderboard.aggregate([], [])
  board["ranked"] = [{"spec_name": "x"}]
  with pytest.raises(schemas.SchemaError, match="ranked.0"):
    leaderboard.export(board, str(tmp_path / "lb.json"))
  assert not (tmp_path / "lb.json").exists()


# --------------------------------------------------------------------------
# Command line and atomic export
# --------------------------------------------------------------------------


def run_leaderboard(*args):
  return subprocess.run([sys.executable, "-m", "memobench.leaderboard", *args],
                        capture_output=True, text=True, timeout=120, cwd=REPO)


def test_cli_writes_valid_json_and_html_and_reports_skipped_paths(results_tree, tmp_path):
  out = run_leaderboard("--results", str(results_tree), "--out", str(tmp_path / "lb.json"),
                        "--html", str(tmp_path / "lb.html"))
  assert out.returncode == 0, out.stderr
  assert "(2 ranked, 3 unranked, 4 files skipped)" in out.stdout
  assert os.path.join("junk", "notjson", "result.json") in out.stderr
  board = leaderboard.read(str(tmp_path / "lb.json"))
  assert [e["spec_hash"] for e in board["ranked"]] == [HASH_A, HASH_B]
  assert "digits_randlabels" in (tmp_path / "lb.html").read_text()
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
  umask = os.umask(0)
  os.umask(umask)
  for name in ("lb.json", "lb.html"):  # publishable: the mode open() gives, not mkstemp's 0600
    assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("args,needle", [
    (["--results", "{tmp}/nope", "--out", "{tmp}/x.json"], "no such file or folder"),
    (["--results", "{tmp}", "--out", "{tmp}/x.json", "--rank_by", "wall_s"],
     "argument --rank_by: invalid choice: 'wall_s'"),
    (["--results", "{tmp}"], "the following arguments are required: --out"),
    (["--results", "{tmp}", "--out", "{tmp}/no/such/dir/x.json"], "does not exist"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, needle):
  out = run_leaderboard(*[a.format(tmp=tmp_path) for a in args])
  assert out.returncode in (1, 2) and out.stderr.strip().count("\n") == 0, out.stderr
  assert needle in out.stderr and "Traceback" not in out.stderr


_WRITER = """
import sys
from memobench import leaderboard
board = leaderboard.build([sys.argv[1]], warn=lambda m: None)
for _ in range(int(sys.argv[3])):
  leaderboard.export(board, sys.argv[2])
"""


def test_concurrent_exports_never_leave_a_partial_file(tmp_path):
  # A board big enough that a non-atomic write would be observable mid-way.
  curve = [{"step": i, "train_loss": 1.0 / (i + 1), "train_accuracy": 0.5} for i in range(1500)]
  for seed in range(3):
    write(tmp_path / "res", f"s{seed}", fake_result("digits_clean", HASH_A, seed, 0.9), curve)
  out = tmp_path / "lb.json"
  writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "res"), str(out),
                               "10"], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
  reads = 0
  while any(w.poll() is None for w in writers):
    if out.exists():
      text = out.read_text()
      board = json.loads(text)  # a partial file would fail here
      assert board["ranked"][0]["n_seeds"] == 3
      reads += 1
  for w in writers:
    assert w.wait() == 0, w.stderr.read()
  assert reads > 0
  schemas.validate(json.loads(out.read_text()), "leaderboard")
  assert sorted(os.listdir(tmp_path)) == ["lb.json", "res"]  # no temp files left


# --------------------------------------------------------------------------
# --seeds and TensorBoard
# --------------------------------------------------------------------------

TINY = ["--set", "budget.max_steps=8", "--set", "budget.eval_every_steps=4"]


def _tb_scalars(folder):
  """{tag: [(step, value)]} read back from the TFRecord event files in `folder`."""
  from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel
  out = {}
  for name in sorted(os.listdir(folder)):
    data = open(os.path.join(folder, name), "rb").read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for v in event.summary.value:
        out.setdefault(v.tag, []).append((event.step, v.simple_value))
  return out


def test_seeds_match_single_seed_runs_and_write_tensorboard_curves(tmp_path):
  multi = run_main("--spec=digits_partial40", f"--workdir={tmp_path / 'multi'}", "--seed=1",
                   "--seeds=2", *TINY)
  assert multi.returncode == 0, multi.stderr
  assert "2/2 runs" in multi.stderr and "ETA" in multi.stderr
  single = run_main("--spec=digits_partial40", f"--workdir={tmp_path / 'single'}", "--seed=2",
                    *TINY)
  assert single.returncode == 0, single.stderr
  assert sorted(os.listdir(tmp_path / "multi")) == ["seed1", "seed2"]
  a = json.loads((tmp_path / "multi" / "seed2" / "result.json").read_text())
  b = json.loads((tmp_path / "single" / "result.json").read_text())
  core = ("seed", "status", "steps", "epochs")
  assert {k: a["run"][k] for k in core} == {k: b["run"][k] for k in core}
  assert a["spec"] == b["spec"]
  for k, v in b["metrics"].items():
    assert a["metrics"][k] == pytest.approx(v, abs=1e-6), k
  seed1 = json.loads((tmp_path / "multi" / "seed1" / "result.json").read_text())
  assert seed1["run"]["seed"] == 1 and seed1["spec"]["hash"] == a["spec"]["hash"]
  assert seed1["metrics"]["label_noise_fraction"] != a["metrics"]["label_noise_fraction"]

  rows = [json.loads(l) for l in (tmp_path / "single" / "metrics.jsonl").read_text().split("\n")
          if l]
  scalars = _tb_scalars(tmp_path / "single" / "tensorboard")
  assert [s for s, _ in scalars["curve/train_accuracy"]] == [4, 8]
  assert [v for _, v in scalars["curve/train_accuracy"]] == pytest.approx(
      [r["train_accuracy"] for r in rows])
  assert [v for _, v in scalars["curve/train_loss"]] == pytest.approx(
      [r["train_loss"] for r in rows], rel=1e-6)


def test_progress_bar_eta_from_mean_run_time():
  import io  # pylint: disable=import-outside-toplevel
  from memobench import sweep  # pylint: disable=import-outside-toplevel
  now = [100.0]
  stream = io.StringIO()
  bar = sweep.Progress(4, stream=stream, width=8, clock=lambda: now[0])
  now[0] += 5
  bar.advance(None, "kept")  # resumed runs count as done but not in the ETA
  assert "[##......] 1/4 runs | elapsed 0m05s | ETA ?" in stream.getvalue()
  now[0] += 30
  bar.advance(30.0, "a")
  now[0] += 10
  bar.advance(10.0, "b")
  # mean 20 s per timed run x 1 run left
  assert stream.getvalue().splitlines()[-1] == (
      "[######..] 3/4 runs | elapsed 0m45s | ETA 0m20s | b")


def test_pathological_files_are_skipped_one_by_one(tmp_path):
  """Deep nesting, a FIFO named result.json, a string where the dataset belongs."""
  good = write(tmp_path, "good/seed0", fake_result("digits_clean", HASH_A, 0, 0.9))
  deep = "[" * 100_000 + "]" * 100_000
  write(tmp_path, "deep/seed0", deep)
  curve_deep = tmp_path / "good" / "seed0" / "metrics.jsonl"
  curve_deep.write_text('{"step": 1, "x": ' + deep + "}\n")
  bad = fake_result("digits_clean", HASH_B, 0, 0.9)
  bad["spec"]["resolved"]["dataset"] = "digits"
  write(tmp_path, "string_dataset/seed0", bad)
  (tmp_path / "fifo" / "seed0").mkdir(parents=True)
  os.mkfifo(tmp_path / "fifo" / "seed0" / "result.json")
  warnings = []
  board = leaderboard.build([str(tmp_path)], warn=warnings.append)
  reasons = {os.path.relpath(s["path"], tmp_path): s["reason"] for s in board["skipped"]}
  assert reasons["deep/seed0/result.json"] == "JSON nested too deeply to read"
  assert reasons["fifo/seed0/result.json"] == "not a regular file"
  assert "spec.resolved.dataset" in reasons["string_dataset/seed0/result.json"]
  assert [e["sources"] for e in board["ranked"] + board["unranked"]] == [[good]]
  leaderboard.export(board, str(tmp_path / "lb.json"), str(tmp_path / "lb.html"))
  assert (tmp_path / "lb.html").exists()


def test_the_leaderboard_copies_only_the_known_environment_fields(tmp_path):
  doc = fake_result("digits_clean", HASH_A, 0, 0.9)
  doc["environment"]["huge"] = "x" * 1_000_000
  doc["environment"]["platform"] = "y" * 10_000
  write(tmp_path, "a/seed0", doc)
  board = leaderboard.build([str(tmp_path)], warn=lambda _: None)
  (entry,) = board["ranked"] + board["unranked"]
  (env,) = entry["environments"]
  assert "huge" not in env["environment"] and len(env["environment"]["platform"]) == 200
  assert env["environment"]["jax"] == "0.10.2"
  leaderboard.export(board, str(tmp_path / "lb.json"))
  assert os.path.getsize(tmp_path / "lb.json") < 100_000


def test_accuracy_intervals_stay_inside_zero_one():
  s = leaderboard.summarize([1.0, 1.0, 0.9], leaderboard.METRIC_BOUNDS["test_accuracy"])
  assert s["ci95"][1] == 1.0 and s["ci95"][0] < s["mean"] < 1.0
  unbounded = leaderboard.summarize([1.0, 1.0, 0.9])
  assert unbounded["ci95"][1] > 1.0 and unbounded["ci95"][0] == s["ci95"][0]


def test_a_result_whose_spec_was_edited_by_hand_is_skipped(tmp_path):
  write(tmp_path, "a/seed0", fake_result("digits_clean", HASH_A, 0, 0.9))
  edited = fake_result("digits_clean", HASH_A, 1, 0.9)
  edited["spec"]["resolved"]["optimizer"]["lr"] = 0.5  # the hash was left as it was
  write(tmp_path, "a/seed1", edited)
  board = leaderboard.build([str(tmp_path)], warn=lambda _: None)
  (skipped,) = board["skipped"]
  assert skipped["path"].endswith("a/seed1/result.json")
  assert f"spec.hash {HASH_A} is not the hash of spec.resolved" in skipped["reason"]
  (entry,) = board["ranked"] + board["unranked"]
  assert entry["spec_hash"] == HASH_A and len(entry["sources"]) == 1


# --------------------------------------------------------------------------
# Files and values that are not what they seem (issue 27, items 5, 6, 7)
# --------------------------------------------------------------------------


@pytest.fixture
def no_hang():
  """Fails a test that blocks (a FIFO opened for reading waits for a writer) instead of hanging."""
  import signal  # pylint: disable=import-outside-toplevel

  def alarm(*_):
    raise TimeoutError("blocked reading a file")
  previous = signal.signal(signal.SIGALRM, alarm)
  signal.alarm(60)
  yield
  signal.alarm(0)
  signal.signal(signal.SIGALRM, previous)


def test_only_regular_files_within_their_size_limit_are_read(tmp_path, monkeypatch, no_hang):
  curve = [{"step": 10, "train_loss": 2.0}]
  write(tmp_path, "good/seed0", fake_result("digits_clean", HASH_A, 0, 0.9), curve)
  # A FIFO and a link to /dev/zero as curves: the run counts, without a curve.
  write(tmp_path, "good/seed1", fake_result("digits_clean", HASH_A, 1, 0.9))
  os.mkfifo(tmp_path / "good" / "seed1" / "metrics.jsonl")
  write(tmp_path, "good/seed2", fake_result("digits_clean", HASH_A, 2, 0.9))
  os.symlink("/dev/zero", tmp_path / "good" / "seed2" / "metrics.jsonl")
  # A result linked to /dev/zero, one over the size limit, a link to a good one.
  (tmp_path / "zero" / "seed0").mkdir(parents=True)
  os.symlink("/dev/zero", tmp_path / "zero" / "seed0" / "result.json")
  big = fake_result("digits_clean", HASH_B, 0, 0.9)
  big["environment"]["padding"] = "x" * 5000
  write(tmp_path, "big/seed0", big)
  os.makedirs(tmp_path / "linked")
  os.symlink(tmp_path / "good" / "seed0" / "result.json", tmp_path / "linked" / "result.json")
  monkeypatch.setattr(leaderboard, "MAX_RESULT_BYTES", 4000)
  board = leaderboard.build([str(tmp_path / n) for n in ("good", "zero", "big")],
                            warn=lambda m: None)
  reasons = {os.path.relpath(s["path"], tmp_path): s["reason"] for s in board["skipped"]}
  assert reasons == {"zero/seed0/result.json": "not a regular file",
                     "big/seed0/result.json": "larger than the 4,000-byte limit for this file"}
  (entry,) = board["ranked"] + board["unranked"]
  assert entry["seeds"] == [0, 1, 2] and list(entry["curves"]) == ["0"]
  board = leaderboard.build([str(tmp_path / "linked")], warn=lambda m: None)
  assert [e["seeds"] for e in board["ranked"] + board["unranked"]] == [[0]]


def test_hostile_values_skip_their_file_with_the_reason(tmp_path):
  write(tmp_path, "good/seed0", fake_result("digits_clean", HASH_A, 0, 0.9))
  huge = json.dumps(fake_result("digits_clean", HASH_A, 1, 0.9, extra_metrics={"test_loss": 7}))
  write(tmp_path, "huge/seed1", huge.replace('"test_loss": 7', '"test_loss": ' + "9" * 400))
  surrogate = json.dumps(fake_result("digits_clean", HASH_A, 2, 0.9))
  write(tmp_path, "surrogate/seed2", surrogate.replace('"digits_clean"', '"digits\\ud800"', 1))
  # A checkpoint's loop record edited to claim a fit after the run's last step.
  late = fake_result("digits_clean", HASH_A, 3, 0.9, steps_to_fit=143)
  late["metrics"]["steps_to_fit"] = 153
  late["run"].update(steps=143, epochs=143 / 22)
  write(tmp_path, "late/seed3", late)
  long_name = fake_result("n" * 1_000_000, HASH_B, 4, 0.9, nonstandard={"x": "v" * 10_000})
  write(tmp_path, "long/seed4", long_name)
  board = leaderboard.build([str(tmp_path)], warn=lambda m: None)
  reasons = {os.path.relpath(s["path"], tmp_path).split(os.sep)[0]: s["reason"]
             for s in board["skipped"]}
  assert reasons == {
      "huge": "an integer of 400 digits is beyond the range of a float",
      "surrogate": "holds a string that is not valid Unicode (an unpaired surrogate escape "
                   "such as \\ud800)",
      "late": "metrics.steps_to_fit 153 exceeds run.steps 143 (a run cannot fit after its "
              "last step); was the file edited?"}
  names = sorted(e["spec_name"] for e in board["ranked"] + board["unranked"])
  assert names == ["digits_clean", "n" * 199 + "\u2026"]
  (long_entry,) = [e for e in board["unranked"] if e["spec_name"].startswith("n")]
  assert len(long_entry["nonstandard"]["x"]) == 200
  leaderboard.export(board, str(tmp_path / "lb.json"), str(tmp_path / "lb.html"))
  assert os.path.getsize(tmp_path / "lb.json") < 100_000


def test_json_and_page_are_written_together_or_not_at_all(tmp_path, monkeypatch):
  write(tmp_path, "a/seed0", fake_result("digits_clean", HASH_A, 0, 0.9))
  board = leaderboard.build([str(tmp_path)], warn=lambda m: None)
  out, html = tmp_path / "lb.json", tmp_path / "lb.html"
  # A page that cannot be encoded (an unpaired surrogate that got past the readers).
  bad = json.loads(json.dumps(board))
  bad["unranked"][0]["spec_name"] = "x\ud800"
  with pytest.raises(UnicodeEncodeError):
    leaderboard.export(bad, str(out), str(html))
  assert not out.exists() and not html.exists()
  # A page whose folder vanished: the JSON is not written either.
  with pytest.raises(OSError):
    leaderboard.export(board, str(out), str(tmp_path / "gone" / "lb.html"))
  assert not out.exists()
  # A disk that fills while the second file is written: the first stays as it was.
  leaderboard.export(board, str(out), str(html))
  before = out.read_bytes(), html.read_bytes()
  from memobench import results  # pylint: disable=import-outside-toplevel
  real_stage, calls = results._stage, []

  def stage(path, data):
    calls.append(path)
    if len(calls) == 2:
      raise OSError(28, "No space left on device")
    return real_stage(path, data)
  monkeypatch.setattr(results, "_stage", stage)
  board["unranked"][0]["spec_name"] = "changed"
  with pytest.raises(OSError, match="No space"):
    leaderboard.export(board, str(out), str(html))
  assert (out.read_bytes(), html.read_bytes()) == before
  assert sorted(os.listdir(tmp_path)) == ["a", "lb.html", "lb.json"]  # no temp files left
