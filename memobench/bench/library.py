"""Every call the bench makes into the memobench library, in one place.

The sections measure memobench's own code (its train step, its loop, its seed
groups, its estimator, its checkpointer), so they call the library; they do so
only through the functions below. When a library API changes, this is the file
to adapt. Each function names the library call it makes; the calls are as the
sections made them before this module existed.

Besides calling these functions the sections read, and should keep finding:
  Steps (make_steps, training/steps.py): .init, .train_step(state, data, order=None),
      .epoch_order(epoch), .schedule.steps_per_epoch
  TrainState: .step, .params, .loss_sum
  RunOutcome (train, training/loop.py): .final.step, .images_per_sec, .compile_s, .state
  CorruptedData (prepare_data, clean_data): .x_train, .y_train, .x_test,
      .y_test, .num_classes (a pytree that jax.device_put and jit accept)
  Dataset (load_dataset): .num_train
  Spec: .name, .seed, .model (.name), .optimizer (.lr, .momentum,
      .lr_decay_per_epoch), .budget (.batch_size; dataclasses.replace of
      max_epochs, max_steps, fit_threshold, eval_every_steps, batch_size)
  run_seeds results: ["metrics"]["steps_to_fit"], ["timing"]["compile_s"]
  subsample_estimator / population_estimator summary: ["timing"]["ensemble_compile_s"],
      ["timing"]["ensemble_train_s"], ["timing"]["ensemble_train_cpu_s"],
      ["estimator"]["steps_per_model"], ["estimators"] (population)
  Checkpointer: .save(step, state, loop), .wait(), .close(), .summary()
      (["saves"]), .restore_latest(abstract_state)
and checkpoint.py runs the `python -m memobench.main` command line (its
--spec, --workdir, --set, --checkpoint_every, --compilation_cache_dir flags and
result.json's ["timing"]["compile_s"]).

Imports are inside the functions, so that `python -m memobench.bench --help`
and its flag errors do not wait for JAX and the library to load.
"""

from __future__ import annotations

from typing import Any

# pylint: disable=import-outside-toplevel


# --------------------------------------------------------------------------
# memobench.specs, memobench.catalogue
# --------------------------------------------------------------------------


def get_spec(name: str):
  """catalogue.get: a registered spec by name."""
  from memobench import catalogue
  return catalogue.get(name)


def with_overrides(spec, overrides: list[str]):
  """specs.with_overrides, then workload.validate: (the spec, the overrides applied)."""
  from memobench import specs, workload
  spec, applied = specs.with_overrides(spec, overrides)
  return workload.validate(spec), applied


def catalogue_spec(dataset: str, corruption: str, model: str):
  """catalogue.make_spec: the catalogue's spec of a dataset, corruption and model."""
  from memobench import catalogue
  return catalogue.make_spec(dataset, corruption, model)


def bench_spec(model: str, batch: int, dataset: str = "cifar10"):
  """A spec with Zhang's optimizer (SGD, momentum 0.9, lr 0.01) and a long budget.

  The sections that time steps on random 28x28x3 arrays (step_timing.model_data)
  name cifar10, whose preprocessed inputs have that shape; its files are never
  read (they resolve the spec on the arrays they made).
  """
  from memobench import specs
  return specs.Spec(
      name=f"bench_{model}", description=f"{model} on {dataset} (performance harness)",
      dataset=specs.DatasetSpec(dataset), model=specs.ModelSpec(model),
      optimizer=specs.OptimizerSpec(kind="sgd", lr=0.01, momentum=0.9),
      budget=specs.BudgetSpec(batch_size=batch, max_epochs=10 ** 6, fit_threshold=1.0))


# --------------------------------------------------------------------------
# memobench.models, memobench.data
# --------------------------------------------------------------------------


def registered_models() -> list[str]:
  """models.names: the models memobench registers."""
  from memobench import models
  return models.names()


def has_convolutions(model: str) -> bool:
  """models.has_convolutions."""
  from memobench import models
  return models.has_convolutions(model)


def build_model(model_spec, num_classes: int):
  """models.build: the flax module of a ModelSpec."""
  from memobench import models
  return models.build(model_spec, num_classes)


def clean_data(x_train, y_train, x_test, y_test, num_classes: int):
  """corruptions.clean_data: a CorruptedData of uncorrupted arrays."""
  from memobench.data import corruptions
  return corruptions.clean_data(x_train, y_train, x_test, y_test, num_classes)


def load_dataset(dataset_spec):
  """datasets.load: a dataset's arrays, on the host."""
  from memobench.data import datasets
  return datasets.load(dataset_spec)


