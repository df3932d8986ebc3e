"""Training: a spec -> pure init / train-step / eval functions, and the one loop.

The whole (corrupted) dataset stays resident on device. A train step takes the
state and the dataset, and derives its own batch from the step number: epoch
e = step // steps_per_epoch visits the training set in the order
permutation(fold_in(shuffle_key, e)), so the batch schedule is a pure function
of (seed, step) -- independent of device count, and exactly resumable.

Data parallelism: jit over a 1-D device Mesh ('data'); each global batch is
sharded over the devices, parameters are replicated, and XLA inserts the
gradient all-reduce. Global batch = spec.budget.batch_size, which must divide
by the device count.

Multi-host: every process holds the same (deterministic) dataset; it becomes a
replicated global array (distributed.replicate), so each device gathers its
own slice of every global batch from its host's copy. Evaluation is sharded the
same way and its outputs are replicated, so every process can read them.

Checkpoints and preemption (checkpoint.py): the loop checkpoints at evaluation
boundaries, resumes from the latest good checkpoint, and on SIGTERM saves and
returns with status 'preempted'. A resumed run reproduces an uninterrupted one
exactly: batches, dropout keys and chunking are functions of the step alone.

Step fusion: models without convolutions run `eval_every_steps` steps fused in
one jitted `lax.scan`; convolutional models on CPU run a Python loop of jitted
steps, because XLA:CPU runs convolutions inside loop bodies ~10x slower (see
docs/BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from memobench import checkpoint, corruptions, datasets, distributed, models, optimizers, specs
from memobench import objectives, preprocessing, turnover

# Sub-streams of the run key (jax.random.fold_in(run_key, STREAM)).
DATA_STREAM, INIT_STREAM, SHUFFLE_STREAM, DROPOUT_STREAM = 0, 1, 2, 3
AUGMENT_STREAM = 7  # random-crop augmentation (preprocessing.random_crop)
# On CPU, more than ~32 queued multi-device steps without a sync can deadlock
# XLA's rendezvous; unfused loops block at least this often.
_MAX_QUEUED_STEPS = 16
EVAL_BATCH = 1024


def run_key(seed: int) -> jax.Array:
  """The root PRNG key of a run, with the PRNG implementation pinned."""
  return jax.random.key(seed, impl="threefry2x32")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # non-parameter collections, e.g. {'batch_stats': ...}
  opt_state: Any
  loss_sum: jax.Array  # sum of training batch losses since the last eval (logging)


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
class Steps:
  """The pure functions a run is made of (all jit-able)."""
  init: Callable[[jax.Array], TrainState]
  # (state, data[, order]) -> state: one optimizer step on the batch of state.step.
  # `order` is epoch_order(state.step // steps_per_epoch), computed by the step
  # when not given; loops pass it so that it is computed once per epoch.
  train_step: Callable[..., TrainState]
  # (params, model_state, x, y) -> (predictions, per-example loss).
  eval_step: Callable[[Any, Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
  module: nn.Module
  schedule: Schedule
  # epoch -> the permutation of the training set that epoch visits.
  epoch_order: Callable[[jax.Array], jax.Array] | None = None


def epoch_order(shuffle_key: jax.Array, epoch: jax.Array, schedule: Schedule) -> jax.Array:
  """The order in which epoch `epoch` visits the training set."""
  return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), schedule.num_train)


def batch_indices(shuffle_key: jax.Array, step: jax.Array, schedule: Schedule,
                  order: jax.Array | None = None) -> jax.Array:
  """Indices of the training examples in the batch of `step` (`order`: its epoch's order)."""
  if order is None:
    order = epoch_order(shuffle_key, step // schedule.steps_per_epoch, schedule)
  start = (step % schedule.steps_per_epoch) * schedule.batch_size
  return jax.lax.dynamic_slice_in_dim(order, start, schedule.batch_size)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def make_steps(spec: specs.Spec, num_classes: int, input_shape: tuple[int, ...],
               num_train: int, key: jax.Array, mesh: jax.sharding.Mesh | None = None) -> Steps:
  """Builds the pure init/train/eval functions of `spec`."""
  schedule = Schedule.from_spec(spec.budget, num_train)
  # Turn-over dropout (turnover.py) builds the model with dropout at its rate.
  module = models.build(turnover.model_spec(spec), num_classes)
  tx = optimizers.build(spec.optimizer, schedule.steps_per_epoch)
  shuffle_key = jax.random.fold_in(key, SHUFFLE_STREAM)
  dropout_key = jax.random.fold_in(key, DROPOUT_STREAM)
  augment_key = jax.random.fold_in(key, AUGMENT_STREAM)
  objective = objectives.build(spec, key)  # spec.analysis.objective; default: mean CE
  example_masks = turnover.masker(spec, key)  # idx -> per-example dropout masks (or no-op)
  batch_sharding = NamedSharding(mesh, P("data")) if mesh is not None else None

  def init(init_key):
    variables = module.init(init_key, jnp.zeros((1, *input_shape), jnp.float32), train=False)
    variables = flax.core.unfreeze(variables)
    params = variables.pop("params")
    variables.pop("intermediates", None)
    return TrainState(jnp.zeros((), jnp.int32), params, variables, tx.init(params),
                      jnp.zeros((), jnp.float32))

  def train_step(state, data, order=None):
    idx = batch_indices(shuffle_key, state.step, schedule, order)
    x, y = data.x_train[idx], data.y_train[idx]
    if spec.dataset.random_crop:  # Zhang et al. Table 1 "random crop": fresh crops each step
      if x.ndim != 4:
        raise specs.SpecError(f"dataset.random_crop needs images (N, H, W, C); "
                              f"{spec.dataset.name} inputs are {tuple(x.shape[1:])}")
      x = preprocessing.random_crop(jax.random.fold_in(augment_key, state.step), x)
    if batch_sharding is not None:
      x = jax.lax.with_sharding_constraint(x, batch_sharding)
      y = jax.lax.with_sharding_constraint(y, batch_sharding)
    rngs = {"dropout": jax.random.fold_in(dropout_key, state.step)}

    def loss_fn(params):
      def forward(inputs, example_idx):
        with example_masks(example_idx):
          return module.apply(
              {"params": params, **state.model_state}, inputs, train=True, rngs=rngs,
              mutable=list(state.model_state))
      return objective(forward, x, y, idx, state.step)

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(state.step + 1, optax.apply_updates(state.params, updates),
                      dict(new_model_state), opt_state, state.loss_sum + loss)

  def eval_step(params, model_state, x, y):
    logits = module.apply({"params": params, **model_state}, x, train=False)
    return jnp.argmax(logits, -1).astype(jnp.int32), cross_entropy(logits, y)

  return Steps(init, train_step, eval_step, module, schedule,
               functools.partial(epoch_order, shuffle_key, schedule=schedule))


def fused_steps(steps: Steps, state: TrainState, data: corruptions.CorruptedData,
                n: int) -> TrainState:
  """`n` train steps in one lax.fori_loop, computing each epoch's batch order once.

  The order is a full permutation (a sort): on a 2-core CPU ~1.7 ms for 4,000
  examples and ~23 ms for 50,000, more than an MLP step, so it is carried
  across steps rather than recomputed by every step (docs/BENCHMARKS.md).
  Same batches as `train_step` alone.
  """
  spe = steps.schedule.steps_per_epoch

  def body(i, carry):
    state, order = carry
    order = jax.lax.cond((i == 0) | (state.step % spe == 0),
                         lambda: steps.epoch_order(state.step // spe), lambda: order)
    return steps.train_step(state, data, order), order

  order = jax.eval_shape(steps.epoch_order, state.step)
  order = jnp.zeros(order.shape, order.dtype)
  return jax.lax.fori_loop(0, n, body, (state, order))[0]


def uses_fused_steps(spec: specs.Spec) -> bool:
  """Fuse steps in lax.scan unless the model has convolutions and we are on CPU.

  Measured on CPU (docs/BENCHMARKS.md, "CNN step fusion"): fused steps of the
  small AlexNet / Inception run 21x / 49x slower than a loop of jitted steps.
  """
  return not (models.has_convolutions(spec.model.name) and jax.default_backend() == "cpu")


def make_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


# --------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Evaluation:
  step: int
  epoch: float
  train_loss: float           # mean training-batch loss since the previous evaluation
  train_accuracy: float       # full training set, on the labels trained on
  train_eval_loss: float
  test_accuracy: float
  test_loss: float
  learning_rate: float
  images_per_sec: float
  wall_s: float
  train_predictions: np.ndarray = dataclasses.field(repr=False, default=None)
  test_predictions: np.ndarray = dataclasses.field(repr=False, default=None)

  def curve_row(self) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(self).items()
            if not k.endswith("predictions")}


@dataclasses.dataclass
class RunOutcome:
  status: str                  # completed | budget_exhausted | diverged | preempted
  final: Evaluation
  curve: list[Evaluation]
  steps_to_fit: int | None
  time_to_fit_s: float | None
  compile_s: float
  wall_s: float
  images_per_sec: float
  state: TrainState
  data: corruptions.CorruptedData
  schedule: Schedule
  preemption_count: int = 0    # preemptions over the run's life, this one included
  resumed_from_step: int | None = None  # the checkpoint step this session started from
  checkpoint: dict[str, Any] | None = None  # Checkpointer.summary()


def prepare_data(spec: specs.Spec, data_dir: str | None = None,
                 dataset: datasets.Dataset | None = None) -> corruptions.CorruptedData:
  """Loads and corrupts the spec's dataset, on device, once."""
  dataset = dataset or datasets.load(spec.dataset, data_dir)
  clean = corruptions.clean_data(dataset.x_train, dataset.y_train, dataset.x_test,
                                 dataset.y_test, dataset.num_classes)
  data_key = jax.random.fold_in(run_key(spec.seed), DATA_STREAM)
  return jax.jit(corruptions.corrupt, static_argnums=2)(data_key, clean, spec.corruption)


def _evaluate_split(eval_fn, state, x, y, n_devices):
  """Predictions and per-example losses over a whole split, in fixed-size chunks."""
  n = x.shape[0]
  chunk = min(EVAL_BATCH, math.ceil(n / n_devices) * n_devices)
  chunk = math.ceil(chunk / n_devices) * n_devices
  preds, losses = [], []
  for start in range(0, n, chunk):
    xs, ys = x[start:start + chunk], y[start:start + chunk]
    pad = chunk - xs.shape[0]
    if pad:
      xs = jnp.concatenate([xs, jnp.zeros((pad, *xs.shape[1:]), xs.dtype)])
      ys = jnp.concatenate([ys, jnp.zeros((pad,), ys.dtype)])
    p, l = eval_fn(state.params, state.model_state, xs, ys)
    # Replicated outputs: readable on every process of a multi-host run.
    preds.append(distributed.fetch(p)[:chunk - pad])
    losses.append(distributed.fetch(l)[:chunk - pad])
  return np.concatenate(preds), np.concatenate(losses)


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _is_resumable(tracker: Any) -> bool:
  """An on_eval tracker whose state survives a resume.

  Protocol: `checkpoint_state()` returns a pytree of arrays of fixed shapes
  (saved with each checkpoint, and used as the restore target on a fresh
  tracker); `restore_checkpoint_state(tree)` loads it back.
  """
  return (hasattr(tracker, "checkpoint_state")
          and hasattr(tracker, "restore_checkpoint_state"))


def train(spec: specs.Spec, data: corruptions.CorruptedData,
          log: Callable[[str], None] = print,
          on_eval: Callable[[Evaluation], None] | None = None,
          checkpointer: checkpoint.Checkpointer | None = None) -> RunOutcome:
  """Trains `spec` on `data` until it fits, its budget ends, or it is preempted.

  With a `checkpointer`, resumes from its latest good checkpoint and saves at
  evaluation boundaries when due, at the end, and on preemption (SIGTERM).
  """
  with checkpoint.PreemptionWatcher() as watcher:
    return _train(spec, data, log, on_eval, checkpointer, watcher)


def _train(spec, data, log, on_eval, checkpointer, watcher) -> RunOutcome:
  t_start = time.perf_counter()
  mesh = make_mesh()
  n_dev = mesh.size
  if spec.budget.batch_size % n_dev:
    raise specs.SpecError(f"budget.batch_size={spec.budget.batch_size} does not divide over "
                          f"{n_dev} devices")
  key = run_key(spec.seed)
  steps = make_steps(spec, data.num_classes, tuple(data.x_train.shape[1:]),
                     int(data.x_train.shape[0]), key, mesh)
  schedule = steps.schedule
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  data = distributed.replicate(data, mesh)
  y_train, y_test = distributed.fetch(data.y_train), distributed.fetch(data.y_test)
  state = jax.jit(steps.init, out_shardings=replicated)(jax.random.fold_in(key, INIT_STREAM))
  lr_fn = optimizers.learning_rate(spec.optimizer, schedule.steps_per_epoch)

  # Resume: the learning curve, time and images trained so far, and the stop
  # decision if the checkpoint was taken at the end, come back with the state.
  curve: list[Evaluation] = []
  finished: dict[str, Any] | None = None
  train_time, trained_images, wall_before, preemption_count = 0.0, 0, 0.0, 0
  resumed_from = None
  tracker = on_eval if _is_resumable(on_eval) else None
  if checkpointer is not None:
    restored = checkpoint.restore_or_none(
        checkpointer, checkpoint.abstract_like(state),
        tracker.checkpoint_state() if tracker is not None else None)
    if restored is not None:
      state, loop, tracker_state = restored
      curve = [Evaluation(**row) for row in loop["curve"]]
      train_time, trained_images = loop["train_time_s"], loop["trained_images"]
      wall_before, preemption_count = loop["wall_s"], loop["preemption_count"]
      finished = loop["finished"]
      if tracker_state is not None:
        tracker.restore_checkpoint_state(tracker_state)
      resumed_from = int(state.step)
      log(f"resumed from the checkpoint of step {resumed_from} "
          f"({preemption_count} preemption(s) so far)")

  fused = uses_fused_steps(spec)
  chunk_len = spec.budget.eval_every_steps
  if fused:
    def run_chunk(state, data, n):
      return fused_steps(steps, state, data, n)
    chunk_fn = jax.jit(run_chunk, static_argnums=2, donate_argnums=0)
  else:
    step_fn = jax.jit(steps.train_step, donate_argnums=0)
    # Once per epoch, not per step (see fused_steps).
    order_fn = jax.jit(steps.epoch_order, out_shardings=replicated)

  def sharded_eval(params, model_state, x, y):
    x = jax.lax.with_sharding_constraint(x, batch_sharding)
    y = jax.lax.with_sharding_constraint(y, batch_sharding)
    return jax.lax.with_sharding_constraint(steps.eval_step(params, model_state, x, y),
                                            replicated)
  eval_fn = jax.jit(sharded_eval)

  # Compile ahead of time so that compile time is reported apart from training.
  t_compile = time.perf_counter()
  if fused:
    compiled_chunk = chunk_fn.lower(state, data, min(chunk_len, schedule.total_steps)).compile()
  else:
    compiled_step = step_fn.lower(state, data, order_fn(0)).compile()
  compile_s = time.perf_counter() - t_compile

  def advance(state, step, n):
    if fused:
      if n == min(chunk_len, schedule.total_steps):
        return compiled_chunk(state, data)
      return chunk_fn(state, data, n)
    for i in range(n):
      if i == 0 or (step + i) % schedule.steps_per_epoch == 0:
        order = order_fn((step + i) // schedule.steps_per_epoch)
      state = compiled_step(state, data, order)
      if (i + 1) % _MAX_QUEUED_STEPS == 0:
        jax.block_until_ready(state.step)
    return state

  def evaluate(state):
    train_pred, train_losses = _evaluate_split(eval_fn, state, data.x_train, data.y_train, n_dev)
    test_pred, test_losses = _evaluate_split(eval_fn, state, data.x_test, data.y_test, n_dev)
    return train_pred, train_losses, test_pred, test_losses

  def loop_record():
    return {"curve": [e.curve_row() for e in curve], "train_time_s": train_time,
            "trained_images": trained_images, "wall_s": wall_before + time.perf_counter() - t_start,
            "preemption_count": preemption_count, "finished": finished}

  preempted = False
  step = int(state.step)
  while finished is None and step < schedule.total_steps:
    # Chunks end on multiples of eval_every_steps, so a resumed run cuts the
    # schedule exactly where an uninterrupted one does.
    n = min(chunk_len, schedule.total_steps - step)
    t0 = time.perf_counter()
    state = advance(state, step, n)
    loss_sum = float(distributed.fetch(state.loss_sum))  # syncs
    train_time += time.perf_counter() - t0
    trained_images += n * schedule.batch_size
    step += n
    state = state.replace(loss_sum=jnp.zeros_like(state.loss_sum))

    train_pred, train_losses, test_pred, test_losses = evaluate(state)
    ips = trained_images / max(train_time, 1e-9)
    ev = Evaluation(
        step=step, epoch=step / schedule.steps_per_epoch, train_loss=loss_sum / n,
        train_accuracy=float(np.mean(train_pred == y_train)),
        train_eval_loss=float(np.mean(train_losses)),
        test_accuracy=float(np.mean(test_pred == y_test)),
        test_loss=float(np.mean(test_losses)), learning_rate=float(lr_fn(step - 1)),
        images_per_sec=ips, wall_s=wall_before + time.perf_counter() - t_start,
        train_predictions=train_pred, test_predictions=test_pred)
    curve.append(ev)
    if on_eval is not None:
      on_eval(ev)
    eta = (schedule.total_steps - step) * schedule.batch_size / max(ips, 1e-9)
    log(f"step {step}/{schedule.total_steps} (epoch {ev.epoch:.1f}) | "
        f"train acc {ev.train_accuracy:.4f} test acc {ev.test_accuracy:.4f} | "
        f"loss {ev.train_loss:.4f} | {ips:,.0f} img/s | ETA {_format_eta(eta)}")
    if not math.isfinite(ev.train_loss) or not math.isfinite(ev.train_eval_loss):
      finished = {"status": "diverged", "steps_to_fit": None, "time_to_fit_s": None}
      log(f"loss is not finite at step {step}: run diverged")
    elif ev.train_accuracy >= spec.budget.fit_threshold:
      finished = {"status": "completed", "steps_to_fit": step, "time_to_fit_s": ev.wall_s}
    elif step >= schedule.total_steps:
      finished = {"status": "budget_exhausted", "steps_to_fit": None, "time_to_fit_s": None}
    # Every process asks at every boundary (the multi-host sync point needs it).
    preempted = watcher.preempted() and finished is None
    if preempted:
      preemption_count += 1
    if checkpointer is not None and (finished or preempted or checkpointer.due(step)):
      checkpointer.save(step, state, loop_record(),
                        tracker.checkpoint_state() if tracker is not None else None)
    if preempted:
      log(f"preempted at step {step}: checkpointed; rerun the same command to resume")
      break

  if checkpointer is not None:
    checkpointer.wait()
  final = curve[-1]
  if final.train_predictions is None:
    # Resumed from the final checkpoint: recompute the final predictions (the
    # same program on the same parameters gives the same values).
    train_pred, _, test_pred, _ = evaluate(state)
    final = dataclasses.replace(final, train_predictions=train_pred, test_predictions=test_pred)
    curve[-1] = final
  status = "preempted" if preempted else finished["status"]
  steps_to_fit = None if preempted else finished["steps_to_fit"]
  time_to_fit = None if preempted else finished["time_to_fit_s"]
  wall = wall_before + time.perf_counter() - t_start
  return RunOutcome(status, final, curve, steps_to_fit, time_to_fit, compile_s, wall,
                    trained_images / max(train_time, 1e-9), state, data, schedule,
                    preemption_count=preemption_count, resumed_from_step=resumed_from,
                    checkpoint=checkpointer.summary() if checkpointer is not None else None)
