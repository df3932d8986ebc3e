"""Aggregate result.json files over seeds into a leaderboard (JSON, optional HTML page).

  python -m memobench.leaderboard --results DIR [DIR ...] --out leaderboard.json \
      [--html leaderboard.html] [--rank_by test_accuracy] [--min_seeds 3]

Every ``result.json`` under the given folders (recursively) is read and
validated against its versioned schema (memobench/schemas); a malformed or
foreign file is reported by path on stderr, listed under ``skipped`` and never
counted. Only regular files are read, each up to a size limit (MAX_RESULT_BYTES,
MAX_CURVE_BYTES; tracks.MAX_SUMMARY_BYTES): a FIFO or a link to /dev/zero is
skipped with its reason, as is a result whose steps_to_fit exceeds the steps
it ran, a number no float holds, or a string that is not valid Unicode. Runs are grouped by spec hash (the content of the spec, seed
excluded: memobench/specs.py), so seeds of one spec are the samples.

Statistics, per spec and metric, over the *usable* runs (status completed or
budget_exhausted; a preempted run is not final, a diverged one has no
meaningful scores):

  mean   arithmetic mean of the non-null values
  std    SAMPLE standard deviation (ddof=1); null with fewer than 2 values
  ci95   mean -/+ t_{0.975, n-1} * std / sqrt(n): the two-sided 95% Student-t
         confidence interval of the mean; null with fewer than 2 values
  n      number of non-null values; missing = usable runs whose value is null
         (e.g. steps_to_fit of a run that never fit)

Fit times are right-censored: a seed whose budget ran out before the fit
threshold (metrics.steps_to_fit_censored, or, in result files without it,
status budget_exhausted with no steps_to_fit) has a lower bound (the steps /
epochs it trained), not a missing value, so the mean above over the seeds that
fit is biased low. `fit_time` reports, for steps_to_fit and epochs_to_fit:

  fitted, censored    seeds that fit / were censored (missing: neither, e.g. a
                      completed run without the value)
  median              the sample median with each censored seed at its bound
                      (censored values sort after equal fitted ones);
                      median_is_lower_bound when a censored seed is at or below
                      the (upper) median position, else the median is exact
  mean_censored_at_bound   the mean with censored seeds at their bounds: a
                      lower bound of the mean when any seed is censored
  fraction_fitted     fitted / (fitted + censored)

Ranking by steps_to_fit or epochs_to_fit uses that median (memobench/ranking.py):
a median that is a lower bound ranks after every exact median when it is at
least as large as all of them, and is listed unranked otherwise (a run that
never fit within a short budget is not faster than one that fit).

Tracks (memobench/tracks.py, schema version 2): fixed tasks, each with a
declared score and direction, whose entries rank only against each other:
memorization-estimators (from estimator-benchmark summary.json files found
under the same folders), label-noise and memorization-capacity (from the
result files). The ranking below is the spec catalogue view.

Ranking: only standard specs (no --set overrides) with at least --min_seeds
usable seeds and no diverged seed are ranked, by the mean of --rank_by (the
censored median for steps_to_fit / epochs_to_fit, below); every
other spec is listed under ``unranked`` with the reason. Outputs are validated
against the leaderboard schema and written atomically (temp file + rename), so
concurrent exports never leave a partial file; the JSON and the page are written
together or not at all (results.write_atomic_together).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import sys
from typing import Any, Iterable

from memobench import __version__, cli, ranking, results, schemas, specs, tracks

# Metrics that can rank, and whether higher is better.
METRIC_DIRECTIONS: dict[str, bool] = {
    "test_accuracy": True,
    "train_accuracy": True,
    "generalization_gap": False,
    "steps_to_fit": False,
    "epochs_to_fit": False,
    "memorized_fraction": True,
    "corrupted_true_label_accuracy": True,
    "clean_subset_train_accuracy": True,
    "test_loss": False,
    "train_loss": False,
}
# The range a metric's values can take: its confidence interval is clipped to it
# (a t-interval of accuracies near 1 can otherwise pass 1).
METRIC_BOUNDS: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in ("test_accuracy", "train_accuracy", "memorized_fraction",
                               "corrupted_true_label_accuracy", "clean_subset_train_accuracy",
                               "label_noise_fraction")},
    "generalization_gap": (-1.0, 1.0),
}
USABLE_STATUSES = ("completed", "budget_exhausted")
# leaderboard.json's version: 2 added `tracks` (memobench/tracks.py); read()
# still reads version 1 files (schemas/leaderboard.v1.schema.json).
SCHEMA_VERSION = 2
MIN_SEEDS_TO_RANK = 3
# Files larger than these are not read (results.read_limited): a result.json
# holds no per-example arrays; a curve is one short line per evaluation.
MAX_RESULT_BYTES = 16 * 2**20
MAX_CURVE_BYTES = 64 * 2**20
MAX_BOARD_BYTES = 1024 * 2**20  # a leaderboard.json holds every run's curve
# Learning-curve columns carried into the leaderboard (and plotted by the page).
CURVE_KEYS = ("step", "epoch", "train_loss", "train_accuracy", "test_accuracy", "test_loss")


class LeaderboardError(RuntimeError):
  """Unusable command-line input; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Run:
  path: str
  result: dict[str, Any]
  curve: dict[str, list] | None

  @property
  def spec_hash(self) -> str:
    return self.result["spec"]["hash"]

  @property
  def seed(self) -> int:
    return self.result["run"]["seed"]

  @property
  def status(self) -> str:
    return self.result["run"]["status"]


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def t_quantile_975(dof: int) -> float:
  """The 0.975 quantile of Student's t distribution with `dof` degrees of freedom."""
  from scipy import stats  # pylint: disable=import-outside-toplevel
  return float(stats.t.ppf(0.975, dof))


