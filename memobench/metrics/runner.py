"""Runs the metric table (memobench/metrics/__init__.py) over one run; knows no metric by name.

run.run_spec makes a `MetricsRunner` before training, passes `on_eval(...)` as
the training loop's on_eval callback, and calls `finish` after training: the
enabled metrics' sections, in table order, become result.json's `memorization`
section (with `timing_s`), their per-example arrays go to .npz files in the
workdir, each with `label_changed` (the corruption record) so that the scores
can be judged against it offline, and `spec_hash` (whose scores they are),
and their headlines make one log line. The
same per-example arrays also go to workdir/scores.parquet, the per-example
score table of memobench/example_table.py (one row per example and array).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from memobench import example_table, metrics, prng, results, runtime, specs
from memobench.metrics import base
from memobench.training.loop import Resumable


class OnEval:
  """The loop's on_eval callback: other hooks first, then every metric's tracker.

  Resumable: its checkpoint state is the resumable trackers' state dicts merged
  into one flat dict. With learning dynamics the only tracker, that is exactly
  the dict checkpoints held before the metric table, so those still resume.
  """

  def __init__(self, hooks: list[Callable], trackers: list[base.Tracker]):
    self.hooks, self.trackers = hooks, trackers
    self.resumable = [t for t in trackers if isinstance(t, Resumable)]

  def __call__(self, evaluation) -> None:
    for hook in self.hooks:
      hook(evaluation)
    for tracker in self.trackers:
      tracker(evaluation)

  def checkpoint_state(self) -> dict[str, Any] | None:
    if not self.resumable:
      return None  # the loop checkpoints no tracker state
    merged: dict[str, Any] = {}
    for tracker in self.resumable:
      state = tracker.checkpoint_state()
      clash = merged.keys() & state.keys()
      if clash:
        raise ValueError(f"metric trackers share checkpoint keys {sorted(clash)}")
      merged.update(state)
    return merged

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    for tracker in self.resumable:
      tracker.restore_checkpoint_state({k: tree[k] for k in tracker.checkpoint_state()})


class MetricsRunner:
  """What the metric table asks of one run: trackers during training, finish steps after it."""

  def __init__(self, spec: specs.Spec, data, *, module: nn.Module,
               table: Sequence[base.Metric] | None = None, dataset=None):
    """`data`: the run's corrupted data; `module`: the flax module trained (the
    workload's); `table`: the metrics (default: memobench.metrics.TABLE);
    `dataset`: the data.Dataset loaded, for its per-example input scales."""
    self.spec, self.module, self.dataset = spec, module, dataset
    self.input_scale = {k: getattr(dataset, k, None)
                        for k in ("input_scale_train", "input_scale_test")}
    self.table = tuple(metrics.TABLE if table is None else table)
    # Built for every metric that has a tracker: a metric may track while it
    # is not reported (learning dynamics does, for one checkpoint structure).
    self.trackers: dict[str, base.Tracker] = {}
    for metric in self.table:
      tracker = metric.tracker(spec, data) if metric.tracker is not None else None
      if tracker is not None:
        if hasattr(tracker, "set_input_scale"):  # a tracker that perturbs inputs
          tracker.set_input_scale(**self.input_scale)
        self.trackers[metric.section] = tracker

  def on_eval(self, *hooks: Callable | None) -> OnEval:
    """The on_eval callback of the training loop: `hooks` (None skipped), then the trackers."""
    return OnEval([h for h in hooks if h is not None], list(self.trackers.values()))

  def finish(self, outcome, workdir: str | None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """The result.json `memorization` section; writes the npz files when `workdir` is set."""
    if outcome.status == "preempted":
      return {}  # the resumed run reports it; a preempted process has little time left
    enabled = metrics.enabled(self.spec, self.table)
    if not enabled:
      return {}
    context = self._context(outcome)
    section: dict[str, Any] = {}
    timing: dict[str, float] = {}
    headlines: list[tuple[bool, str, float | None]] = []
    per_example: list[tuple[str, dict[str, Any]]] = []
    for metric in enabled:
      t0 = time.perf_counter()
      result = metric.finish(dataclasses.replace(context,
                                                 tracker=self.trackers.get(metric.section)))
      if metric.timing_key is not None:
        timing[metric.timing_key] = time.perf_counter() - t0
      section[metric.section] = result.section
      if result.arrays is not None:
        if metric.arrays_file is None:
          raise ValueError(f"metric {metric.section} returned arrays but has no arrays_file")
        if workdir:
          # spec_hash: whose arrays these are, should a file outlive its run.
          results.write_npz_atomic(os.path.join(workdir, metric.arrays_file),
                                   {**result.arrays, "label_changed": context.corrupted,
                                    "spec_hash": np.array(specs.spec_hash(self.spec))})
        per_example.append((metric.section, result.arrays))
      if result.headline is not None:
        headlines.append((metric.leads_summary, *result.headline))
    section["timing_s"] = timing
    if workdir and per_example:
      self._write_score_table(workdir, outcome, context, per_example, log)
    # Stable sort: the leading headline first, the others in table order.
    headlines.sort(key=lambda h: not h[0])
    if headlines:
      log("memorization: " + ", ".join(f"{label} {_fmt(value)}"
                                        for _, label, value in headlines))
    return section

  def _write_score_table(self, workdir: str, outcome, context: base.Context,
                         per_example: list[tuple[str, dict[str, Any]]],
                         log: Callable[[str], None]) -> None:
    """The npz files' per-example arrays, also as rows of workdir/scores.parquet.

    One estimator per array, named <section>.<array> (e.g. turnover.self_influence_loss),
    with the values the npz holds; a missing pyarrow is one log line, not a failure.
    """
    original = runtime.fetch(outcome.data.y_train_original)
    # The example's own input: the dataset's, before any input corruption of this run.
    inputs = self.dataset.x_train if self.dataset is not None else context.x_train
    n = original.shape[0]
    keys = example_table.example_key(inputs, original)
    config = {"spec": self.spec.name, "spec_hash": specs.spec_hash(self.spec),
              "seed": self.spec.seed, "epochs": outcome.final.epoch,
              "steps": outcome.final.step}
    table = example_table.concat(
        example_table.rows(estimator=f"{section}.{name}", scores=values, keys=keys,
                           original_labels=original, labels=context.y_train,
                           label_changed=context.corrupted,
                           dataset=self.spec.dataset.name, config=config)
        for section, arrays in per_example for name, values in arrays.items()
        if getattr(values, "shape", None) == (n,))
    example_table.write_quietly(os.path.join(workdir, example_table.SCORES_FILE), table, log)

  def _context(self, outcome) -> base.Context:
    data = outcome.data
    fetch = lambda tree: jax.tree.map(runtime.fetch, tree)
    return base.Context(
        spec=self.spec,
        module=self.module,
        params=fetch(outcome.state.params), model_state=fetch(outcome.state.model_state),
        x_train=runtime.fetch(data.x_train), y_train=runtime.fetch(data.y_train),
        x_test=runtime.fetch(data.x_test),
        corrupted=runtime.fetch(data.label_changed).astype(bool),
        run_key=prng.run_key(self.spec.seed),
        steps_per_epoch=outcome.schedule.steps_per_epoch, **self.input_scale)


def _fmt(value) -> str:
  return "n/a" if value is None else f"{value:.4g}"
