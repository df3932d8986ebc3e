"""Shared plumbing of the experiment scripts: arguments, the sweep, statistics, export.

Every script builds a list of (spec, overrides) cells, runs them with
`memobench.sweep.run_jobs` (resumable, progress bar with ETA on stderr; each
run's own log lines go to <workdir>/runs.log), aggregates with
`memobench.leaderboard`, and writes figures with matplotlib.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Callable, Iterable

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

from memobench import catalogue, cli, leaderboard, results, specs, sweep, workload  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "font.size": 9})


# --quick: a few steps, and the optional per-run analyses off (they cost more
# than the training at this size). Results are non-standard, so never ranked.
QUICK_SET = ("budget.max_steps=20", "budget.eval_every_steps=10",
             "analysis.effective_rank=false", "analysis.dynamics=false")


@dataclasses.dataclass(frozen=True)
class Cell:
  """One point of an experiment grid: a spec, its --set overrides, and plot labels."""
  key: str
  spec: specs.Spec
  overrides: tuple[str, ...] = ()


class _Parser(argparse.ArgumentParser):
  """argparse, but a bad command line is one line on stderr (exit 2), not the usage text."""

  def error(self, message):
    fail(message, 2)


def parser(doc: str, name: str, default_dataset: str, quick_dataset: str = "digits",
           seeds: int = 3) -> argparse.ArgumentParser:
  p = _Parser(description=doc.split("\n\n")[0],
              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--dataset", default=None,
                 help=f"dataset (default {default_dataset}; {quick_dataset} with --quick)")
  p.add_argument("--seeds", type=int, default=None,
                 help=f"seeds per cell (default {seeds}; 1 with --quick)")
  p.add_argument("--workdir", default=None,
                 help=f"results and figures (default /tmp/memobench/experiments/{name}"
                      "[-quick]/<dataset>)")
  p.add_argument("--data_dir", default=None, help="TFDS data dir (real datasets)")
  p.add_argument("--quick", action="store_true",
                 help="a tiny smoke run (seconds): few steps, 1 seed, non-standard results")
  p.add_argument("--no_resume", action="store_true",
                 help="rerun cells whose result already exists")
  p.add_argument("--vmap_seeds", choices=("auto", "true", "false"), default="auto",
                 help="train a cell's seeds in one vmapped program (auto: for small models)")
  p.add_argument("--shard", default=None,
                 help="INDEX/COUNT: run only every COUNT-th run of the grid from INDEX, so "
                      "COUNT workers (a SLURM array, an Indexed Job, TPU-VM hosts) on one "
                      "shared --workdir run each once; the summary is written once all are in")
  p.set_defaults(_name=name, _default_dataset=default_dataset, _quick_dataset=quick_dataset,
                 _default_seeds=seeds)
  return p


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
  if args.dataset is None:
    args.dataset = args._quick_dataset if args.quick else args._default_dataset
  if args.seeds is None:
    args.seeds = 1 if args.quick else args._default_seeds
  if args.seeds < 1:
    fail(f"--seeds must be >= 1, got {args.seeds}", 2)
  try:
    args.shard = cli.parse_shard(args.shard)
  except ValueError as e:
    fail(str(e), 2)
  if args.workdir is None:
    suffix = "-quick" if args.quick else ""
    args.workdir = os.path.join("/tmp/memobench/experiments", args._name + suffix, args.dataset)
  return args


def fail(message: str, code: int) -> None:
  """One line on stderr, as every memobench command line: `<script>: error: <message>`."""
  cli.fail(os.path.splitext(os.path.basename(sys.argv[0]))[0] or "experiment", message, code)


def get_spec(name: str, overrides: Iterable[str] = ()) -> tuple[specs.Spec, dict[str, Any]]:
  """A registered spec with overrides applied; one-line exit on a bad name or value."""
  try:
    spec, applied = specs.with_overrides(catalogue.get(name), list(overrides))
    return workload.validate(spec), applied
  except specs.SpecError as e:
    fail(str(e), 2)
    raise  # unreachable


def run_cells(cells: list[Cell], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
  """Runs every cell for args.seeds seeds; returns {cell key: [result per seed]}."""
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  try:
    os.makedirs(args.workdir, exist_ok=True)
  except OSError as e:
    fail(f"cannot create workdir {args.workdir}: {e.strerror}", 1)
  jobs, keys = [], []
  for cell in cells:
    spec, applied = specs.with_overrides(cell.spec, list(cell.overrides))
    folder = os.path.join(args.workdir, "runs", cell.key)
    for job in sweep.seed_jobs(spec, folder, args.seeds, applied):
      jobs.append(job)
      keys.append(cell.key)
  log_path = os.path.join(args.workdir, "runs.log")
  print(f"{len(jobs)} runs ({len(cells)} cells x {args.seeds} seeds) -> {args.workdir} "
        f"(per-run log: {log_path})", file=sys.stderr)
  with open(log_path, "a") as log_file:
    def log(msg):
      log_file.write(msg + "\n")
      log_file.flush()
    try:
      outs = sweep.run_jobs(jobs, resume=not args.no_resume, overwrite=True,
                            data_dir=args.data_dir, log=log, vmap=args.vmap_seeds,
                            shard=args.shard)
    except sweep.Preempted as e:
      fail(str(e), 143)
    except (datasets.DataError, results.WorkdirError, specs.SpecError) as e:
      fail(str(e), 1)
    except OSError as e:  # a full disk: finished runs are kept, a rerun resumes
      fail(cli.os_error_line(e), 1)
  missing = sum(out is None for out in outs)
  if missing:  # only a sharded sweep leaves runs to other workers
    index, count = args.shard
    print(f"shard {index}/{count} done; {len(outs) - missing} of {len(outs)} runs of the grid "
          "have results; the summary is written by the run that finds them all (rerun any "
          "shard, or without --shard, once every worker is done)", file=sys.stderr)
    sys.exit(0)
  grouped: dict[str, list[dict[str, Any]]] = {c.key: [] for c in cells}
  for key, out in zip(keys, outs):
    grouped[key].append(out)
  return grouped


def saved_cell(path: str, config: dict[str, Any], label: str, *, config_key: str = "config",
               no_resume: bool = False) -> dict[str, Any] | None:
  """The record a cell saved at `path` (as written: NaN -> null) if it was computed
  with `config`; None when there is none, it was computed otherwise, or --no_resume.

  For scripts that train their cells themselves rather than through run_cells.
  """
  if no_resume or not os.path.exists(path):
    return None
  with open(path) as f:
    cell = json.load(f)
  if cell.get(config_key) != config:
    return None  # other settings: recompute
  print(f"{label}: kept existing result {path}", file=sys.stderr)
  return cell


@dataclasses.dataclass(frozen=True)
class ScriptCell:
  """A cell a script computes itself (its own vmapped program, not run_cells' runs).

  `compute()` returns the cell's record, which holds `config` under the
  `script_cells(config_key=)` field; the record is saved at `path`.
  """
  key: str
  path: str
  config: dict[str, Any]
  compute: Callable[[], dict[str, Any]]


def script_cells(cells: list[ScriptCell], args: argparse.Namespace, *,
                 config_key: str = "config") -> dict[str, dict[str, Any]]:
  """{key: record} of every cell: read back where saved with the same config, else computed.

  Resumable (each record is written atomically as soon as it is computed) and
  shardable: under --shard=I/N this process computes only the cells at
  positions I, I + N, ... and returns all of them only if every other cell is
  saved already; otherwise it says how many are missing and exits 0, so that
  the last worker to finish (or any rerun) writes the summary. Cells sharing a
  path are one cell.
  """
  index, count = args.shard if args.shard else (0, 1)
  first: dict[str, ScriptCell] = {}
  for c in cells:
    first.setdefault(c.path, c)
  unique = list(first.values())
  for folder in sorted({os.path.dirname(c.path) or "." for c in unique}):
    try:  # before any training: a workdir that cannot hold the records loses no work
      os.makedirs(folder, exist_ok=True)
    except OSError as e:
      fail(f"cannot create workdir folder {folder}: {e.strerror}", 1)
  by_path: dict[str, dict[str, Any]] = {}
  for position, cell in enumerate(unique):
    saved = saved_cell(cell.path, cell.config, cell.key, config_key=config_key,
                       no_resume=args.no_resume)
    if saved is None and position % count == index:
      record = cell.compute()
      if record.get(config_key) != cell.config:
        raise ValueError(f"{cell.key}: compute() must record its config under {config_key!r}")
      try:
        results.write_json_atomic(cell.path, record)
      except OSError as e:
        fail(cli.os_error_line(e), 1)
      with open(cell.path) as f:  # as a resumed run reads it (NaN -> null)
        saved = json.load(f)
    if saved is not None:
      by_path[cell.path] = saved
  if len(by_path) < len(unique):
    print(f"shard {index}/{count} done; {len(by_path)} of {len(unique)} cells have results; "
          "the summary is written by the run that finds them all (rerun any shard, or "
          "without --shard, once every worker is done)", file=sys.stderr)
    sys.exit(0)
  return {c.key: by_path[c.path] for c in cells}


def stat(runs: list[dict[str, Any]], metric: str, transform=lambda v: v) -> dict[str, Any]:
  """leaderboard.summarize of one metric over runs (mean, sample std, 95% CI, n)."""
  values = [r["metrics"].get(metric) for r in runs]
  return leaderboard.summarize(None if v is None else transform(v) for v in values)


def curve(args: argparse.Namespace, key: str, seed: int) -> dict[str, list] | None:
  """The learning curve (columns) of cell `key`, seed `seed`."""
  return leaderboard.read_curve(os.path.join(args.workdir, "runs", key, f"seed{seed}"))


def export(args: argparse.Namespace, summary: dict[str, Any]) -> None:
  """Writes summary.json, leaderboard.json and leaderboard.html into the workdir."""
  results.write_json_atomic(os.path.join(args.workdir, "summary.json"), summary)
  board = leaderboard.build([os.path.join(args.workdir, "runs")])
  leaderboard.export(board, os.path.join(args.workdir, "leaderboard.json"),
                     os.path.join(args.workdir, "leaderboard.html"))
  print(f"summary, leaderboard.json and leaderboard.html -> {args.workdir}", file=sys.stderr)


def savefig(fig, args: argparse.Namespace, name: str) -> str:
  path = os.path.join(args.workdir, name)
  tmp = path + ".tmp.png"
  fig.savefig(tmp, bbox_inches="tight")
  os.replace(tmp, path)  # a half-written figure is never left under the final name
  plt.close(fig)
  print(f"figure -> {path}", file=sys.stderr)
  return path


def errorbar(ax, xs, stats, **kw):
  """Plots means with sample-std error bars, skipping points without a mean."""
  pts = [(x, s["mean"], s["std"] or 0.0) for x, s in zip(xs, stats) if s["mean"] is not None]
  if pts:
    x, m, e = zip(*pts)
    ax.errorbar(x, m, yerr=e, marker="o", capsize=3, **kw)


def dumps(obj: Any) -> str:
  return json.dumps(results.finite_or_none(obj), indent=2)