def summarize(values: Iterable[float | None],
              bounds: tuple[float, float] | None = None) -> dict[str, Any]:
  """mean, sample std (ddof=1), Student-t 95% CI of the mean, n and missing count.

  bounds: the values' range; the interval is clipped to it.
  """
  values = list(values)
  present = [float(v) for v in values
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
  n = len(present)
  out = {"mean": None, "std": None, "ci95": None, "n": n, "missing": len(values) - n}
  if n == 0:
    return out
  mean = math.fsum(present) / n
  out["mean"] = mean
  if n >= 2:
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in present) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    out["std"] = std
    low, high = mean - half, mean + half
    if bounds is not None:
      low, high = max(low, bounds[0]), min(high, bounds[1])
    out["ci95"] = [low, high]
  return out


# --------------------------------------------------------------------------
# Reading results
# --------------------------------------------------------------------------


def find_result_files(folders: Iterable[str]) -> list[str]:
  found = []
  for folder in folders:
    if os.path.isfile(folder) and os.path.basename(folder) == results.RESULT_FILE:
      found.append(folder)
      continue
    for root, dirs, files in os.walk(folder):
      dirs.sort()
      if results.RESULT_FILE in files:
        found.append(os.path.join(root, results.RESULT_FILE))
  return sorted(dict.fromkeys(found))


def read_curve(run_dir: str) -> dict[str, list] | None:
  """The learning curve (metrics.jsonl) next to a result, as columns; None if absent/bad."""
  path = os.path.join(run_dir, results.CURVE_FILE)
  try:
    text = results.read_limited(path, MAX_CURVE_BYTES).decode("utf-8")
    rows = [results.parse_json(line) for line in text.splitlines() if line.strip()]
  except (results.UnreadableFile, ValueError, RecursionError):
    return None
  if not rows or not all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in rows):
    return None
  columns = {}
  for key in CURVE_KEYS:
    col = [r.get(key) for r in rows]
    col = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in col]
    if any(v is not None for v in col):
      columns[key] = results.finite_or_none(col)
  return columns


