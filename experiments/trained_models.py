"""Trained parameters for the sharpness experiments (Keskar, Dinh, Granziol), cached on disk.

The sharpness experiments measure the trained parameters themselves
(interpolations between two minima, reparametrizations, Hessians of batches),
which result.json does not hold, so they train through the one training loop
(`training.loop.train_group`, a cell's seeds vmapped) and keep each seed's
final parameters in <workdir>/models/<cell>/seed<N>.msgpack with its final
accuracies and losses in seed<N>.json. A rerun loads them instead of training
(resumable); --no_resume retrains.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import jax
import numpy as np
from flax import serialization

import common
from memobench import results, specs, workload as workload_lib
from memobench.data import datasets
from memobench.training import loop


@dataclasses.dataclass
class Trained:
  seed: int
  params: Any                 # numpy pytree
  model_state: Any
  final: dict[str, Any]       # train/test accuracy and loss at the end, status, steps


def _paths(workdir: str, cell: str, seed: int) -> tuple[str, str]:
  folder = os.path.join(workdir, "models", cell)
  return (os.path.join(folder, f"seed{seed}.msgpack"), os.path.join(folder, f"seed{seed}.json"))


def train_cell(args, cell: str, spec: specs.Spec, stops_on_fit: bool = True,
               dataset: datasets.Dataset | None = None
               ) -> tuple[workload_lib.Workload, list[Trained]]:
  """args.seeds seeds of `spec` (seeds 0..K-1): loaded if cached, else trained together."""
  try:
    workload = workload_lib.resolve(spec, args.data_dir, dataset, stops_on_fit=stops_on_fit)
  except (datasets.DataError, specs.SpecError) as e:
    common.fail(str(e), 1)
  out: dict[int, Trained] = {}
  todo = []
  for seed in range(args.seeds):
    params_path, final_path = _paths(args.workdir, cell, seed)
    if not args.no_resume and os.path.exists(params_path) and os.path.exists(final_path):
      with open(params_path, "rb") as f:
        tree = serialization.msgpack_restore(f.read())
      with open(final_path) as f:
        final = json.load(f)
      out[seed] = Trained(seed, tree["params"], tree.get("model_state", {}), final)
    else:
      todo.append(seed)
  if todo:
    print(f"{cell}: training seeds {todo} ({spec.name}, batch {spec.budget.batch_size}, "
          f"{workload.schedule.total_steps} steps)", file=sys.stderr)
    log_path = os.path.join(args.workdir, "runs.log")
    os.makedirs(args.workdir, exist_ok=True)
    with open(log_path, "a") as log_file:
      def log(msg, cell=cell):
        log_file.write(f"{cell}: {msg}\n")
        log_file.flush()
      members = [loop.Member(dataclasses.replace(spec, seed=s),
                             workload.corrupted_data(s), log) for s in todo]
      outcomes = loop.train_group(workload, members, vmapped=len(members) > 1)
    for seed, outcome in zip(todo, outcomes):
      params = jax.tree.map(np.asarray, outcome.state.params)
      model_state = jax.tree.map(np.asarray, outcome.state.model_state)
      e = outcome.final
      final = {"status": outcome.status, "steps": e.step, "epochs": e.epoch,
               "train_accuracy": e.train_accuracy, "test_accuracy": e.test_accuracy,
               "train_loss": e.train_eval_loss, "test_loss": e.test_loss,
               "wall_s": outcome.wall_s}
      params_path, final_path = _paths(args.workdir, cell, seed)
      os.makedirs(os.path.dirname(params_path), exist_ok=True)
      blob = serialization.msgpack_serialize({"params": params, "model_state": model_state})
      with open(params_path + ".tmp", "wb") as f:
        f.write(blob)
      os.replace(params_path + ".tmp", params_path)
      results.write_json_atomic(final_path, final)
      out[seed] = Trained(seed, params, model_state, final)
  return workload, [out[s] for s in range(args.seeds)]


def report_cpu(name: str) -> None:
  """This process's CPU seconds (user + system, all threads) on stderr: a load-independent cost."""
  import resource  # pylint: disable=import-outside-toplevel
  usage = resource.getrusage(resource.RUSAGE_SELF)
  print(f"{name}: {usage.ru_utime + usage.ru_stime:.0f} CPU seconds", file=sys.stderr)


def refuse_shard(args) -> None:
  if args.shard is not None:
    common.fail("--shard: this experiment trains a few cells in one process and measures "
                "their parameters together; it does not shard", 2)
