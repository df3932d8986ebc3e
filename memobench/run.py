"""Runs of a spec: load and corrupt the data, train, score, write results.

`run_spec` is one run (what `python -m memobench.main` calls). `run_seeds` is
several seeds of one spec (``--seeds=K``, experiments' cells): each seed is a
run of its own, with its own workdir, checkpoints and result.json, and where
the model is small the seeds train side by side in one vmapped program
(`training.loop.train_group`; `choose_vmapped` says when). The spec is
resolved once (workload.resolve) for all its seeds.

--overwrite (and every experiment, which passes it) replaces the workdir's
previous run: unless this run resumes from checkpoints of its own, that run's
known artifacts (RUN_ARTIFACTS: result.json, metrics.jsonl, the metrics' npz
files, scores.parquet, the TensorBoard events) are removed before it starts,
so nothing of another spec is left beside the new result.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import numpy as np

from memobench import checkpoint, example_table, metrics as metrics_table, results, runtime
from memobench import schemas, specs, tb_events
from memobench import workload as workload_lib
from memobench.metrics import runner as metrics_runner, scores
from memobench.training import loop

VMAP_MODES = ("auto", "true", "false")
# `auto` vmaps seeds of a model with at most this many parameters...
SMALL_MODEL_PARAMS = 10_000_000
# ...while the group's datasets (each seed's copy plus the stacked copy the
# program reads) take at most this much memory.
MAX_GROUP_DATA_BYTES = 2 * 2**30
# What a run writes into its workdir, besides its checkpoints (which the
# Checkpointer discards itself when they belong to another run).
RUN_ARTIFACTS = (results.RESULT_FILE, results.CURVE_FILE, example_table.SCORES_FILE,
                 tb_events.TB_DIR, *sorted({m.arrays_file for m in metrics_table.TABLE
                                            if m.arrays_file}))


def run_spec(spec: specs.Spec, workdir: str, *, nonstandard: dict[str, Any] | None = None,
             data_dir: str | None = None, overwrite: bool = False,
             log: Callable[[str], None] = print,
             checkpoint_every: int = checkpoint.DEFAULT_EVERY_STEPS) -> dict[str, Any]:
  """Runs `spec` and writes workdir/result.json and metrics.jsonl; returns the result.

  Resumes from workdir/checkpoints when an earlier run of the same spec and seed
  left one (checkpoint_every <= 0: no checkpoints). In a multi-host run every
  process trains and checkpoints; only process 0 logs and writes results.
  """
  return run_seeds([spec], [workdir], nonstandard=nonstandard, data_dir=data_dir,
                   overwrite=overwrite, logs=[log], checkpoint_every=checkpoint_every,
                   vmap="false")[0]


def run_seeds(seed_specs: list[specs.Spec], workdirs: list[str], *,
              nonstandard: dict[str, Any] | None = None, data_dir: str | None = None,
              overwrite: bool = False, logs: list[Callable[[str], None]] | None = None,
              checkpoint_every: int = checkpoint.DEFAULT_EVERY_STEPS,
              vmap: str = "auto",
              on_results: Callable[[list[int], list[dict[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
  """Runs specs that differ only in their seed, one workdir each; returns their results.

  vmap: "true" trains them in one vmapped program, "false" one after another,
  "auto" decides with `choose_vmapped`. Sequential runs stop at the first
  preempted one (the remaining seeds are not started: the rerun does them), so
  fewer results than specs come back then. `on_results(indices, results)` is
  called as results are written: one at a time, or the whole vmapped group.
  """
  on_results = on_results or (lambda indices, results_: None)
  logs = logs or [print] * len(seed_specs)
  for spec in seed_specs[1:]:  # resolve() validates the first
    workload_lib.validate(spec)
  workload = workload_lib.resolve(seed_specs[0], data_dir)
  vmapped, why = choose_vmapped(vmap, workload, len(seed_specs))
  if len(seed_specs) > 1:
    logs[0](f"{len(seed_specs)} seeds of {seed_specs[0].name}: {why}")
  if not vmapped:
    out = []
    for k, (spec, workdir, log) in enumerate(zip(seed_specs, workdirs, logs)):
      run = _RunContext(workload, spec, workdir, nonstandard, overwrite, log, checkpoint_every)
      out += _train_and_write(workload, [run], vmapped=False)
      on_results([k], out[-1:])
      if out[-1]["run"]["status"] == "preempted":
        break
    return out
  runs = []
  try:
    for spec, workdir, log in zip(seed_specs, workdirs, logs):
      runs.append(_RunContext(workload, spec, workdir, nonstandard, overwrite, log,
                              checkpoint_every))
  except BaseException:
    for run in runs:
      run.close()
      run.unlock()
    raise
  out = _train_and_write(workload, runs, vmapped=True)
  on_results(list(range(len(out))), out)
  return out


def choose_vmapped(mode: str, workload: workload_lib.Workload,
                   num_seeds: int) -> tuple[bool, str]:
  """Whether `num_seeds` seeds of `spec` train in one vmapped program, and why (one line).

  auto: yes when the model's steps fuse on this backend (not convolutions on
  CPU), it has at most SMALL_MODEL_PARAMS parameters, and the group's datasets
  fit in MAX_GROUP_DATA_BYTES. Small models underfill an accelerator, so K of
  them in one program cost little more than one; on a 2-core CPU the program
  costs about what K separate ones do, and saves their K-1 compilations and
  evaluation round trips (docs/BENCHMARKS.md, "Seeds").
  """
  if mode not in VMAP_MODES:
    raise specs.SpecError(f"--vmap_seeds must be one of {', '.join(VMAP_MODES)}, got {mode!r}")
  if num_seeds == 1:
    return False, "one seed"
  if mode == "false":
    return False, "one after another (--vmap_seeds=false)"
  spec, dataset = workload.spec, workload.dataset
  if not workload.fused:
    reason = (f"one after another: {spec.model.name} is convolutional and its steps are not "
              f"fused on {jax.default_backend()}")
    if mode == "true":
      raise specs.SpecError(f"--vmap_seeds=true: {reason}")
    return False, reason
  if mode == "true":
    return True, "in one vmapped program (--vmap_seeds=true)"
  params = workload.param_count()
  data_bytes = 2 * num_seeds * sum(a.nbytes for a in (dataset.x_train, dataset.y_train,
                                                      dataset.x_test, dataset.y_test))
  if params > SMALL_MODEL_PARAMS:
    return False, (f"one after another: {params:,} parameters is not a small model "
                   f"(auto vmaps up to {SMALL_MODEL_PARAMS:,})")
  if data_bytes > MAX_GROUP_DATA_BYTES:
    return False, (f"one after another: {num_seeds} copies of {dataset.name} need "
                   f"{data_bytes / 2**30:.1f} GiB (auto vmaps up to "
                   f"{MAX_GROUP_DATA_BYTES / 2**30:.0f} GiB)")
  return True, f"in one vmapped program ({params:,} parameters per model)"


class _RunContext:
  """One run's surroundings: its workdir, data, metrics and TensorBoard writer."""

  def __init__(self, workload, spec, workdir, nonstandard, overwrite, log, checkpoint_every):
    self.spec, self.workdir = spec, workdir
    self.nonstandard = nonstandard or {}
    self.spec_hash = specs.spec_hash(spec)
    self.primary = runtime.is_primary()
    self.log = log if self.primary else (lambda _: None)
    # Every process of a multi-host run shares the workdir: process 0 holds the lock.
    self.lock = results.prepare_workdir(workdir, self.spec_hash, overwrite, seed=spec.seed,
                                        lock=self.primary)
    self.checkpointer = self.curve_writer = None
    try:
      self.checkpointer = checkpoint.Checkpointer(
          workdir, checkpoint_every, identity={"spec_hash": self.spec_hash, "seed": spec.seed},
          overwrite=overwrite)
      if overwrite and self.primary and not self.checkpointer.holds_own_checkpoint():
        removed = results.remove_artifacts(workdir, RUN_ARTIFACTS)
        if removed:
          self.log(f"--overwrite: removed the previous run's {', '.join(removed)}")
      self.data = workload.corrupted_data(spec.seed)
      self.log(f"{spec.name} (hash {self.spec_hash}, seed {spec.seed}): {spec.description}")
      self.curve_writer = tb_events.CurveWriter(os.path.join(workdir, tb_events.TB_DIR),
                                                log=self.log)
      # What spec.analysis asks for, on the workload's model.
      self.metrics = metrics_runner.MetricsRunner(spec, self.data, module=workload.module,
                                                  dataset=workload.dataset)
    except BaseException:
      self.close()
      self.unlock()
      raise

  def unlock(self) -> None:
    if self.lock is not None:
      self.lock.release()

  def member(self) -> loop.Member:
    return loop.Member(self.spec, self.data, self.log,
                        self.metrics.on_eval(self.curve_writer if self.primary else None),
                        self.checkpointer)

  def close(self) -> None:
    try:
      if self.checkpointer is not None:
        self.checkpointer.close()
    finally:
      if self.curve_writer is not None:
        self.curve_writer.close()

  def finish(self, outcome: loop.RunOutcome) -> dict[str, Any]:
    """Scores `outcome`, writes result.json and metrics.jsonl; returns the result."""
    spec, data, final = self.spec, self.data, outcome.final
    metrics = scores.standard_scores(
        train_predictions=final.train_predictions, test_predictions=final.test_predictions,
        y_train=np.asarray(data.y_train), y_train_original=np.asarray(data.y_train_original),
        label_changed=np.asarray(data.label_changed), y_test=np.asarray(data.y_test),
        steps_to_fit=outcome.steps_to_fit, steps_per_epoch=outcome.schedule.steps_per_epoch,
        status=outcome.status, steps=final.step,
        train_loss=final.train_eval_loss, test_loss=final.test_loss)
    result = results.make_result(
        spec_name=spec.name, spec_hash=self.spec_hash, resolved_spec=dataclasses.asdict(spec),
        nonstandard=self.nonstandard, seed=spec.seed, status=outcome.status,
        steps=final.step, epochs=final.epoch, metrics=metrics,
        timing={"wall_s": outcome.wall_s, "compile_s": outcome.compile_s,
                "images_per_sec": outcome.images_per_sec,
                "time_to_fit_s": outcome.time_to_fit_s},
        run_info={"preemption_count": outcome.preemption_count,
                  "resumed_from_step": outcome.resumed_from_step,
                  "vmapped_seeds": outcome.vmapped_seeds,
                  "checkpoint": outcome.checkpoint} |
                 ({"members_per_slice": outcome.members_per_slice}
                  if outcome.vmapped_seeds else {}))
    memorization = self.metrics.finish(outcome, self.workdir if self.primary else None,
                                       self.log)
    if memorization:
      result["memorization"] = memorization
    schemas.validate(results.finite_or_none(result), "result")
    if self.primary:
      # The curve is rebuilt whole from the checkpointed rows on every resume.
      results.write_curve(self.workdir, [e.curve_row() for e in outcome.curve])
      results.write_json_atomic(os.path.join(self.workdir, results.RESULT_FILE), result)
    m = metrics
    self.log(f"{outcome.status}: train acc {m['train_accuracy']:.4f}, test acc "
             f"{m['test_accuracy']:.4f}, steps to fit {m['steps_to_fit']}, "
             f"{outcome.wall_s:.1f}s -> {os.path.join(self.workdir, results.RESULT_FILE)}")
    return result


def _train_and_write(workload: workload_lib.Workload, runs: list[_RunContext],
                     vmapped: bool) -> list[dict[str, Any]]:
  try:
    try:
      try:
        outcomes = loop.train_group(workload, [r.member() for r in runs], vmapped=vmapped)
      except checkpoint.CheckpointMismatchError as e:
        raise results.WorkdirError(str(e)) from None
    finally:
      for run in runs:
        run.close()
    return [run.finish(outcome) for run, outcome in zip(runs, outcomes)]
  finally:
    for run in runs:
      run.unlock()
