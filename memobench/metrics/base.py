"""The interface of a metric of one run: what it declares, and the hooks the runner calls.

A metric is one `Metric` value, defined in its own module of memobench/metrics/
(dynamics.py, turnover.py, ...) and listed in the explicit table of
memobench/metrics/__init__.py; runner.py runs whatever the table holds and knows
no metric by name. Modelled on AlgoPerf's workload interface (Dahl et al. 2023,
"Benchmarking neural network training algorithms": a declared object whose
hooks the harness calls): a metric declares its result.json section, the spec
fields it reads and its checks, and supplies

  tracker(spec, data)  optional: before training, an on_eval callback fed every
                       `train.Evaluation` of the training loop (resumable when
                       it has checkpoint_state() / restore_checkpoint_state())
  finish(context)      after training: its result.json section, optional
                       per-example arrays (written as `arrays_file`, with
                       `label_changed`) and a headline for the log line.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

import flax.linen as nn
import jax
import numpy as np

from memobench import specs


class Tracker(Protocol):
  """An on_eval callback of the training loop, called with each `train.Evaluation`.

  Resumable (the protocol training.loop.Resumable) when it also has
  `checkpoint_state()`, a dict of fixed-shape arrays saved with every
  checkpoint (its keys unique across the table: the runner merges the
  trackers' dicts into one), and `restore_checkpoint_state(tree)`, which loads
  such a dict back into a fresh tracker. A tracker that evaluates
  the model reads `evaluation.model()` -> (module, params, model_state); one
  that perturbs inputs may have `set_input_scale(input_scale_train=...,
  input_scale_test=...)`, which the runner calls with the dataset's per-example
  input scales (Context.input_scale_*) before training.
  """

  def __call__(self, evaluation: Any) -> None: ...


@dataclasses.dataclass(frozen=True)
class Context:
  """What a metric's finish step reads: the trained model and the run's data, on the host."""
  spec: specs.Spec
  module: nn.Module         # the flax module as trained (turn-over dropout layers included)
  params: Any
  model_state: Any          # non-parameter collections, e.g. {'batch_stats': ...}
  x_train: np.ndarray
  y_train: np.ndarray       # the labels trained on (corrupted where labels are)
  x_test: np.ndarray
  corrupted: np.ndarray     # bool per training example: its label differs from the true one
  run_key: jax.Array        # prng.run_key(spec.seed); a metric folds in its own prng stream
  steps_per_epoch: int
  tracker: Tracker | None = None  # what this metric's `tracker` built, if anything
  # Per example of x_train / x_test, how much preprocessing magnified a [0, 1]-pixel
  # displacement (data.Dataset.input_scale_*); None: the inputs are [0, 1] pixels.
  input_scale_train: np.ndarray | None = None
  input_scale_test: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Result:
  """A metric's output: its result.json section, per-example arrays, a log headline."""
  section: dict[str, Any]
  arrays: dict[str, np.ndarray] | None = None  # written to the metric's arrays_file
  headline: tuple[str, float | None] | None = None  # (label, value); None value: "n/a"


def no_checks(spec: specs.Spec) -> None:
  del spec


@dataclasses.dataclass(frozen=True)
class Metric:
  """One entry of the metric table (memobench/metrics/__init__.py)."""
  section: str                            # its key in result.json's `memorization`
  fields: tuple[str, ...]                 # the spec fields it reads, e.g. ("analysis.csr_samples",)
  enabled: Callable[[specs.Spec], bool]   # whether the spec asks for it
  finish: Callable[[Context], Result]
  # Its key in the section's `timing_s` (seconds its finish took, compilation
  # included); None: not timed (a summary of what its tracker counted).
  timing_key: str | None
  # Raises specs.SpecError, one line, on a bad value of its fields.
  check: Callable[[specs.Spec], None] = no_checks
  # Builds its on_eval tracker before training (from the spec and the run's
  # corrupted data), or returns None; the tracker reaches finish as context.tracker.
  tracker: Callable[[specs.Spec, Any], Tracker | None] | None = None
  arrays_file: str | None = None          # e.g. "turnover.npz", in the run's workdir
  # Its headline opens the log line (the one-run memorization score does).
  leads_summary: bool = False
