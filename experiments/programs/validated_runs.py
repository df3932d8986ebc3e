"""Runs with a validation split held out from training, and the epoch it selects.

Why a program of its own: memobench's runner evaluates a run on its training and
test splits only, so a rule that keeps the best epoch of a run ("best over
training", early stopping) could only pick it on the test split, which then no
longer estimates generalization (DESIGN.md, protocol rules: "best" is selected
on a validation split taken from training, never on the test split).

`train(workload, seeds, validation, ...)` trains a workload whose spec sets
`dataset.train_size` (it trains on the first train_size training examples)
with the one training loop (`loop.train_group`; the seeds in one vmapped
program where the runner would put them), runs the spec's metric table as the
runner does (metrics/runner.py), and at every evaluation also measures accuracy
on the validation split: the training examples beyond train_size, with their
true labels and their uncorrupted inputs (`validation_split`, i.e.
objectives.heldout_pool, the pool Badger 2022's forced memorization uses).
Nothing is checkpointed: a cell that calls it is computed whole or not at all.

`early_stopped(curve)` is the selection: the evaluation of highest validation
accuracy (the earliest of ties), with the test accuracy there.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

CURVE_KEYS = ("step", "epoch", "train_loss", "train_accuracy", "test_accuracy",
              "validation_accuracy")


def validation_split(spec, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(x, y) of the training examples beyond spec.dataset.train_size, true labels."""
  from memobench.training import objectives  # pylint: disable=import-outside-toplevel
  x, y, _ = objectives.heldout_pool(spec, data_dir)
  return np.asarray(x, np.float32), np.asarray(y, np.int32)


@functools.partial(jax.jit, static_argnums=0)
def _predict(module, variables, x):
  return jnp.argmax(module.apply(variables, x, train=False), axis=-1)


def accuracy(module, params, model_state, x: np.ndarray, y: np.ndarray) -> float:
  """Accuracy of the flax `module` (evaluation mode) on (x, y), in chunks."""
  from memobench.training import evaluation  # pylint: disable=import-outside-toplevel
  variables = {"params": params, **model_state}
  pred = evaluation.chunked(lambda start, stop: _predict(module, variables,
                                                         jnp.asarray(x[start:stop])), len(x))
  return float(np.mean(pred == y))


class ValidationAccuracy:
  """An on_eval hook: (step, validation accuracy) at every evaluation."""

  def __init__(self, x: np.ndarray, y: np.ndarray):
    self.x, self.y = x, y
    self.rows: list[tuple[int, float]] = []

  def __call__(self, ev) -> None:
    self.rows.append((ev.step, accuracy(*ev.model(), self.x, self.y)))


def train(workload, seeds: list[int], validation: tuple[np.ndarray, np.ndarray], *,
          vmap: str = "auto", folder: str | None = None,
          log: Callable[[str], None] = lambda msg: None) -> list[dict[str, Any]]:
  """One record per seed: final accuracies, the learning curve with validation accuracy
  at every evaluation, and the metric table's `memorization` section (its per-example
  arrays in folder/seed<N>/ when `folder` is given)."""
  from memobench import run as run_lib  # pylint: disable=import-outside-toplevel
  from memobench.metrics import runner as metrics_runner  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  if workload.spec.dataset.train_size is None:
    raise ValueError("validated_runs.train: the spec must set dataset.train_size (the "
                     "examples beyond it are the validation split)")
  members, hooks, runners = [], [], []
  for seed in seeds:
    spec = dataclasses.replace(workload.spec, seed=seed)
    data = workload.corrupted_data(seed)
    runner = metrics_runner.MetricsRunner(spec, data, module=workload.module,
                                          dataset=workload.dataset)
    hook = ValidationAccuracy(*validation)
    members.append(loop.Member(spec, data, lambda msg, s=seed: log(f"seed {seed}: {msg}"),
                               runner.on_eval(hook)))
    hooks.append(hook)
    runners.append(runner)
  vmapped, why = run_lib.choose_vmapped(vmap, workload, len(seeds))
  log(f"{len(seeds)} seed(s) of {workload.spec.name}: {why}")
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  out = []
  for seed, outcome, hook, runner in zip(seeds, outcomes, hooks, runners):
    seed_folder = None
    if folder is not None:
      seed_folder = os.path.join(folder, f"seed{seed}")
      os.makedirs(seed_folder, exist_ok=True)
    validation_by_step = dict(hook.rows)
    rows = [{**e.curve_row(), "validation_accuracy": validation_by_step.get(e.step)}
            for e in outcome.curve]
    final = outcome.final
    out.append({
        "seed": seed, "status": outcome.status, "steps": final.step, "epochs": final.epoch,
        "steps_per_epoch": outcome.schedule.steps_per_epoch,
        "train_examples": outcome.schedule.num_train,
        "validation_examples": int(len(validation[1])),
        "train_accuracy": final.train_accuracy, "test_accuracy": final.test_accuracy,
        "vmapped_seeds": outcome.vmapped_seeds,
        "curve": {k: [r[k] for r in rows] for k in CURVE_KEYS},
        "memorization": runner.finish(outcome, seed_folder, log),
    })
  return out


def early_stopped(curve: dict[str, list]) -> dict[str, Any] | None:
  """The evaluation of highest validation accuracy (the earliest among ties): its step,
  epoch, validation and test accuracy. None when no evaluation has a validation accuracy."""
  val = curve.get("validation_accuracy") or []
  present = [(v, i) for i, v in enumerate(val) if v is not None]
  if not present:
    return None
  best = max(v for v, _ in present)
  i = min(i for v, i in present if v == best)
  return {"step": curve["step"][i], "epoch": curve["epoch"][i], "validation_accuracy": best,
          "test_accuracy": curve["test_accuracy"][i]}