def inconsistency(doc: dict[str, Any]) -> str | None:
  """Why a schema-valid result contradicts itself, or None (checks no schema can state)."""
  run, metrics = doc["run"], doc["metrics"]
  steps_to_fit, epochs_to_fit = metrics.get("steps_to_fit"), metrics.get("epochs_to_fit")
  if _is_number(steps_to_fit) and steps_to_fit > run["steps"]:
    return (f"metrics.steps_to_fit {steps_to_fit} exceeds run.steps {run['steps']} "
            "(a run cannot fit after its last step); was the file edited?")
  # epochs are steps x batch / n, rounded: allow the rounding of one step.
  if _is_number(epochs_to_fit) and epochs_to_fit > run["epochs"] * (1 + 1e-6) + 1e-6:
    return (f"metrics.epochs_to_fit {epochs_to_fit} exceeds run.epochs {run['epochs']}; "
            "was the file edited?")
  return None


def load_runs(folders: Iterable[str], warn=lambda msg: print(msg, file=sys.stderr)
              ) -> tuple[list[Run], list[dict[str, str]]]:
  """Valid runs under `folders`, and the skipped files with their reasons."""
  runs, skipped = [], []
  seen: dict[tuple[str, int], str] = {}

  def skip(path, reason):
    skipped.append({"path": path, "reason": reason})
    warn(f"memobench.leaderboard: skipping {path}: {reason}")

  for path in find_result_files(folders):
    try:
      doc = results.load_json_file(path, MAX_RESULT_BYTES)
    except results.UnreadableFile as e:
      skip(path, str(e))
      continue
    try:
      schemas.validate(doc, "result")
    except schemas.SchemaError as e:
      skip(path, str(e))
      continue
    reason = inconsistency(doc)
    if reason is not None:
      skip(path, reason)
      continue
    try:
      recomputed = specs.spec_hash(specs.from_dict(doc["spec"]["resolved"]))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
      skip(path, f"spec.resolved is not a spec ({type(e).__name__}: {e})")
      continue
    if recomputed != doc["spec"]["hash"]:
      # Grouping trusts the hash: a hand-edited spec must not join its old group.
      skip(path, f"spec.hash {doc['spec']['hash']} is not the hash of spec.resolved "
                 f"({recomputed}); was the file edited?")
      continue
    run = Run(path, doc, read_curve(os.path.dirname(path)))
    key = (run.spec_hash, run.seed)
    if key in seen:
      skip(path, f"duplicate of seed {run.seed} of spec {run.spec_hash} at {seen[key]}")
      continue
    seen[key] = path
    runs.append(run)
  return runs, skipped


# --------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------


# Fit-time metrics (right-censored), and result.json's censoring fields, which
# `fit_time` summarizes instead of `metrics`.
FIT_TIME_METRICS = ("steps_to_fit", "epochs_to_fit")
_CENSORING_FIELDS = ("steps_to_fit_censored", "steps_to_fit_lower_bound",
                     "epochs_to_fit_lower_bound")


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric_names(runs: list[Run]) -> list[str]:
  names: dict[str, None] = {}
  for run in runs:
    for k, v in run.result["metrics"].items():
      if k in _CENSORING_FIELDS:
        continue
      if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        names.setdefault(k)
  return list(names)


def fit_observation(run: Run, metric: str) -> tuple[float, bool] | None:
  """(value, censored) of a run's fit time; None when it has neither value nor bound.

  A censored run's value is its lower bound: metrics.<metric>_lower_bound, or
  (result files written before those fields) run.steps / run.epochs of a
  budget_exhausted run.
  """
  m = run.result["metrics"]
  if _is_number(m.get(metric)):
    return float(m[metric]), False
  censored = m.get("steps_to_fit_censored")
  if censored is None:
    censored = run.status == "budget_exhausted"
  if not censored:
    return None
  bound = m.get(f"{metric}_lower_bound")
  if not _is_number(bound):
    bound = run.result["run"]["steps" if metric == "steps_to_fit" else "epochs"]
  return (float(bound), True) if _is_number(bound) else None


