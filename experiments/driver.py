"""The one driver of every experiment: grid, run, resume, shard, summarize, plot, export.

An experiment is a declaration (`Experiment`): a frozen config of typed knobs
with a `--quick` variant, `grid(config) -> cells`, and pure
`summarize(config, records) -> summary`, `plot(config, summary) -> figures` and
`report(config, summary) -> text`. The driver owns everything they share:

- the command line: `--quick`, `--set knob=value` and one `--<knob>=value` flag
  per knob (typed, bounded: experiments/knobs.py), `--workdir`, `--data_dir`,
  `--no_resume`, `--vmap_seeds`, `--shard=I/N`, `--print_config`, `--list_cells`;
- running the cells (experiments/cells.py): spec cells through the runner, a
  cell's seeds together in one vmapped program; computed cells by their compute
  function, after the cells they need;
- resume: a spec run is kept when its result.json has the same spec hash, seed
  and overrides; a computed cell when its record has the same config hash. A
  changed knob recomputes exactly the cells that read it;
- shards: cell i of the grid belongs to shard i mod N, so a spec cell's seeds
  stay on one worker and train vmapped; a cell that needs others is computed by
  whichever worker first finds its inputs ready (claimed, so once); the worker
  that finds every record writes the summary, figures, leaderboard and table;
- preemption: SIGTERM stops the run at the next checkpoint (spec cells) or
  discards the cell being computed (computed cells); exit 143, the rerun
  continues. Bad input is one line and a non-zero exit.

An experiment script ends with `if __name__ == "__main__": driver.main(EXPERIMENT)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any, Callable

from experiments import cells as cells_lib, knobs, verdicts
from experiments.cells import ComputedCell, SpecCell
from memobench import cli, results

# The run options: flags that choose where and how a config runs, never what it computes.
OPTIONS = ("quick", "workdir", "data_dir", "no_resume", "vmap_seeds", "shard", "set",
           "print_config", "list_cells", "records_out")
IDENTITY_FILE = "experiment.json"


@dataclasses.dataclass(frozen=True)
class Experiment:
  """What an experiment declares; the driver does the rest."""
  name: str                                        # e.g. "zhang2017_fig1"
  doc: str                                         # the module docstring (its first line is --help's)
  config: Any                                      # the default config (a frozen dataclass)
  quick: Any                                       # the --quick variant of it
  grid: Callable[[Any], list[cells_lib.Cell]]
  summarize: Callable[[Any, dict[str, Any]], dict[str, Any]]
  plot: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None  # {file name: figure}
  report: Callable[[Any, dict[str, Any]], str] | None = None          # printed on stdout
  check: Callable[[Any], None] | None = None       # raises knobs.KnobError on a bad config


@dataclasses.dataclass(frozen=True)
class Options:
  workdir: str
  data_dir: str | None = None
  resume: bool = True
  vmap: str = "auto"
  shard: tuple[int, int] | None = None
  log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
  # Also write the records and the summary made of them here (a test's recorded cells).
  records_out: str | None = None
  assignments: tuple[str, ...] = ()   # the knobs set on the command line, for records_out
  quick: bool = False


class Failure(Exception):
  """Stops the experiment with one line on stderr and exit `code`."""

  def __init__(self, message: str, code: int):
    super().__init__(message)
    self.code = code


class Incomplete(Exception):
  """This shard is done, but other shards' cells have no record yet (exit 0)."""


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def knob_names(config: Any) -> list[str]:
  return [name for name in knobs.fields(type(config)) if name != "quick"]


def check_config(experiment: Experiment, config: Any) -> None:
  """Bounds of every knob, the seed bound, then the experiment's own checks (KnobError)."""
  knobs.check(config)
  from memobench import specs  # pylint: disable=import-outside-toplevel
  seeds = getattr(config, "seeds", None)
  if isinstance(seeds, int) and not 1 <= seeds <= specs.MAX_SEEDS:  # as main's --seeds
    raise knobs.KnobError(f"seeds={seeds}: expected an integer in [1, {specs.MAX_SEEDS}]")
  if experiment.check is not None:
    experiment.check(config)


