"""One run of a spec: load and corrupt the data, train, score, write results.

`run_spec` is what `python -m memobench.main` calls; experiments and the
leaderboard's multi-seed runs call it too.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import numpy as np

from memobench import checkpoint, distributed, results, schemas, scores, specs, tb_events, train
from memobench import analysis


def run_spec(spec: specs.Spec, workdir: str, *, nonstandard: dict[str, Any] | None = None,
             data_dir: str | None = None, overwrite: bool = False,
             log: Callable[[str], None] = print,
             checkpoint_every: int = checkpoint.DEFAULT_EVERY_STEPS) -> dict[str, Any]:
  """Runs `spec` and writes workdir/result.json and metrics.jsonl; returns the result.

  Resumes from workdir/checkpoints when an earlier run of the same spec and seed
  left one (checkpoint_every <= 0: no checkpoints). In a multi-host run every
  process trains and checkpoints; only process 0 logs and writes results.
  """
  specs.validate(spec)
  spec_hash = specs.spec_hash(spec)
  primary = distributed.is_primary()
  if not primary:
    log = lambda _: None  # pylint: disable=unnecessary-lambda-assignment
  results.prepare_workdir(workdir, spec_hash, overwrite)
  data = train.prepare_data(spec, data_dir)
  log(f"{spec.name} (hash {spec_hash}, seed {spec.seed}): {spec.description}")
  curve_writer = tb_events.CurveWriter(os.path.join(workdir, tb_events.TB_DIR), log=log)
  run_analysis = analysis.RunAnalysis(spec, data)  # spec.analysis: per-example scores
  try:
    checkpointer = checkpoint.Checkpointer(
        workdir, checkpoint_every, identity={"spec_hash": spec_hash, "seed": spec.seed},
        overwrite=overwrite)
    try:
      outcome = train.train(spec, data, log=log,
                            on_eval=run_analysis.hooks(curve_writer if primary else None),
                            checkpointer=checkpointer)
    except checkpoint.CheckpointMismatchError as e:
      raise results.WorkdirError(str(e)) from None
    finally:
      checkpointer.close()
  finally:
    curve_writer.close()

  final = outcome.final
  metrics = scores.standard_scores(
      train_predictions=final.train_predictions, test_predictions=final.test_predictions,
      y_train=np.asarray(data.y_train), y_train_original=np.asarray(data.y_train_original),
      label_changed=np.asarray(data.label_changed), y_test=np.asarray(data.y_test),
      steps_to_fit=outcome.steps_to_fit, steps_per_epoch=outcome.schedule.steps_per_epoch,
      train_loss=final.train_eval_loss, test_loss=final.test_loss)
  result = results.make_result(
      spec_name=spec.name, spec_hash=spec_hash, resolved_spec=dataclasses.asdict(spec),
      nonstandard=nonstandard or {}, seed=spec.seed, status=outcome.status,
      steps=final.step, epochs=final.epoch, metrics=metrics,
      timing={"wall_s": outcome.wall_s, "compile_s": outcome.compile_s,
              "images_per_sec": outcome.images_per_sec,
              "time_to_fit_s": outcome.time_to_fit_s},
      run_info={"preemption_count": outcome.preemption_count,
                "resumed_from_step": outcome.resumed_from_step,
                "checkpoint": outcome.checkpoint})
  memorization = run_analysis.finish(outcome, workdir if primary else None, log)
  if memorization:
    result["memorization"] = memorization
  schemas.validate(results.finite_or_none(result), "result")
  if primary:
    # The curve is rebuilt whole from the checkpointed rows on every resume.
    results.write_curve(workdir, [e.curve_row() for e in outcome.curve])
    results.write_json_atomic(os.path.join(workdir, results.RESULT_FILE), result)
  m = metrics
  log(f"{outcome.status}: train acc {m['train_accuracy']:.4f}, test acc "
      f"{m['test_accuracy']:.4f}, steps to fit {m['steps_to_fit']}, "
      f"{outcome.wall_s:.1f}s -> {os.path.join(workdir, results.RESULT_FILE)}")
  return result