# --------------------------------------------------------------------------
# memobench.workload, memobench.training, memobench.prng
# --------------------------------------------------------------------------


def _resolve_on(spec, x_train, y_train, num_classes: int):
  """workload.resolve of `spec` on arrays already made (no dataset is loaded).

  Only shapes matter to the steps, so the test split is an empty view.
  """
  import numpy as np
  from memobench import workload
  from memobench.data.dataset import Dataset
  empty_x = np.zeros((0, *x_train.shape[1:]), np.float32)
  return workload.resolve(spec, dataset=Dataset(spec.dataset.name, x_train, y_train, empty_x,
                                                np.zeros((0,), np.int32), num_classes))


def _resolve_shapes(spec, num_classes: int, input_shape: tuple[int, ...], num_train: int):
  """workload.resolve on zero-stride arrays of the given shapes (no memory is used)."""
  import numpy as np
  x = np.broadcast_to(np.zeros((), np.float32), (num_train, *input_shape))
  y = np.broadcast_to(np.zeros((), np.int32), (num_train,))
  return _resolve_on(spec, x, y, num_classes)


def prepare_data(spec, dataset=None):
  """workload.resolve(...).corrupted_data: the spec's dataset, corrupted, on device."""
  from memobench import workload
  return workload.resolve(spec, dataset=dataset).corrupted_data(spec.seed)


def train(spec, data, checkpointer=None):
  """loop.train without its progress lines: one run of memobench's loop (a RunOutcome)."""
  from memobench.training import loop
  resolved = _resolve_on(spec, data.x_train, data.y_train, data.num_classes)
  return loop.train(resolved, data, log=lambda _: None, checkpointer=checkpointer)


def run_key(seed):
  """prng.run_key: a run's root key (traceable: the ensembles vmap it)."""
  from memobench import prng
  return prng.run_key(seed)


def init_key(key):
  """The key of a run's initialisation: fold_in(run key, prng.INIT), as the training loop does."""
  import jax
  from memobench import prng
  return jax.random.fold_in(key, prng.INIT)


def make_steps(spec, num_classes: int, input_shape: tuple[int, ...], num_train: int, key,
               mesh=None):
  """steps.make_steps: the spec's pure init / train_step / epoch_order functions."""
  from memobench.training import steps
  return steps.make_steps(_resolve_shapes(spec, num_classes, input_shape, num_train), key, mesh)


def prepared_steps(spec, data):
  """memobench's steps, replicated data and initial state, as the loop builds them."""
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  from memobench import prng, runtime
  mesh = runtime.make_mesh()
  key = prng.run_key(spec.seed)
  steps = make_steps(spec, data.num_classes, tuple(data.x_train.shape[1:]),
                     int(data.x_train.shape[0]), key, mesh)
  replicated = NamedSharding(mesh, P())
  data = jax.device_put(data, replicated)
  state = jax.jit(steps.init, out_shardings=replicated)(init_key(key))
  return steps, data, state


def fused_steps(steps, state, data, num_steps: int):
  """steps.fused_steps: `num_steps` steps in one lax.fori_loop, as memobench's loop fuses."""
  from memobench.training import steps as steps_module
  return steps_module.fused_steps(steps, state, data, num_steps)


def fused_chunk(steps, num_steps: int):
  """The loop's fused chunk, jitted: (state, data, order, order_valid) -> (state, order).

  steps.fused_steps_carrying_order, as training/programs.py runs it (state and
  order donated).
  """
  import jax
  from memobench.training import steps as steps_module
  return jax.jit(lambda state, data, order, valid: steps_module.fused_steps_carrying_order(
      steps, state, data, num_steps, order=order, order_valid=valid), donate_argnums=(0, 2))


def map_members(fn, args, batched, members_per_slice):
  """programs.map_members: fn over stacked members, one vmap or lax.map over slices."""
  from memobench.training import programs
  return programs.map_members(fn, args, batched, members_per_slice)


def uses_fused_steps(spec) -> bool:
  """workload.uses_fused_steps: whether memobench's loop fuses this spec's steps here."""
  from memobench import workload
  return workload.uses_fused_steps(has_convolutions(spec.model.name))


def max_queued_steps() -> int:
  """programs._MAX_QUEUED_STEPS: how often the unfused loop blocks (its CPU rendezvous guard)."""
  from memobench.training import programs
  return programs._MAX_QUEUED_STEPS  # pylint: disable=protected-access


# --------------------------------------------------------------------------
# memobench.run, memobench.memorization
# --------------------------------------------------------------------------