def configure(experiment: Experiment, quick: bool, assignments: list[str]) -> Any:
  base = experiment.quick if quick else experiment.config
  config = knobs.with_overrides(base, assignments)
  check_config(experiment, config)
  return config


def default_workdir(experiment: Experiment, config: Any, quick: bool) -> str:
  parts = ["/tmp/memobench/experiments", experiment.name + ("-quick" if quick else "")]
  if isinstance(getattr(config, "dataset", None), str):
    parts.append(config.dataset)
  return os.path.join(*parts)


# ---------------------------------------------------------------------------
# Running a grid
# ---------------------------------------------------------------------------


def check_grid(grid: list[cells_lib.Cell]) -> None:
  seen: set[str] = set()
  for cell in grid:
    if not cell.key or "/" in cell.key or cell.key.startswith("."):
      raise ValueError(f"cell key {cell.key!r}: expected a non-empty name without '/'")
    if cell.key in seen:
      raise ValueError(f"two cells named {cell.key!r}")
    missing = [k for k in cell.needs if k not in seen]
    if missing:
      raise ValueError(f"cell {cell.key!r} needs {missing}, which come later in the grid "
                       "or not at all (a grid lists a cell after the cells it needs)")
    seen.add(cell.key)


class Run:
  """One invocation of an experiment's grid in a workdir (one shard of it, or all)."""

  def __init__(self, experiment: Experiment, config: Any, options: Options):
    self.experiment, self.config, self.options = experiment, config, options
    self.grid = experiment.grid(config)
    check_grid(self.grid)
    self.store = cells_lib.Store(options.workdir)
    self.hashes: dict[str, str] = {}
    for cell in self.grid:
      if isinstance(cell, SpecCell):  # a bad spec is one line before anything trains
        from memobench import specs, workload  # pylint: disable=import-outside-toplevel
        workload.validate(specs.with_overrides(cell.spec, list(cell.overrides))[0])
      self.hashes[cell.key] = (cells_lib.spec_hash(cell) if isinstance(cell, SpecCell)
                               else cells_lib.computed_hash(cell, self.hashes))
    index, count = options.shard or (0, 1)
    self.mine = {cell.key for i, cell in enumerate(self.grid) if i % count == index}

  # -- records ----------------------------------------------------------------

  def _jobs(self, cell: SpecCell):
    from memobench import specs, sweep  # pylint: disable=import-outside-toplevel
    spec, applied = specs.with_overrides(cell.spec, list(cell.overrides))
    return sweep.seed_jobs(spec, self.run_folder(cell.key), cell.seeds, applied)

  def run_folder(self, key: str) -> str:
    return os.path.join(self.options.workdir, "runs", key)

  def record(self, cell: cells_lib.Cell) -> Any | None:
    """The cell's saved record if it is this very cell's (None if missing or stale)."""
    if isinstance(cell, ComputedCell):
      return self.store.read(cell.key, self.hashes[cell.key])
    from memobench import leaderboard, sweep  # pylint: disable=import-outside-toplevel
    out = []
    for job in self._jobs(cell):
      result = sweep.existing_result(job)
      if result is None:
        return None
      out.append({**result, "curve": leaderboard.read_curve(job.workdir)})
    return out

  def records(self) -> dict[str, Any]:
    return {cell.key: self.record(cell) for cell in self.grid}

  def input(self, key: str) -> cells_lib.Input | None:
    cell = next(c for c in self.grid if c.key == key)
    record = self.record(cell)
    if record is None:
      return None
    folder = (self.store.folder(key) if isinstance(cell, ComputedCell)
              else self.run_folder(key))
    return cells_lib.Input(key, record, folder, self.hashes[key])

  # -- running ----------------------------------------------------------------

  def run_spec_cells(self) -> None:
    from memobench import sweep  # pylint: disable=import-outside-toplevel
    todo = [c for c in self.grid if isinstance(c, SpecCell) and c.key in self.mine]
    if not todo:
      return
    jobs = [job for cell in todo for job in self._jobs(cell)]
    log_path = os.path.join(self.options.workdir, "runs.log")
    self.options.log(f"{len(jobs)} runs ({len(todo)} spec cells) -> {self.options.workdir} "
                     f"(per-run log: {log_path})")
    with open(log_path, "a") as log_file:
      def log(msg):
        log_file.write(msg + "\n")
        log_file.flush()
      try:
        sweep.run_jobs(jobs, resume=self.options.resume, overwrite=True,
                       data_dir=self.options.data_dir, log=log, vmap=self.options.vmap)
      except sweep.Preempted as e:
        raise Failure(str(e), 143) from None

  def run_computed_cells(self) -> None:
    for cell in self.grid:
      if not isinstance(cell, ComputedCell):
        continue
      if cell.key not in self.mine and not cell.needs:
        continue  # another shard's
      self._compute(cell)

  def _compute(self, cell: ComputedCell) -> None:
    log = self.options.log
    if self.options.resume and self.record(cell) is not None:
      log(f"{cell.key}: kept existing record")
      return
    inputs = {k: self.input(k) for k in cell.needs}
    waiting = [k for k, v in inputs.items() if v is None]
    if waiting:
      log(f"{cell.key}: waits for {', '.join(waiting)} (another shard's)")
      return
    with cells_lib.Claim(self.store, cell.key) as claim:
      if not claim.acquire():
        log(f"{cell.key}: being computed by another worker")
        return
      if self.options.resume and self.record(cell) is not None:
        log(f"{cell.key}: kept existing record")  # finished while we looked
        return
      partial = self.store.partial_folder(cell.key)
      ctx = cells_lib.Context(cell.key, partial, inputs, self.options.data_dir,
                              self.options.vmap, log=lambda msg: log(f"{cell.key}: {msg}"))
      log(f"{cell.key}: computing")
      t0, c0 = time.perf_counter(), time.process_time()
      record = cell.compute(cell.config, ctx)
      if preemption_requested():
        raise Failure(f"preempted while computing cell {cell.key} (not saved); rerun the "
                      "same command to continue", 143)
      self.store.commit(cell.key, partial, self.hashes[cell.key], cell.config, record)
      log(f"{cell.key}: done in {time.perf_counter() - t0:.0f} s "
          f"({time.process_time() - c0:.0f} CPU-s)")

  def execute(self) -> dict[str, Any]:
    """Runs this shard's cells; returns every record, or raises Incomplete."""
    self.run_spec_cells()
    self.run_computed_cells()
    # Read again after our own cells: the other shards may have finished meanwhile.
    records = self.records()
    missing = [k for k, v in records.items() if v is None]
    if missing:
      index, count = self.options.shard or (0, 1)
      raise Incomplete(
          f"shard {index}/{count} done; {len(records) - len(missing)} of {len(records)} cells "
          f"have records (missing: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''});"
          " the summary is written by the run that finds them all (rerun any shard, or "
          "without --shard, once every worker is done)")
    return records


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------


