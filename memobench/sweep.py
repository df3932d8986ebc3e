"""Sweeps: many runs of `run.run_spec`, resumable, with a progress bar and ETA.

Used by ``python -m memobench.main --seeds=K`` and by the scripts in
experiments/. A job whose workdir already holds a result of the same spec hash,
seed and overrides is not rerun (so an interrupted sweep resumes where it
stopped); its result is read back instead. Consecutive jobs that are seeds of
one spec train together (`run.run_seeds`: one vmapped program for small models).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable, TextIO

from memobench import results, specs


@dataclasses.dataclass(frozen=True)
class Job:
  spec: specs.Spec
  workdir: str
  nonstandard: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def label(self) -> str:
    return f"{self.spec.name} seed {self.spec.seed}"


class Progress:
  """A text progress bar with ETA (mean time per run so far x runs left).

  On a terminal it redraws one line; otherwise (logs, pipes) it prints a line
  per update.
  """

  def __init__(self, total: int, stream: TextIO | None = None, width: int = 24,
               clock: Callable[[], float] = time.monotonic):
    self.total, self.done, self.width = total, 0, width
    self.stream = stream if stream is not None else sys.stderr
    self.clock = clock
    self.start = clock()
    self.timed_runs, self.timed_s = 0, 0.0

  def eta_s(self) -> float | None:
    if not self.timed_runs:
      return None
    return self.timed_s / self.timed_runs * (self.total - self.done)

  def line(self, note: str = "") -> str:
    filled = int(self.width * self.done / max(self.total, 1))
    eta = self.eta_s()
    return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} runs | "
            f"elapsed {results.format_duration(self.clock() - self.start)} | "
            f"ETA {'?' if eta is None else results.format_duration(eta)}"
            + (f" | {note}" if note else ""))

  def advance(self, seconds: float | None, note: str = "") -> None:
    """One run finished, taking `seconds` (None: it was resumed, not timed)."""
    self.done += 1
    if seconds is not None:
      self.timed_runs += 1
      self.timed_s += seconds
    tty = getattr(self.stream, "isatty", lambda: False)()
    end = "\n" if not tty or self.done == self.total else ""
    print(("\r" if tty else "") + self.line(note), end=end, file=self.stream, flush=True)


def existing_result(job: Job) -> dict[str, Any] | None:
  """The result already in the job's workdir, if it is this very run."""
  path = os.path.join(job.workdir, results.RESULT_FILE)
  try:
    with open(path) as f:
      old = json.load(f)
    same = (old["spec"]["hash"] == specs.spec_hash(job.spec)
            and old["run"]["seed"] == job.spec.seed
            and old["spec"]["nonstandard"] == job.nonstandard
            and old["run"]["status"] != "preempted")
  except (OSError, ValueError, KeyError, TypeError):
    return None
  return old if same else None


class Preempted(Exception):
  """A run of the sweep was preempted (SIGTERM); the sweep stopped after checkpointing it."""


def _group_key(job: Job) -> str:
  """Jobs with equal keys are seeds of one spec and can train as one group."""
  return json.dumps([specs.to_dict(dataclasses.replace(job.spec, seed=0)), job.nonstandard],
                    sort_keys=True, default=str)


def groups(jobs: list[Job]) -> list[list[int]]:
  """Indices of `jobs`, consecutive runs of one spec (differing seeds) put together."""
  out: list[list[int]] = []
  last_key, last_seeds = None, set()  # of out[-1]: linear in len(jobs)
  for i, job in enumerate(jobs):
    key = _group_key(job)
    if out and key == last_key and job.spec.seed not in last_seeds:
      out[-1].append(i)
    else:
      out.append([i])
      last_key, last_seeds = key, set()
    last_seeds.add(job.spec.seed)
  return out


def shard_of(num_jobs: int, shard: tuple[int, int] | None) -> list[int]:
  """The job indices that shard (INDEX, COUNT) runs: every COUNT-th from INDEX.

  A pure function of the job list, so every worker of a sweep (a SLURM array
  task, a Kubernetes Indexed Job's pod, a TPU-VM host) computes the same
  partition; each job belongs to exactly one shard.
  """
  if shard is None:
    return list(range(num_jobs))
  index, count = shard
  return list(range(index, num_jobs, count))


def run_jobs(jobs: list[Job], *, resume: bool = True, overwrite: bool = False,
             data_dir: str | None = None, log: Callable[[str], None] | None = None,
             progress_stream: TextIO | None = None, vmap: str = "auto",
             checkpoint_every: int | None = None,
             shard: tuple[int, int] | None = None) -> list[dict[str, Any] | None]:
  """Runs every job (or the share of `shard`, see `shard_of`); returns the results in order.

  With a shard, the other shards' jobs are not run: their entries are their
  existing results, or None where they have none yet.

  Consecutive jobs that are seeds of one spec run together through
  `run.run_seeds`, in one vmapped program where `vmap` (auto | true | false)
  allows. A preempted run (SIGTERM) stops the sweep: its checkpoint is written,
  later jobs are not started, and `Preempted` is raised; rerunning resumes.
  """
  from memobench import checkpoint, run  # pylint: disable=import-outside-toplevel  (JAX start-up)
  log = log or (lambda msg: None)
  if checkpoint_every is None:
    checkpoint_every = checkpoint.DEFAULT_EVERY_STEPS
  mine = shard_of(len(jobs), shard)
  progress = Progress(len(mine), stream=progress_stream)
  out: list[dict[str, Any] | None] = [None] * len(jobs)
  if shard is not None:
    for i in sorted(set(range(len(jobs))) - set(mine)):
      out[i] = existing_result(jobs[i])
  for group in groups([jobs[i] for i in mine]):
    group = [mine[k] for k in group]
    todo = []
    for i in group:
      out[i] = existing_result(jobs[i]) if resume else None
      if out[i] is not None:
        progress.advance(None, f"{jobs[i].label}: kept existing result")
      else:
        todo.append(i)
    if not todo:
      continue
    prefix = (lambda i: f"{jobs[i].label}: ") if len(todo) > 1 else (lambda i: "")
    clock = [time.monotonic()]

    def on_results(members: list[int], results_: list[dict[str, Any]]) -> None:
      # Several at once from a vmapped group: they share its time.
      seconds = (time.monotonic() - clock[0]) / len(members)
      clock[0] = time.monotonic()
      for k, result in zip(members, results_):
        out[todo[k]] = result
        progress.advance(seconds, f"{jobs[todo[k]].label}: {result['run']['status']}")

    done = run.run_seeds(
        [jobs[i].spec for i in todo], [jobs[i].workdir for i in todo],
        nonstandard=jobs[todo[0]].nonstandard, data_dir=data_dir, overwrite=overwrite,
        logs=[(lambda msg, p=prefix(i): log(p + msg)) for i in todo],
        checkpoint_every=checkpoint_every, vmap=vmap, on_results=on_results)
    if any(r["run"]["status"] == "preempted" for r in done):
      raise Preempted(f"preempted during {jobs[todo[0]].spec.name}: checkpointed; rerun the "
                      "same command to resume")
  return out


def seed_jobs(spec: specs.Spec, workdir: str, seeds: int,
              nonstandard: dict[str, Any] | None = None) -> list[Job]:
  """`seeds` jobs of `spec` with seeds spec.seed, spec.seed+1, ...; one workdir/seed{N} each."""
  return [Job(dataclasses.replace(spec, seed=spec.seed + i),
              os.path.join(workdir, f"seed{spec.seed + i}"), dict(nonstandard or {}))
          for i in range(seeds)]