def censored_summary(observations: Iterable[tuple[float, bool] | None]) -> dict[str, Any]:
  """Seeds fitted / censored, the median with censored seeds at their bounds, and more.

  observations: (value, censored) per usable seed, None where it has neither.
  """
  observations = list(observations)
  present = sorted((o for o in observations if o is not None), key=lambda o: (o[0], o[1]))
  n = len(present)
  censored = sum(1 for _, c in present if c)
  out = {"fitted": n - censored, "censored": censored, "missing": len(observations) - n,
         "median": None, "median_is_lower_bound": None, "mean_censored_at_bound": None,
         "fraction_fitted": None}
  if n:
    out["median"] = (present[(n - 1) // 2][0] + present[n // 2][0]) / 2
    # Raising a censored value can move the median only if it sits at or below
    # the upper median position.
    out["median_is_lower_bound"] = any(c for _, c in present[:n // 2 + 1])
    out["mean_censored_at_bound"] = math.fsum(v for v, _ in present) / n
    out["fraction_fitted"] = (n - censored) / n
  return out


# The environment fields a leaderboard copies (what results.environment writes):
# a result's other fields, of any size, stay in its own file.
ENVIRONMENT_KEYS = ("python", "jax", "jaxlib", "flax", "optax", "numpy", "backend",
                    "device_kind", "device_count", "local_device_count", "process_count",
                    "platform", "git_commit")
_MAX_ENVIRONMENT_VALUE = 200  # characters of one copied value


def _environment_of(run: Run) -> dict[str, Any]:
  env = run.result["environment"]
  out = {}
  for key in ENVIRONMENT_KEYS:
    if key in env:
      value = env[key]
      if isinstance(value, str):
        value = value[:_MAX_ENVIRONMENT_VALUE]
      elif not isinstance(value, (int, float, bool, type(None))):
        value = str(value)[:_MAX_ENVIRONMENT_VALUE]
      out[key] = value
  return out


def _environments(runs: list[Run]) -> list[dict[str, Any]]:
  groups: dict[str, dict[str, Any]] = {}
  for run in runs:
    env = _environment_of(run)
    key = json.dumps(env, sort_keys=True)
    groups.setdefault(key, {"seeds": [], "environment": env})["seeds"].append(run.seed)
  return list(groups.values())


def _entry(runs: list[Run]) -> dict[str, Any]:
  runs = sorted(runs, key=lambda r: r.seed)
  usable = [r for r in runs if r.status in USABLE_STATUSES]
  first = runs[0].result["spec"]
  statuses: dict[str, int] = {}
  for r in runs:
    statuses[r.status] = statuses.get(r.status, 0) + 1
  nonstandard: dict[str, Any] = {}
  for r in runs:
    nonstandard.update({results.trim_text(k): v if isinstance(v, (int, float, bool, type(None)))
                        else results.trim_text(v)
                        for k, v in r.result["spec"]["nonstandard"].items()})
  return {
      "spec_name": results.trim_text(first["name"]),
      "spec_hash": first["hash"],
      "spec": first["resolved"],
      "nonstandard": nonstandard,
      "seeds": [r.seed for r in usable],
      "n_seeds": len(usable),
      "statuses": statuses,
      "metrics": {m: summarize((r.result["metrics"].get(m) for r in usable),
                               METRIC_BOUNDS.get(m))
                  for m in _metric_names(runs)},
      "fit_time": {m: censored_summary(fit_observation(r, m) for r in usable)
                   for m in FIT_TIME_METRICS},
      "environments": _environments(runs),
      "curves": {str(r.seed): r.curve for r in runs if r.curve is not None},
      "sources": [r.path for r in runs],
  }


def _unranked_reason(entry: dict[str, Any], rank_by: str, min_seeds: int) -> str | None:
  if entry["nonstandard"]:
    overrides = " ".join(f"{k}={v}" for k, v in sorted(entry["nonstandard"].items()))
    return f"non-standard run (--set {overrides})"
  diverged = entry["statuses"].get("diverged", 0)
  if diverged:
    total = sum(entry["statuses"].values())
    return f"{diverged} of {total} seeds diverged"
  if entry["n_seeds"] < min_seeds:
    return (f"{entry['n_seeds']} usable seed(s) (status completed or budget_exhausted); "
            f"ranking needs {min_seeds}")
  if rank_by in FIT_TIME_METRICS:
    if entry["fit_time"][rank_by]["median"] is None:
      return f"no value of the ranking metric {rank_by}"
    return None
  stat = entry["metrics"].get(rank_by)
  if stat is None or stat["mean"] is None:
    return f"no value of the ranking metric {rank_by}"
  return None


def aggregate(runs: list[Run], skipped: list[dict[str, str]] | None = None, *,
              rank_by: str = "test_accuracy", min_seeds: int = MIN_SEEDS_TO_RANK,
              sources: list[str] | None = None,
              estimator_summaries: list[tuple[str, dict[str, Any]]] | None = None
              ) -> dict[str, Any]:
  """The leaderboard document (schema leaderboard.v2) of `runs`.

  `ranked`/`unranked` are the catalogue view (every spec by --rank_by);
  `tracks` ranks within each fixed task of tracks.TRACKS, from these runs and
  the estimator-benchmark summaries (path, document).
  """
  if rank_by not in METRIC_DIRECTIONS:
    raise LeaderboardError(f"--rank_by {rank_by}: not a rankable metric (one of "
                           f"{', '.join(METRIC_DIRECTIONS)})")
  higher = METRIC_DIRECTIONS[rank_by]
  by_hash: dict[str, list[Run]] = {}
  for run in runs:
    by_hash.setdefault(run.spec_hash, []).append(run)
  keyed, unranked = [], []
  for group in by_hash.values():
    entry = _entry(group)
    reason = _unranked_reason(entry, rank_by, min_seeds)
    if reason is None:
      score = (entry["fit_time"][rank_by] if rank_by in FIT_TIME_METRICS
               else entry["metrics"][rank_by])
      keyed.append((ranking.score_key(score, higher), entry))
    else:
      unranked.append({**entry, "reason": reason})
  order = lambda e: (e["spec_name"], e["spec_hash"])
  in_order, censored = ranking.rank(keyed, order)
  ranked = [{**e, "rank": position} for position, e in in_order]
  unranked += [{**e, "reason": reason} for e, reason in censored]
  unranked.sort(key=order)
  track_sections = tracks.build(ranked + unranked, list(estimator_summaries or []),
                                min_seeds=min_seeds)
  return {
      "schema_version": SCHEMA_VERSION,
      "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "generator": {"memobench": __version__, "git_commit": results.git_commit()},
      "sources": list(sources or []),
      "statistics": {
          "mean": "arithmetic mean over usable seeds (status completed or budget_exhausted)",
          "std": "sample standard deviation, ddof=1 (null with fewer than 2 values)",
          "ci95": "mean -/+ t(0.975, n-1) * std / sqrt(n), two-sided 95% Student-t "
                  "interval of the mean (null with fewer than 2 values)",
          "min_seeds_to_rank": min_seeds,
          "fit_time": "steps_to_fit / epochs_to_fit right-censored at the budget: seeds "
                      "fitted and censored, the median with censored seeds at their bound "
                      "(median_is_lower_bound when a censored seed can move it), the mean "
                      "likewise (a lower bound when any seed is censored)",
      },
      "rank_by": {"metric": rank_by, "higher_is_better": higher},
      "ranked": ranked,
      "unranked": unranked,
      "skipped": list(skipped or []),
      "tracks": track_sections,
  }


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def export(board: dict[str, Any], out: str | None, html_path: str | None = None) -> None:
  """Validates `board` and writes it (and the page) atomically, together or not at all."""
  board = results.finite_or_none(board)
  schemas.validate(board, "leaderboard")
  files = []
  if out:
    files.append((out, json.dumps(board, indent=2, allow_nan=False) + "\n"))
  if html_path:
    from memobench import page  # pylint: disable=import-outside-toplevel
    files.append((html_path, page.render(board)))
  # Both rendered and encoded before either is written (write_atomic_together).
  results.write_atomic_together(files)


def build(folders: list[str], *, rank_by: str = "test_accuracy",
          min_seeds: int = MIN_SEEDS_TO_RANK, warn=lambda msg: print(msg, file=sys.stderr)
          ) -> dict[str, Any]:
  """Scans `folders` and returns the leaderboard document."""
  runs, skipped = load_runs(folders, warn=warn)
  summaries, bad_summaries = tracks.find_estimator_summaries(folders)
  for bad in bad_summaries:
    warn(f"memobench.leaderboard: skipping {bad['path']}: {bad['reason']}")
  return aggregate(runs, skipped + bad_summaries, rank_by=rank_by, min_seeds=min_seeds,
                   sources=folders, estimator_summaries=summaries)


def read(path: str) -> dict[str, Any]:
  """Reads and validates a leaderboard.json (results.UnreadableFile, schemas.SchemaError)."""
  board = results.load_json_file(path, MAX_BOARD_BYTES)
  schemas.validate(board, "leaderboard")
  return board


class _Parser(argparse.ArgumentParser):
  """argparse, but a bad command line is one line on stderr (exit 2), not the usage text."""

  def error(self, message):
    _fail(message, 2)


def _parse_args(argv: list[str]) -> argparse.Namespace:
  parser = _Parser(prog="python -m memobench.leaderboard",
                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--results", nargs="+", required=True, metavar="DIR",
                      help="folders scanned recursively for result.json")
  parser.add_argument("--out", required=True, help="leaderboard JSON to write")
  parser.add_argument("--html", default=None, help="also write this static HTML page")
  parser.add_argument("--rank_by", default="test_accuracy", choices=list(METRIC_DIRECTIONS))
  parser.add_argument("--min_seeds", type=int, default=MIN_SEEDS_TO_RANK,
                      help="usable seeds a spec needs to be ranked")
  return parser.parse_args(argv)


def _fail(message: str, code: int) -> None:
  cli.fail("memobench.leaderboard", message, code)


def main(argv: list[str] | None = None) -> None:
  args = _parse_args(sys.argv[1:] if argv is None else argv)
  missing = [d for d in args.results if not os.path.exists(d)]
  if missing:
    _fail(f"--results {missing[0]}: no such file or folder", 2)
  if args.min_seeds < 1:
    _fail(f"--min_seeds must be >= 1, got {args.min_seeds}", 2)
  board = build(args.results, rank_by=args.rank_by, min_seeds=args.min_seeds)
  for target in (args.out, args.html):
    folder = os.path.dirname(os.path.abspath(target)) if target else None
    if folder and not os.path.isdir(folder):
      _fail(f"cannot write {target}: folder {folder} does not exist", 1)
  try:
    export(board, args.out, args.html)
  except OSError as e:
    _fail(f"cannot write output: {e.strerror}: {e.filename or ''}".rstrip(": "), 1)
  except schemas.SchemaError as e:  # a bug: every input was validated; nothing was written
    _fail(f"the leaderboard fails its own schema, nothing written: {e}", 1)
  n_runs = sum(len(e["sources"]) for e in board["ranked"] + board["unranked"])
  print(f"{n_runs} runs of {len(board['ranked']) + len(board['unranked'])} specs "
        f"({len(board['ranked'])} ranked, {len(board['unranked'])} unranked, "
        f"{len(board['skipped'])} files skipped) -> {args.out}"
        + (f", {args.html}" if args.html else ""))
  print("tracks: " + ", ".join(f"{t['name']} {len(t['ranked'])} ranked, "
                               f"{len(t['unranked'])} unranked" for t in board["tracks"]))


if __name__ == "__main__":
  main()