def save_figures(figures: dict[str, Any], workdir: str, log) -> None:
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  for name, fig in figures.items():
    path = os.path.join(workdir, name)
    tmp = os.path.join(workdir, f".{name}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    os.replace(tmp, path)  # never a half-written figure under the final name
    plt.close(fig)
    log(f"figure -> {path}")


def export(run: Run, records: dict[str, Any]) -> dict[str, Any]:
  """Summary, figures, leaderboard (if the grid has spec runs); returns the summary."""
  experiment, config, workdir = run.experiment, run.config, run.options.workdir
  summary = experiment.summarize(config, records)
  if experiment.plot is not None:
    save_figures(experiment.plot(config, summary), workdir, run.options.log)
  results.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
  written = ["summary.json"]
  if any(isinstance(c, SpecCell) for c in run.grid):
    from memobench import leaderboard  # pylint: disable=import-outside-toplevel
    board = leaderboard.build([os.path.join(workdir, "runs")])
    leaderboard.export(board, os.path.join(workdir, "leaderboard.json"),
                       os.path.join(workdir, "leaderboard.html"))
    written += ["leaderboard.json", "leaderboard.html"]
  run.options.log(f"{', '.join(written)} -> {workdir}")
  if run.options.records_out:
    save_records(run.options.records_out, experiment, run.options, records, summary)
  return summary


def save_records(path: str, experiment: Experiment, options: Options,
                 records: dict[str, Any], summary: dict[str, Any]) -> None:
  """The input and output of `summarize` (gzipped JSON if `path` ends in .gz): with
  `load_records` a test runs summarize and plot on recorded cells, without training."""
  import gzip  # pylint: disable=import-outside-toplevel
  doc = results.finite_or_none({"experiment": experiment.name, "quick": options.quick,
                                "assignments": list(options.assignments),
                                "records": records, "summary": summary})
  text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
  data = gzip.compress(text.encode(), mtime=0) if path.endswith(".gz") else text.encode()
  results.write_atomic(path, data)
  options.log(f"records -> {path}")


def load_records(experiment: Experiment, path: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
  """(config, records, summary) saved by `--records_out=path`."""
  import gzip  # pylint: disable=import-outside-toplevel
  with open(path, "rb") as f:
    data = f.read()
  doc = json.loads(gzip.decompress(data) if path.endswith(".gz") else data)
  if doc["experiment"] != experiment.name:
    raise ValueError(f"{path} holds records of {doc['experiment']}, not {experiment.name}")
  return configure(experiment, doc["quick"], doc["assignments"]), doc["records"], doc["summary"]


def _owner(path: str, workdir: str) -> str | None:
  """The experiment named in a workdir's JSON file `path` (None if there is none)."""
  try:
    with open(path) as f:
      owner = json.load(f).get("experiment")
  except FileNotFoundError:
    return None
  except (OSError, ValueError, AttributeError):
    raise Failure(f"{path} is not an experiment's file: is {workdir} another program's? "
                  "choose another --workdir", 1) from None
  return owner if isinstance(owner, str) else "an unknown experiment"


def claim_workdir(workdir: str, name: str) -> None:
  """Creates the workdir; refuses one that holds another experiment's results
  (named in its experiment.json or, for a workdir older than that file, its summary.json)."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise Failure(f"cannot create workdir {workdir}: {e.strerror}", 1) from None
  path = os.path.join(workdir, IDENTITY_FILE)
  owner = (_owner(path, workdir)
           or _owner(os.path.join(workdir, "summary.json"), workdir))
  if owner is not None and owner != name:
    raise Failure(f"{workdir} holds the results of experiment {owner!r}, not {name!r}; "
                  "choose another --workdir", 1)
  if not os.path.exists(path):
    results.write_json_atomic(path, {"experiment": name})


def run_experiment(experiment: Experiment, config: Any, options: Options
                   ) -> dict[str, Any] | None:
  """Runs (this shard of) the grid; with every record in, writes and returns the summary.

  Returns None when other shards' cells are still missing. Raises Failure.
  """
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  claim_workdir(options.workdir, experiment.name)
  try:
    run = Run(experiment, config, options)
  except specs.SpecError as e:
    raise Failure(str(e), 2) from None
  try:
    records = run.execute()
  except Incomplete as e:
    options.log(str(e))
    return None
  except (datasets.DataError, results.WorkdirError, specs.SpecError) as e:
    raise Failure(str(e), 1) from None
  except OSError as e:  # a full disk: finished cells are kept, a rerun resumes
    raise Failure(cli.os_error_line(e), 1) from None
  return export(run, records)


# ---------------------------------------------------------------------------
# Preemption
# ---------------------------------------------------------------------------


def preemption_requested() -> bool:
  from memobench import signals  # pylint: disable=import-outside-toplevel
  return signals.sigterm_received()


def _watch_sigterm() -> None:
  """From now on a SIGTERM is remembered (the training loop's own watcher records it too)."""
  from memobench import signals  # pylint: disable=import-outside-toplevel
  signal.signal(signal.SIGTERM, lambda signum, frame: signals.note_sigterm())


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
  """argparse, but a bad command line is one line on stderr (exit 2), not the usage text."""

  def error(self, message):
    raise Failure(message, 2)


def parser(experiment: Experiment) -> argparse.ArgumentParser:
  p = _Parser(prog=f"{experiment.name}.py", description=experiment.doc.split("\n\n")[0],
              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true",
                 help="the smoke-test variant (seconds): tiny budgets, non-standard results")
  p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                 help="set a knob (repeatable); the same as --KNOB=VALUE")
  p.add_argument("--workdir", default=None,
                 help="results, figures and records (default /tmp/memobench/experiments/"
                      f"{experiment.name}[-quick][/<dataset>])")
  p.add_argument("--data_dir", default=None, help="TFDS data dir (real datasets)")
  p.add_argument("--no_resume", action="store_true",
                 help="recompute cells whose record already exists")
  p.add_argument("--vmap_seeds", choices=("auto", "true", "false"), default="auto",
                 help="train a spec cell's seeds in one vmapped program (auto: small models)")
  p.add_argument("--shard", default=None, metavar="I/N",
                 help="run only cells I, I+N, ... of the grid, so N workers (a SLURM array, an "
                      "Indexed Job, TPU-VM hosts) on one shared --workdir run each once; the "
                      "summary is written by the worker that finds every record")
  p.add_argument("--print_config", action="store_true",
                 help="print the resolved config as JSON and exit")
  p.add_argument("--list_cells", action="store_true",
                 help="list the grid's cells (kind, shard, whether a record is kept) and exit")
  p.add_argument("--records_out", default=None, metavar="FILE",
                 help="also write every cell's record and the summary made of them to FILE "
                      "(.json or .json.gz): summarize and plot can then run without training")
  group = p.add_argument_group("knobs (each also --set KNOB=VALUE)")
  for name, (f, annotation) in knobs.fields(type(experiment.config)).items():
    if name == "quick":
      continue
    if name in OPTIONS:
      raise ValueError(f"{experiment.name}: knob {name!r} clashes with a driver option")
    default = knobs.as_text(getattr(experiment.config, name))
    quick = knobs.as_text(getattr(experiment.quick, name))
    shown = default if default == quick else f"{default}; {quick} with --quick"
    group.add_argument(f"--{name}", default=None, metavar="VALUE",
                       help=f"{f.metadata.get('help', '')} ({knobs.type_name(annotation)}; "
                            f"default {shown})".strip())
  return p


def parse(experiment: Experiment, argv: list[str]) -> tuple[Any, Options, argparse.Namespace]:
  args = parser(experiment).parse_args(argv)
  assignments = [f"{name}={getattr(args, name)}" for name in knob_names(experiment.config)
                 if getattr(args, name) is not None] + list(args.set)
  config = configure(experiment, args.quick, assignments)
  try:
    shard = cli.parse_shard(args.shard)
  except ValueError as e:
    raise Failure(str(e), 2) from None
  workdir = args.workdir or default_workdir(experiment, config, args.quick)
  return config, Options(workdir, args.data_dir, not args.no_resume, args.vmap_seeds, shard,
                         records_out=args.records_out, assignments=tuple(assignments),
                         quick=args.quick), args


def list_cells(experiment: Experiment, config: Any, options: Options) -> str:
  run = Run(experiment, config, options)
  lines = []
  for i, cell in enumerate(run.grid):
    kind = (f"spec {cell.spec.name} x {cell.seeds} seed(s)" if isinstance(cell, SpecCell)
            else f"computed {cell.compute.__name__}"
            + (f" <- {', '.join(cell.needs)}" if cell.needs else ""))
    state = "kept" if run.record(cell) is not None else "to run"
    count = (options.shard or (0, 1))[1]
    lines.append(f"{cell.key:32s} shard {i % count}/{count}  {state:7s} {kind}")
  return "\n".join(lines)


def main(experiment: Experiment, argv: list[str] | None = None) -> None:
  """The command line of an experiment script; exits with its status."""
  _watch_sigterm()
  program = experiment.name
  try:
    config, options, args = parse(experiment, sys.argv[1:] if argv is None else argv)
    if args.print_config:
      print(json.dumps(knobs.canonical(config), indent=2))
      return
    if args.list_cells:
      print(list_cells(experiment, config, options))
      return
    summary = run_experiment(experiment, config, options)
  except knobs.KnobError as e:
    cli.fail(program, str(e), 2)
  except Failure as e:
    cli.fail(program, str(e), e.code)
  if summary is not None and experiment.report is not None:
    print(experiment.report(config, summary))
  if summary is not None:
    print("\n".join(verdicts.lines(summary)))
