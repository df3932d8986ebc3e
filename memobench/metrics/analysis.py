"""The per-example memorization scores and geometry of one run (spec.analysis).

run.run_spec makes a `RunAnalysis` before training, passes `hooks(...)` as the
training loop's `on_eval` callback, and calls `finish` after training; the
summary becomes result.json's `memorization` section and the per-example arrays
go to .npz files in the workdir:

  learning_dynamics     dynamics.py (Arpit et al. 2017; Toneva et al. 2019)
                        -> workdir/dynamics.npz
  turnover              turnover.py (Kobayashi et al. 2020) -> workdir/turnover.npz
  effective_rank        geometry.py (Roy & Vetterli 2007; Huh et al. 2023)
  critical_sample_ratio geometry.py (Arpit et al. 2017)
  sharpness             geometry.py (top Hessian eigenvalue)

Each npz also holds `label_changed` (the corruption record) so that scores can
be judged against it offline. docs/METRICS.md defines every entry.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any, Callable

import jax
import numpy as np

from memobench import distributed, models, prng, results, specs
from memobench.metrics import dynamics, geometry
from memobench.training import train
from memobench.metrics import turnover

DYNAMICS_FILE = "dynamics.npz"
TURNOVER_FILE = "turnover.npz"


@specs.add_validator
def _check_analysis(spec: specs.Spec) -> None:
  a = spec.analysis
  if not 0.0 <= a.turnover_dropout < 1.0:
    raise specs.SpecError(f"analysis.turnover_dropout must be in [0, 1), got {a.turnover_dropout}")
  if a.turnover_dropout > 0 and spec.model.dropout > 0:
    raise specs.SpecError("analysis.turnover_dropout replaces the model's random dropout; "
                          "leave model.dropout at 0")
  for name in ("csr_samples", "sharpness_iters"):
    if getattr(a, name) < 0:
      raise specs.SpecError(f"analysis.{name} must be >= 0, got {getattr(a, name)}")
  if a.sharpness_examples <= 0:
    raise specs.SpecError(f"analysis.sharpness_examples must be positive, "
                          f"got {a.sharpness_examples}")


def write_npz_atomic(path: str, arrays: dict[str, np.ndarray]) -> None:
  """np.savez, written atomically by results.write_atomic (one upload if remote)."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  results.write_atomic(path, buffer.getvalue())


class _Hooks:
  """Several on_eval callbacks in one; resumable through the learning-dynamics tracker."""

  def __init__(self, tracker: dynamics.LearningDynamics, others: list[Callable]):
    self.tracker, self.others = tracker, others

  def __call__(self, evaluation) -> None:
    for hook in self.others:
      hook(evaluation)
    self.tracker(evaluation)

  def checkpoint_state(self):
    return self.tracker.checkpoint_state()

  def restore_checkpoint_state(self, tree) -> None:
    self.tracker.restore_checkpoint_state(tree)


class RunAnalysis:
  """What spec.analysis asks of one run: tracked during training, computed after it."""

  def __init__(self, spec: specs.Spec, data):
    self.spec = spec
    # Tracked even when not reported (O(N) per evaluation), so that the
    # checkpointed tracker state has the same structure for every spec.
    self.tracker = dynamics.LearningDynamics(distributed.fetch(data.y_train))

  def hooks(self, *others: Callable | None) -> _Hooks:
    """The on_eval callback for train.train: `others` (None skipped), then the tracker."""
    return _Hooks(self.tracker, [h for h in others if h is not None])

  def finish(self, outcome, workdir: str | None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """The result.json `memorization` section; writes the npz files when `workdir` is set."""
    spec, a = self.spec, self.spec.analysis
    if outcome.status == "preempted":
      return {}  # the resumed run reports it; a preempted process has little time left
    data = outcome.data
    fetch = lambda tree: jax.tree.map(distributed.fetch, tree)
    params, model_state = fetch(outcome.state.params), fetch(outcome.state.model_state)
    x_train, y_train = distributed.fetch(data.x_train), distributed.fetch(data.y_train)
    x_test = distributed.fetch(data.x_test)
    corrupted = distributed.fetch(data.label_changed).astype(bool)
    module = models.build(turnover.model_spec(spec), data.num_classes)
    key = train.run_key(spec.seed)
    section: dict[str, Any] = {}
    timing: dict[str, float] = {}

    def timed(name, fn):
      t0 = time.perf_counter()
      out = fn()
      timing[name] = time.perf_counter() - t0
      return out

    if a.dynamics:
      section["learning_dynamics"] = self.tracker.summary(corrupted,
                                                          outcome.schedule.steps_per_epoch)
      if workdir:
        write_npz_atomic(os.path.join(workdir, DYNAMICS_FILE),
                         {**self.tracker.arrays(), "label_changed": corrupted})
    if turnover.enabled(spec):
      arrays = timed("turnover", lambda: turnover.self_influence(
          module, params, model_state, x_train, y_train, turnover.turnover_key(key),
          a.turnover_dropout))
      section["turnover"] = turnover.summary(arrays, corrupted, a.turnover_dropout)
      if workdir:
        write_npz_atomic(os.path.join(workdir, TURNOVER_FILE),
                         {**arrays, "label_changed": corrupted})
    if a.effective_rank:
      section["effective_rank"] = timed("effective_rank", lambda: geometry.embedding_rank(
          module, params, model_state, x_test))
    if a.csr_samples:
      section["critical_sample_ratio"] = timed("csr", lambda: geometry.critical_sample_ratio(
          module, params, model_state, x_test, a.csr_samples,
          jax.random.fold_in(key, prng.CSR)))
    if a.sharpness_iters:
      section["sharpness"] = timed("sharpness", lambda: geometry.sharpness(
          module, params, model_state, x_train, y_train, a.sharpness_examples,
          a.sharpness_iters, jax.random.fold_in(key, prng.SHARPNESS)))
    if not section:
      return {}
    section["timing_s"] = timing
    _log_summary(section, log)
    return section


def _log_summary(section: dict[str, Any], log: Callable[[str], None]) -> None:
  parts = []
  if "turnover" in section:
    parts.append(f"self-influence AUC {_fmt(section['turnover']['self_influence_auc'])}")
  if "learning_dynamics" in section:
    parts.append(f"learning-time AUC {_fmt(section['learning_dynamics']['learning_time_auc'])}")
  if "effective_rank" in section:
    parts.append(f"effective rank {_fmt(section['effective_rank']['effective_rank'])}")
  if "critical_sample_ratio" in section:
    parts.append(f"CSR {_fmt(section['critical_sample_ratio']['critical_sample_ratio'])}")
  if "sharpness" in section:
    parts.append(f"sharpness {_fmt(section['sharpness']['top_hessian_eigenvalue'])}")
  if parts:
    log("memorization: " + ", ".join(parts))


def _fmt(value) -> str:
  return "n/a" if value is None else f"{value:.4g}"
