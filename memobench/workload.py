"""A spec, resolved: the one place where a spec becomes the objects a run needs.

`resolve(spec, data_dir)` checks the spec against every component table, loads
its dataset and whatever its objective needs beyond it, builds the model and the
optimizer, and returns a frozen `Workload`. Every entry point (a run, a group of
seeds, the subsample estimator, the bench) resolves its spec once; nothing else
looks a spec up in a registry. The workload owns its stopping rule, as an
AlgoPerf workload owns `has_reached_validation_target`: the training loop asks
`stop_status(evaluation)` and knows no threshold itself.

`validate(spec)` is the resolution's checks alone (no data loaded): the spec's
own fields (specs.check_fields), then each table in a fixed order (dataset,
corruption, model, optimizer, objective, metrics), so the first error a bad spec
reports never depends on what was imported first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import numpy as np
import optax

from memobench import metrics, models, prng, specs
from memobench.data import corruptions, datasets
from memobench.training import objectives, optimizers, turnover_masks

# Statuses of a run that has stopped (a preempted run has not: it resumes).
COMPLETED, BUDGET_EXHAUSTED, DIVERGED = "completed", "budget_exhausted", "diverged"


def validate(spec: specs.Spec) -> specs.Spec:
  """Raises specs.SpecError (one line) unless every table accepts `spec`; returns it."""
  specs.check_fields(spec)
  datasets.check(spec)
  corruptions.check(spec)
  models.check(spec)
  optimizers.check(spec)
  objectives.check(spec)
  metrics.check(spec)
  return spec


@dataclasses.dataclass(frozen=True)
class Schedule:
  num_train: int
  batch_size: int
  steps_per_epoch: int
  total_steps: int

  @classmethod
  def from_spec(cls, budget: specs.BudgetSpec, num_train: int) -> Schedule:
    if budget.batch_size > num_train:
      raise specs.SpecError(f"budget.batch_size={budget.batch_size} is larger than the "
                            f"{num_train} training examples")
    steps_per_epoch = num_train // budget.batch_size
    total = budget.max_epochs * steps_per_epoch
    if budget.max_steps is not None:
      total = min(total, budget.max_steps) if budget.max_epochs > 0 else budget.max_steps
    return cls(num_train, budget.batch_size, steps_per_epoch, total)


@dataclasses.dataclass(frozen=True)
class Workload:
  """Everything a run of `spec` needs, resolved once (shared by the seeds of a group)."""
  spec: specs.Spec
  dataset: datasets.Dataset
  module: nn.Module             # built with turn-over dropout's rate where it is on
  convolutional: bool
  schedule: Schedule
  # The optimizer's transformation and learning-rate schedule (per step).
  tx: optax.GradientTransformation
  learning_rate: optax.Schedule
  # run key -> the objective of one batch (its held-out data already loaded).
  objective: Callable[[jax.Array], objectives.Objective]
  # Fuse eval_every_steps steps in one program (not convolutions on CPU).
  fused: bool
  # The enabled per-example metrics, in result order (metrics/__init__.py).
  metrics: tuple[Any, ...] = ()
  # Each run trains on its own random subset of this many training examples
  # (the subsample estimator, estimators/subsample.py; the subset is a pure
  # function of the run key); `schedule` is then for that many examples. None:
  # every run trains on the whole training set.
  subset_size: int | None = None
  # Whether reaching budget.fit_threshold stops a run (False: a fixed budget).
  stops_on_fit: bool = True
  # (mean, std) of the inputs of the dataset's FULL training split (before
  # dataset.train_size), for the corruptions that draw noise from them (gaussian,
  # noise), so that example i's corrupted input is the same at every train_size;
  # None for the other corruptions.
  input_stats: tuple[float, float] | None = None

  @property
  def eval_every_steps(self) -> int:
    return self.spec.budget.eval_every_steps

  def stop_status(self, step: int, train_loss: float, train_eval_loss: float,
                  train_accuracy: float) -> str | None:
    """The stopping rule: why a run ends after the evaluation at `step`, or None to go on.

    It diverged (a non-finite loss), it fitted (training accuracy on the labels
    it trains on reaches budget.fit_threshold; only where `stops_on_fit`), or
    its budget is spent.
    """
    if not math.isfinite(train_loss) or not math.isfinite(train_eval_loss):
      return DIVERGED
    if self.stops_on_fit and train_accuracy >= self.spec.budget.fit_threshold:
      return COMPLETED
    if step >= self.schedule.total_steps:
      return BUDGET_EXHAUSTED
    return None

  def corrupted_data(self, seed: int) -> corruptions.CorruptedData:
    """The dataset corrupted as the spec asks for `seed`, on device, once."""
    ds = self.dataset
    clean = corruptions.clean_data(ds.x_train, ds.y_train, ds.x_test, ds.y_test,
                                   ds.num_classes)
    data_key = jax.random.fold_in(prng.run_key(seed), prng.DATA)
    stats = None if self.input_stats is None else tuple(
        np.float32(v) for v in self.input_stats)
    return jax.jit(corruptions.corrupt, static_argnums=2)(data_key, clean, self.spec.corruption,
                                                          stats)

  def param_count(self) -> int:
    shapes = jax.eval_shape(lambda: self.module.init(
        jax.random.key(0), np.zeros((1, *self.dataset.input_shape), np.float32), train=False))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes.get("params", {})))


def resolve(spec: specs.Spec, data_dir: str | None = None,
            dataset: datasets.Dataset | None = None, *, subset_size: int | None = None,
            stops_on_fit: bool = True, fused: bool | None = None) -> Workload:
  """Checks `spec` and resolves it; `dataset` skips loading one already loaded.

  subset_size: each run trains on its own random subset of that many training
  examples (Workload.subset_size); stops_on_fit=False: runs train their whole
  budget whatever their training accuracy; fused: True/False forces the steps
  into one jitted loop or not (None: `uses_fused_steps`, by model and backend).
  """
  validate(spec)
  dataset = dataset if dataset is not None else datasets.load(spec.dataset, data_dir)
  if subset_size is not None and not 0 < subset_size <= dataset.num_train:
    raise specs.SpecError(f"a training subset of {subset_size} examples is not within the "
                          f"{dataset.num_train} training examples")
  schedule = Schedule.from_spec(
      spec.budget, dataset.num_train if subset_size is None else subset_size)
  objective_entry = objectives.OBJECTIVES.get(spec.analysis.objective)
  heldout = (objective_entry.heldout(spec, data_dir) if objective_entry.heldout is not None
             else None)
  model = models.MODELS.get(spec.model.name)
  convolutional = model.convolutional
  return Workload(
      spec=spec, dataset=dataset,
      # Turn-over dropout (training/turnover_masks.py) builds the model with dropout at its rate.
      module=model.build(turnover_masks.model_spec(spec), dataset.num_classes),
      convolutional=convolutional, schedule=schedule,
      tx=optimizers.build(spec.optimizer, schedule.steps_per_epoch),
      learning_rate=optimizers.learning_rate(spec.optimizer, schedule.steps_per_epoch),
      objective=lambda run_key: objective_entry.make(spec, run_key, heldout),
      fused=uses_fused_steps(convolutional) if fused is None else fused,
      metrics=tuple(metrics.enabled(spec)), subset_size=subset_size, stops_on_fit=stops_on_fit,
      input_stats=_input_stats(spec, dataset, data_dir))


def _input_stats(spec: specs.Spec, dataset: datasets.Dataset,
                 data_dir: str | None) -> tuple[float, float] | None:
  """The full training split's input (mean, std) where the corruption uses them.

  Without dataset.train_size `dataset` is the full split; with it, the full
  split is loaded again by name (only for gaussian / noise corruptions).
  """
  if not corruptions.uses_input_stats(spec.corruption):
    return None
  if spec.dataset.train_size is not None:
    dataset = datasets.load(dataclasses.replace(spec.dataset, train_size=None), data_dir)
  mean, std = corruptions.input_statistics(dataset.x_train)
  return float(mean), float(std)


def uses_fused_steps(convolutional: bool) -> bool:
  """Fuse steps in one jitted loop unless the model has convolutions and we are on CPU.

  Measured on CPU (docs/BENCHMARKS.md, "CNN step fusion"): fused steps of the
  small AlexNet / Inception run 21x / 49x slower than a loop of jitted steps.
  """
  return not (convolutional and jax.default_backend() == "cpu")
