"""Trained models as a computed cell: a spec's seeds trained through the one loop, parameters kept.

Experiments that measure the trained parameters themselves (interpolations
between minima, reparametrizations, Hessians of batches: Keskar, Dinh,
Granziol) declare one training cell per spec,

    ComputedCell("small", trained_models.train, trained_models.TrainConfig(spec, seeds=3,
                 stops_on_fit=False))

and measurement cells that `need` it and read its models with
`trained_models.load(ctx.inputs["small"])`. The training cell's config is
everything the training reads: the spec (hashed by its spec hash and seed, so
the optimizer, learning rate, batch size, epochs, dataset and its train_size
all enter), the number of seeds and the stopping rule. A changed training knob
changes that hash and retrains; a changed measurement knob changes only the
measurement cells' hashes and never retrains (experiments/cells.py).

`train` trains seeds spec.seed ... spec.seed + seeds - 1 through
`training.loop.train_group`, in one vmapped program where the steps are fused
(as `python -m memobench.main --seeds=K` does), and writes into the cell's
folder: seed<N>.msgpack (params and model_state, flax msgpack), train.log (the
loop's lines), and returns the record {"spec": the spec as a dict, "seeds":
[final metrics per seed]}. With snapshot_epochs / snapshot_losses it also keeps
the parameters at the first evaluation at or past an epoch, or at or below a
whole-training-set loss (seed<N>.epoch<E>.msgpack, seed<N>.loss<L>.msgpack,
their evaluation's metrics under the seed's "snapshots"): comparisons at equal
epochs or at matched training loss along one trajectory. The cell is saved whole or not at all by the driver;
a SIGTERM during training discards it (the rerun trains again: these runs are
minutes, and take no checkpoints).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np
from flax import serialization

from memobench import results, specs, workload as workload_lib
from memobench.training import loop


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """What a training cell reads (hashed for resume): every field changes the trained models."""
  spec: specs.Spec       # seeds spec.seed, spec.seed + 1, ...
  seeds: int
  stops_on_fit: bool = True   # False: train the whole budget whatever the training accuracy
  # Also keep the parameters at the first evaluation at or past each of these epochs, and at
  # the first whose whole-training-set loss is at most each of these levels (a comparison
  # at equal epochs or at matched training loss along the trajectory).
  snapshot_epochs: tuple[float, ...] = ()
  snapshot_losses: tuple[float, ...] = ()


@dataclasses.dataclass
class Trained:
  seed: int
  params: Any                 # numpy pytree
  model_state: Any
  final: dict[str, Any]       # status, steps, epochs, train/test accuracy and loss, wall_s


@dataclasses.dataclass
class Models:
  """A training cell's output, as a measurement cell reads it."""
  spec: specs.Spec
  stops_on_fit: bool
  trained: list[Trained]

  def workload(self, data_dir: str | None = None) -> workload_lib.Workload:
    """The resolved workload of the spec (module, dataset) the models were trained on."""
    return workload_lib.resolve(self.spec, data_dir, stops_on_fit=self.stops_on_fit)


def dataset(spec: specs.Spec, data_dir: str | None = None):
  """The dataset `spec` trains on (for a grid that needs its size or shapes); a missing
  dataset is a SpecError, so the driver reports it in one line before anything trains."""
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  try:
    return datasets.load(spec.dataset, data_dir)
  except datasets.DataError as e:
    raise specs.SpecError(str(e)) from None


def _params_file(folder: str, seed: int, snapshot: str | None = None) -> str:
  return os.path.join(folder, f"seed{seed}{'' if snapshot is None else '.' + snapshot}.msgpack")


def epoch_snapshot(epoch: float) -> str:
  return f"epoch{epoch:g}"


def loss_snapshot(level: float) -> str:
  return f"loss{level:g}"