def run_seeds(seed_specs: list, workdirs: list[str], nonstandard, vmap: str) -> list[dict]:
  """run.run_seeds, silent: what `python -m memobench.main --seeds=K` runs; its results."""
  from memobench import run
  return run.run_seeds(seed_specs, workdirs, nonstandard=nonstandard,
                       logs=[lambda _: None] * len(seed_specs), vmap=vmap)


def run_spec(spec, workdir: str, nonstandard, data_dir: str | None) -> dict[str, Any]:
  """run.run_spec, silent: what `python -m memobench.main --spec=... --data_dir=...` runs."""
  from memobench import run
  return run.run_spec(spec, workdir, nonstandard=nonstandard, data_dir=data_dir,
                      log=lambda _: None)


def estimator_models(spec, models: int, epochs: int, subset_fraction: float = 0.7,
                     members_per_slice: int | None = None) -> dict[str, Any]:
  """The subsample estimator's training alone: `models` models of `spec` in one program.

  As memorization.run trains them (estimators/subsample.py: estimator_workload,
  model_keys, one loop.Member per key sharing the data, loop.train_group
  vmapped), without the scoring; one model is a group of one. Returns the
  loop's compile and training seconds (CPU seconds too) and steps per model.
  """
  from memobench.data import datasets
  from memobench.estimators import subsample
  from memobench.training import loop
  config = subsample.EnsembleConfig(models=models, subset_fraction=subset_fraction,
                                    epochs=epochs)
  dataset = datasets.load(spec.dataset)
  workload = subsample.estimator_workload(spec, config, dataset, None)
  data = workload.corrupted_data(spec.seed)
  keys = subsample.model_keys(spec.seed, models)
  members = [loop.Member(workload.spec, data, log=lambda _: None, key=keys[k])
             for k in range(models)]
  outcome = loop.train_group(workload, members, vmapped=models > 1,
                             members_per_slice=members_per_slice)[0]
  return dict(compile_s=outcome.compile_s, train_s=outcome.train_s,
              train_cpu_s=outcome.train_cpu_s, steps_per_model=workload.schedule.total_steps)


def has_memorization() -> bool:
  """Whether memobench.memorization (the subsample estimator) exists."""
  import importlib.util
  return importlib.util.find_spec("memobench.memorization") is not None


def subsample_estimator(spec, models: int, subset_fraction: float, epochs: int,
                        workdir: str) -> dict[str, Any]:
  """memorization.run, silent, of an EnsembleConfig: the Feldman & Zhang estimator's summary."""
  import importlib
  memorization = importlib.import_module("memobench.memorization")
  config = memorization.EnsembleConfig(models=models, subset_fraction=subset_fraction,
                                       epochs=epochs)
  return memorization.run(spec, config, workdir, log=lambda _: None)


def population_estimator(spec, models: int, epochs: int, workdir: str) -> dict[str, Any]:
  """memorization.run, silent, of a balanced PopulationConfig: the population's summary."""
  from memobench import memorization
  from memobench.estimators import population
  config = population.PopulationConfig(models=models, epochs=epochs, design="balanced")
  return memorization.run(spec, config, workdir, log=lambda _: None)


# --------------------------------------------------------------------------
# memobench.checkpoint, memobench.results
# --------------------------------------------------------------------------


def checkpointer(workdir: str, every_steps: int, identity: dict[str, Any]):
  """checkpoint.Checkpointer of `workdir`, saving every `every_steps` steps."""
  from memobench import checkpoint
  return checkpoint.Checkpointer(workdir, every_steps, identity=identity)


def default_checkpoint_every() -> int:
  """checkpoint.DEFAULT_EVERY_STEPS: the --checkpoint_every default."""
  from memobench import checkpoint
  return checkpoint.DEFAULT_EVERY_STEPS


def abstract_like(tree):
  """checkpoint.abstract_like: a restore target (shapes, dtypes, shardings) of `tree`."""
  from memobench import checkpoint
  return checkpoint.abstract_like(tree)


def enable_default_compilation_cache() -> None:
  """runtime.enable_compilation_cache of runtime.default_compilation_cache_dir()."""
  from memobench import runtime
  runtime.enable_compilation_cache(runtime.default_compilation_cache_dir())


def environment() -> dict[str, Any]:
  """results.environment: backend, device kind and count, versions, git commit."""
  from memobench import results
  return results.environment()


def write_text(path: str, text: str) -> None:
  """results.write_atomic."""
  from memobench import results
  results.write_atomic(path, text)


def write_json(path: str, obj: Any) -> None:
  """results.write_json_atomic."""
  from memobench import results
  results.write_json_atomic(path, obj)