class _Snapshots:
  """A member's on_eval: at the first evaluation meeting each condition, its parameters go
  to seed<N>.<name>.msgpack and the evaluation's metrics to `taken[name]`."""

  def __init__(self, folder: str, seed: int, config: TrainConfig):
    self.folder, self.seed = folder, seed
    self.pending = ([(epoch_snapshot(e), "epoch", e) for e in config.snapshot_epochs]
                    + [(loss_snapshot(v), "loss", v) for v in config.snapshot_losses])
    self.taken: dict[str, dict[str, Any]] = {}

  def __call__(self, ev: loop.Evaluation) -> None:
    due = [name for name, kind, v in self.pending
           if (ev.epoch >= v - 1e-9 if kind == "epoch" else ev.train_eval_loss <= v)]
    if not due:
      return
    _, params, model_state = ev.model()
    for name in due:
      save_params(_params_file(self.folder, self.seed, name), params, model_state)
      self.taken[name] = {"steps": ev.step, "epochs": ev.epoch,
                          "train_accuracy": ev.train_accuracy, "test_accuracy": ev.test_accuracy,
                          "train_loss": ev.train_eval_loss, "test_loss": ev.test_loss}
    self.pending = [p for p in self.pending if p[0] not in due]


def _vmapped(mode: str, workload: workload_lib.Workload, members: int) -> bool:
  """--vmap_seeds: auto vmaps a group of several seeds where the steps are fused."""
  if mode == "false" or members < 2:
    return False
  return mode == "true" or workload.fused


def final_metrics(outcome: loop.RunOutcome) -> dict[str, Any]:
  e = outcome.final
  return {"status": outcome.status, "steps": e.step, "epochs": e.epoch,
          "train_accuracy": e.train_accuracy, "test_accuracy": e.test_accuracy,
          "train_loss": e.train_eval_loss, "test_loss": e.test_loss, "wall_s": outcome.wall_s}


def save_params(path: str, params: Any, model_state: Any) -> None:
  blob = serialization.msgpack_serialize({"params": jax.tree.map(np.asarray, params),
                                          "model_state": jax.tree.map(np.asarray, model_state)})
  results.write_atomic(path, blob)


def read_params(path: str) -> tuple[Any, Any]:
  with open(path, "rb") as f:
    tree = serialization.msgpack_restore(f.read())
  return tree["params"], tree.get("model_state", {})


def train(config: TrainConfig, ctx) -> dict[str, Any]:
  """Compute function of a training cell: trains `config.seeds` seeds of `config.spec`."""
  spec = config.spec
  workload = workload_lib.resolve(spec, ctx.data_dir, stops_on_fit=config.stops_on_fit)
  seeds = [spec.seed + i for i in range(config.seeds)]
  ctx.log(f"training seeds {seeds} ({spec.name}, batch {spec.budget.batch_size}, "
          f"{workload.schedule.total_steps} steps)")
  with open(os.path.join(ctx.folder, "train.log"), "a") as log_file:
    def log(msg):
      log_file.write(msg + "\n")
      log_file.flush()
    snapshots = [_Snapshots(ctx.folder, s, config)
                 if config.snapshot_epochs or config.snapshot_losses else None for s in seeds]
    members = [loop.Member(dataclasses.replace(spec, seed=s), workload.corrupted_data(s),
                           lambda msg, s=s: log(f"seed {s}: {msg}"), on_eval=snap)
               for s, snap in zip(seeds, snapshots)]
    outcomes = loop.train_group(workload, members,
                                vmapped=_vmapped(ctx.vmap, workload, len(members)))
  finals = []
  for seed, outcome, snap in zip(seeds, outcomes, snapshots):
    save_params(_params_file(ctx.folder, seed), outcome.state.params,
                outcome.state.model_state)
    finals.append({"seed": seed, **final_metrics(outcome),
                   **({} if snap is None else {"snapshots": snap.taken})})
  return {"spec": specs.to_dict(spec), "stops_on_fit": config.stops_on_fit, "seeds": finals}


def load(inp, snapshot: str | None = None) -> Models:
  """A training cell's models from `ctx.inputs[key]` (experiments.cells.Input): the final
  ones, or those of `snapshot` (epoch_snapshot / loss_snapshot names) with the metrics of
  their evaluation; a seed that never met the snapshot's condition is left out."""
  record = inp.record
  trained = []
  for final in record["seeds"]:
    seed = final["seed"]
    if snapshot is not None:
      final = final.get("snapshots", {}).get(snapshot)
      if final is None:
        continue
    params, model_state = read_params(_params_file(inp.folder, seed, snapshot))
    trained.append(Trained(seed, params, model_state,
                           {k: v for k, v in final.items() if k not in ("seed", "snapshots")}))
  return Models(specs.from_dict(record["spec"]), record["stops_on_fit"], trained)
