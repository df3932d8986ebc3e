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

from memobench import checkpoint, distributed, models, specs
from memobench.data import corruptions, datasets
from memobench.training import optimizers
from memobench import prng
from memobench.training import objectives
from memobench.data import preprocessing
from memobench.metrics import turnover
from memobench.prng import run_key  # noqa: F401  (train.run_key: the name callers know)

# On CPU, more than ~32 queued multi-device steps without a sync can deadlock
# XLA's rendezvous; unfused loops block at least this often.
_MAX_QUEUED_STEPS = 16
EVAL_BATCH = 1024


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


def augment(spec: specs.Spec, key: jax.Array, x: jax.Array, step: jax.Array) -> jax.Array:
  """The training inputs of `step` (a batch `x`), augmented as spec.dataset asks.

  random_crop: Zhang et al. 2017 Table 1's random crops, fresh every step.
  input_noise: x + input_noise * N(0, 1), fresh every step (Arpit et al. 2017,
  Sec. 5). Both are pure functions of (run key, step), like dropout.
  """
  if spec.dataset.random_crop:
    if x.ndim != 4:
      raise specs.SpecError(f"dataset.random_crop needs images (N, H, W, C); "
                            f"{spec.dataset.name} inputs are {tuple(x.shape[1:])}")
    x = preprocessing.random_crop(jax.random.fold_in(jax.random.fold_in(key, prng.AUGMENT),
                                                     step), x)
  if spec.dataset.input_noise:
    noise_key = jax.random.fold_in(jax.random.fold_in(key, prng.INPUT_NOISE), step)
    x = x + spec.dataset.input_noise * jax.random.normal(noise_key, x.shape, x.dtype)
  return x


def make_steps(spec: specs.Spec, num_classes: int, input_shape: tuple[int, ...],
               num_train: int, key: jax.Array, mesh: jax.sharding.Mesh | None = None) -> Steps:
  """Builds the pure init/train/eval functions of `spec`."""
  schedule = Schedule.from_spec(spec.budget, num_train)
  # Turn-over dropout (turnover.py) builds the model with dropout at its rate.
  module = models.build(turnover.model_spec(spec), num_classes)
  tx = optimizers.build(spec.optimizer, schedule.steps_per_epoch)
  shuffle_key = jax.random.fold_in(key, prng.SHUFFLE)
  dropout_key = jax.random.fold_in(key, prng.DROPOUT)
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
    x, y = augment(spec, key, data.x_train[idx], state.step), data.y_train[idx]
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
                n: int, start_step: jax.Array | None = None) -> TrainState:
  """`n` train steps in one lax.fori_loop, computing each epoch's batch order once.

  The order is a full permutation (a sort): on a 2-core CPU ~1.7 ms for 4,000
  examples and ~23 ms for 50,000, more than an MLP step, so it is carried
  across steps rather than recomputed by every step (docs/BENCHMARKS.md).
  Same batches as `train_step` alone.
  """
  spe = steps.schedule.steps_per_epoch
  start_step = state.step if start_step is None else start_step

  def body(i, carry):
    state, order = carry
    step = start_step + i
    order = jax.lax.cond((i == 0) | (step % spe == 0),
                         lambda: steps.epoch_order(step // spe), lambda: order)
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
  # The seeds trained in the same vmapped program as this run (itself included),
  # whose wall and compile times it shares; None when it trained alone.
  vmapped_seeds: list[int] | None = None


def prepare_data(spec: specs.Spec, data_dir: str | None = None,
                 dataset: datasets.Dataset | None = None) -> corruptions.CorruptedData:
  """Loads and corrupts the spec's dataset, on device, once."""
  dataset = dataset or datasets.load(spec.dataset, data_dir)
  clean = corruptions.clean_data(dataset.x_train, dataset.y_train, dataset.x_test,
                                 dataset.y_test, dataset.num_classes)
  data_key = jax.random.fold_in(run_key(spec.seed), prng.DATA)
  return jax.jit(corruptions.corrupt, static_argnums=2)(data_key, clean, spec.corruption)


def _evaluate_split(eval_fn, state, x, y, n_devices, stacked=False):
  """Predictions and per-example losses over a whole split, in fixed-size chunks.

  stacked: `state`, `x` and `y` have a leading member axis (a vmapped group);
  the outputs are then (members, examples).
  """
  axis = 1 if stacked else 0
  n = x.shape[axis]
  chunk = min(EVAL_BATCH, math.ceil(n / n_devices) * n_devices)
  chunk = math.ceil(chunk / n_devices) * n_devices
  preds, losses = [], []
  for start in range(0, n, chunk):
    xs = jax.lax.slice_in_dim(x, start, min(start + chunk, n), axis=axis)
    ys = jax.lax.slice_in_dim(y, start, min(start + chunk, n), axis=axis)
    pad = chunk - xs.shape[axis]
    if pad:
      xs = jnp.concatenate([xs, jnp.zeros((*xs.shape[:axis], pad, *xs.shape[axis + 1:]),
                                          xs.dtype)], axis=axis)
      ys = jnp.concatenate([ys, jnp.zeros((*ys.shape[:axis], pad), ys.dtype)], axis=axis)
    p, l = eval_fn(state.params, state.model_state, xs, ys)
    # Replicated outputs: readable on every process of a multi-host run.
    preds.append(distributed.fetch(p)[..., :chunk - pad])
    losses.append(distributed.fetch(l)[..., :chunk - pad])
  return np.concatenate(preds, axis=-1), np.concatenate(losses, axis=-1)


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


@dataclasses.dataclass
class Member:
  """One run of a group that `train_group` trains: a spec, its data and its outputs."""
  spec: specs.Spec
  data: corruptions.CorruptedData
  log: Callable[[str], None] = print
  on_eval: Callable[[Evaluation], None] | None = None
  checkpointer: checkpoint.Checkpointer | None = None


def train(spec: specs.Spec, data: corruptions.CorruptedData,
          log: Callable[[str], None] = print,
          on_eval: Callable[[Evaluation], None] | None = None,
          checkpointer: checkpoint.Checkpointer | None = None) -> RunOutcome:
  """Trains `spec` on `data` until it fits, its budget ends, or it is preempted.

  With a `checkpointer`, resumes from its latest good checkpoint and saves at
  evaluation boundaries when due, at the end, and on preemption (SIGTERM).
  """
  return train_group([Member(spec, data, log, on_eval, checkpointer)], vmapped=False)[0]


def can_vmap(spec: specs.Spec) -> bool:
  """Whether seeds of `spec` can train in one vmapped program: its steps fuse."""
  return uses_fused_steps(spec)


def train_group(members: list[Member], vmapped: bool) -> list[RunOutcome]:
  """Trains runs of one spec that differ only in their seed; one outcome per member.

  vmapped=False: one after another, each with its own program (what `train` does).
  vmapped=True: side by side in ONE jitted program, `jax.vmap` over the members'
  keys, states and corrupted data, evaluated together. Each member keeps its own
  batches, dropout keys, chunking, stopping rule and checkpoints, so it ends as
  its single run would up to float rounding, and its checkpoints are a single
  run's: either way resumes them. (XLA may sum a batched matmul in another order
  than a single one: losses then drift in the 6th digit over hundreds of steps,
  and a discrete outcome such as the stopping step can move by one evaluation;
  tests/test_seeds.py and docs/BENCHMARKS.md measure it.) A member that
  has stopped keeps its final state while the others go on (its slot still
  computes, masked out: the price of one program); once half the slots are
  masked out, the rest go on in a smaller program (one recompilation). Members
  whose checkpoints resume from different steps train as separate vmapped
  groups, one per step.
  On preemption every member still training checkpoints; members of a group not
  reached yet then train one evaluation interval and checkpoint too.
  """
  spec = members[0].spec
  base = dataclasses.replace(spec, seed=0)
  if any(dataclasses.replace(m.spec, seed=0) != base for m in members):
    raise ValueError("train_group: members must differ only in their seed")
  if vmapped and not can_vmap(spec):
    raise specs.SpecError(f"{spec.model.name} steps are not fused on "
                          f"{jax.default_backend()}, so its seeds cannot share a vmapped "
                          "program; train them one after another")
  with checkpoint.PreemptionWatcher() as watcher:
    group = _Group(members)
    runs = [group.resume(m) for m in members]
    todo = [r for r in runs if r.finished is None and r.step < group.schedule.total_steps]
    if vmapped:
      by_step: dict[int, list[_Run]] = {}
      for r in todo:
        by_step.setdefault(r.step, []).append(r)
      if len(by_step) > 1:
        members[0].log("the seeds resume from different steps (" + ", ".join(
            f"step {s}: seeds {', '.join(str(r.seed) for r in rs)}"
            for s, rs in sorted(by_step.items())) + "); one vmapped program per step")
      partitions = list(by_step.values())
    else:
      partitions = [[r] for r in todo]
    for part in partitions:
      group.train(part, vmapped and len(part) > 1, watcher)
    return [group.outcome(r) for r in runs]


@dataclasses.dataclass
class _Run:
  """One member in the loop: its TrainState, data, and what its checkpoints' `loop` holds."""
  member: Member
  key: jax.Array
  state: TrainState
  data: corruptions.CorruptedData      # replicated on the mesh
  y_train: np.ndarray
  y_test: np.ndarray
  tracker: Any = None
  curve: list[Evaluation] = dataclasses.field(default_factory=list)
  finished: dict[str, Any] | None = None
  train_time: float = 0.0
  trained_images: int = 0
  wall_before: float = 0.0
  preemption_count: int = 0
  resumed_from: int | None = None
  preempted: bool = False
  compile_s: float = 0.0
  vmapped_seeds: list[int] | None = None
  # This session's wall clock: from the group's start to the end of its training.
  t_start: float = 0.0
  t_end: float | None = None

  @property
  def seed(self) -> int:
    return self.member.spec.seed

  @property
  def step(self) -> int:
    return int(self.state.step)


class _Group:
  """What the members of a group share: the mesh, the schedule and the jitted programs."""

  def __init__(self, members: list[Member]):
    self.t_start = time.perf_counter()
    self.spec = spec = members[0].spec
    self.mesh = mesh = make_mesh()
    self.n_dev = mesh.size
    if spec.budget.batch_size % self.n_dev:
      raise specs.SpecError(f"budget.batch_size={spec.budget.batch_size} does not divide "
                            f"over {self.n_dev} devices")
    data = members[0].data
    self.shape_args = (data.num_classes, tuple(data.x_train.shape[1:]),
                       int(data.x_train.shape[0]))
    self.template = make_steps(spec, *self.shape_args, run_key(spec.seed), mesh)
    self.schedule = self.template.schedule
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P("data"))
    self.init = jax.jit(self.template.init, out_shardings=self.replicated)
    self.lr_fn = optimizers.learning_rate(spec.optimizer, self.schedule.steps_per_epoch)
    self.fused = uses_fused_steps(spec)

    def sharded_eval(params, model_state, x, y):
      x = jax.lax.with_sharding_constraint(x, self.batch_sharding)
      y = jax.lax.with_sharding_constraint(y, self.batch_sharding)
      return jax.lax.with_sharding_constraint(
          self.template.eval_step(params, model_state, x, y), self.replicated)
    self.eval_fn = jax.jit(sharded_eval)
    self.stacked_eval_fn = jax.jit(jax.vmap(sharded_eval))

  # -- resume ----------------------------------------------------------------

  def resume(self, member: Member) -> _Run:
    """A member's fresh state, or the state and loop of its latest good checkpoint."""
    key = run_key(member.spec.seed)
    data = distributed.replicate(member.data, self.mesh)
    run = _Run(member, key, self.init(jax.random.fold_in(key, prng.INIT)), data,
               distributed.fetch(data.y_train), distributed.fetch(data.y_test),
               tracker=member.on_eval if _is_resumable(member.on_eval) else None,
               t_start=self.t_start)
    if member.checkpointer is None:
      return run
    restored = checkpoint.restore_or_none(
        member.checkpointer, checkpoint.abstract_like(run.state),
        run.tracker.checkpoint_state() if run.tracker is not None else None)
    if restored is None:
      return run
    # The learning curve, time and images trained so far, and the stop
    # decision if the checkpoint was taken at the end, come back with the state.
    run.state, loop, tracker_state = restored
    run.curve = [Evaluation(**row) for row in loop["curve"]]
    run.train_time, run.trained_images = loop["train_time_s"], loop["trained_images"]
    run.wall_before, run.preemption_count = loop["wall_s"], loop["preemption_count"]
    run.finished = loop["finished"]
    if tracker_state is not None:
      run.tracker.restore_checkpoint_state(tracker_state)
    run.resumed_from = run.step
    member.log(f"resumed from the checkpoint of step {run.resumed_from} "
               f"({run.preemption_count} preemption(s) so far)")
    return run

  # -- training --------------------------------------------------------------

  def _wall(self, run: _Run) -> float:
    end = time.perf_counter() if run.t_end is None else run.t_end
    return run.wall_before + end - run.t_start

  def _loop_record(self, run: _Run) -> dict[str, Any]:
    return {"curve": [e.curve_row() for e in run.curve], "train_time_s": run.train_time,
            "trained_images": run.trained_images, "wall_s": self._wall(run),
            "preemption_count": run.preemption_count, "finished": run.finished}

  def _single_program(self, run: _Run):
    """(compile_s, advance(state, step, n, active) -> state) of one member's own program."""
    schedule, chunk_len = self.schedule, self.spec.budget.eval_every_steps
    # The template is member 0's steps: not built twice (forced memorization's
    # objective loads its held-out pool each time).
    steps = (self.template if run.seed == self.spec.seed
             else make_steps(self.spec, *self.shape_args, run.key, self.mesh))
    data = run.data
    t0 = time.perf_counter()
    if self.fused:
      chunk_fn = jax.jit(lambda state, data, n: fused_steps(steps, state, data, n),
                         static_argnums=2, donate_argnums=0)
      full = min(chunk_len, schedule.total_steps)
      compiled_chunk = chunk_fn.lower(run.state, data, full).compile()

      def advance(state, step, n, active):
        del step, active
        return compiled_chunk(state, data) if n == full else chunk_fn(state, data, n)
      return time.perf_counter() - t0, advance

    step_fn = jax.jit(steps.train_step, donate_argnums=0)
    # Once per epoch, not per step (see fused_steps).
    order_fn = jax.jit(steps.epoch_order, out_shardings=self.replicated)
    compiled_step = step_fn.lower(run.state, data, order_fn(0)).compile()

    def advance(state, step, n, active):
      del active
      for i in range(n):
        if i == 0 or (step + i) % schedule.steps_per_epoch == 0:
          order = order_fn((step + i) // schedule.steps_per_epoch)
        state = compiled_step(state, data, order)
        if (i + 1) % _MAX_QUEUED_STEPS == 0:
          jax.block_until_ready(state.step)
      return state
    return time.perf_counter() - t0, advance

  def _vmapped_program(self, runs: list[_Run], state, data):
    """(compile_s, advance) of one program that trains every member of `runs`."""
    spec, shape_args, mesh = self.spec, self.shape_args, self.mesh
    keys = jnp.stack([r.key for r in runs])
    chunk_len = min(spec.budget.eval_every_steps, self.schedule.total_steps)

    def run_chunk(state, data, active, start_step, n):
      def one(key, state, data):
        # Each member's own steps (keys, masks) from its traced key; start_step
        # is shared, so each epoch's order is a real lax.cond, not a select.
        return fused_steps(make_steps(spec, *shape_args, key, mesh), state, data, n, start_step)
      new = jax.vmap(one)(keys, state, data)
      # Finished members keep their state.
      return jax.tree.map(
          lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, state)

    chunk_fn = jax.jit(run_chunk, static_argnums=4, donate_argnums=0)
    t0 = time.perf_counter()
    compiled = chunk_fn.lower(state, data, np.ones(len(runs), bool), np.int32(0),
                              chunk_len).compile()

    def advance(state, step, n, active):
      # numpy, not device arrays: every process of a multi-host run passes the same.
      active, step = np.asarray(active), np.int32(step)
      return (compiled(state, data, active, step) if n == chunk_len
              else chunk_fn(state, data, active, step, n))
    return time.perf_counter() - t0, advance

  def train(self, runs: list[_Run], vmapped: bool, watcher) -> None:
    """Trains `runs` (all at the same step) side by side until each stops or a preemption."""
    schedule, batch = self.schedule, self.schedule.batch_size
    if vmapped:
      stack = jax.jit(lambda *trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees),
                      out_shardings=self.replicated)
      state, data = stack(*[r.state for r in runs]), stack(*[r.data for r in runs])
      compile_s, advance = self._vmapped_program(runs, state, data)
      member_state = jax.jit(lambda tree, k: jax.tree.map(lambda x: x[k], tree),
                             out_shardings=self.replicated)
      eval_fn, seeds = self.stacked_eval_fn, [r.seed for r in runs]
    else:
      (run,) = runs
      state, data = run.state, run.data
      compile_s, advance = self._single_program(run)
      member_state = lambda state, k: state  # pylint: disable=unnecessary-lambda-assignment
      eval_fn, seeds = self.eval_fn, None
    for r in runs:
      r.compile_s += compile_s
      r.vmapped_seeds = r.vmapped_seeds or seeds
    active = [True] * len(runs)
    step = runs[0].step
    while any(active) and step < schedule.total_steps:
      # Chunks end on multiples of eval_every_steps, so a resumed run cuts the
      # schedule exactly where an uninterrupted one does.
      n = min(self.spec.budget.eval_every_steps, schedule.total_steps - step)
      t0 = time.perf_counter()
      state = advance(state, step, n, active)
      loss_sums = np.atleast_1d(distributed.fetch(state.loss_sum))  # syncs
      chunk_s = time.perf_counter() - t0
      step += n
      state = state.replace(loss_sum=jnp.zeros_like(state.loss_sum))
      train_pred, train_losses = _evaluate_split(eval_fn, state, data.x_train, data.y_train,
                                                 self.n_dev, vmapped)
      test_pred, test_losses = _evaluate_split(eval_fn, state, data.x_test, data.y_test,
                                               self.n_dev, vmapped)
      if not vmapped:
        train_pred, train_losses, test_pred, test_losses = (
            a[None] for a in (train_pred, train_losses, test_pred, test_losses))
      for k, r in enumerate(runs):
        if active[k]:
          r.train_time += chunk_s
          r.trained_images += n * batch
          self._record(r, step, n, float(loss_sums[k]), train_pred[k], train_losses[k],
                       test_pred[k], test_losses[k])
      # Every process asks at every boundary (the multi-host sync point needs it).
      preempted = watcher.preempted()
      for k, r in enumerate(runs):
        if not active[k]:
          continue
        r.preempted = preempted and r.finished is None
        if r.preempted:
          r.preemption_count += 1
        ckpt = r.member.checkpointer
        if ckpt is not None and (r.finished or r.preempted or ckpt.due(step)):
          ckpt.save(step, member_state(state, k), self._loop_record(r),
                    r.tracker.checkpoint_state() if r.tracker is not None else None)
        if r.preempted:
          r.member.log(f"preempted at step {step}: checkpointed; rerun the same command "
                       "to resume")
        active[k] = r.finished is None and not r.preempted
      if vmapped and 0 < sum(active) <= len(runs) // 2:
        break  # most slots are masked out: the rest go on in a smaller program
    for k, r in enumerate(runs):
      r.state = member_state(state, k)
      if not active[k]:  # the active ones go on below: their clock keeps running
        r.t_end = time.perf_counter()
    rest = [r for k, r in enumerate(runs) if active[k]]
    if rest and len(rest) < len(runs):
      self.train(rest, len(rest) > 1, watcher)

  def _record(self, run: _Run, step: int, n: int, loss_sum: float, train_pred, train_losses,
              test_pred, test_losses) -> None:
    """A member's evaluation after a chunk: curve, on_eval, log line, stop decision."""
    schedule = self.schedule
    ips = run.trained_images / max(run.train_time, 1e-9)
    ev = Evaluation(
        step=step, epoch=step / schedule.steps_per_epoch, train_loss=loss_sum / n,
        train_accuracy=float(np.mean(train_pred == run.y_train)),
        train_eval_loss=float(np.mean(train_losses)),
        test_accuracy=float(np.mean(test_pred == run.y_test)),
        test_loss=float(np.mean(test_losses)), learning_rate=float(self.lr_fn(step - 1)),
        images_per_sec=ips, wall_s=self._wall(run),
        train_predictions=train_pred, test_predictions=test_pred)
    run.curve.append(ev)
    if run.member.on_eval is not None:
      run.member.on_eval(ev)
    eta = (schedule.total_steps - step) * schedule.batch_size / max(ips, 1e-9)
    run.member.log(f"step {step}/{schedule.total_steps} (epoch {ev.epoch:.1f}) | "
                   f"train acc {ev.train_accuracy:.4f} test acc {ev.test_accuracy:.4f} | "
                   f"loss {ev.train_loss:.4f} | {ips:,.0f} img/s | ETA {_format_eta(eta)}")
    if not math.isfinite(ev.train_loss) or not math.isfinite(ev.train_eval_loss):
      run.finished = {"status": "diverged", "steps_to_fit": None, "time_to_fit_s": None}
      run.member.log(f"loss is not finite at step {step}: run diverged")
    elif ev.train_accuracy >= self.spec.budget.fit_threshold:
      run.finished = {"status": "completed", "steps_to_fit": step, "time_to_fit_s": ev.wall_s}
    elif step >= schedule.total_steps:
      run.finished = {"status": "budget_exhausted", "steps_to_fit": None,
                      "time_to_fit_s": None}

  # -- outcome ---------------------------------------------------------------

  def outcome(self, run: _Run) -> RunOutcome:
    ckpt = run.member.checkpointer
    if ckpt is not None:
      ckpt.wait()
    final = run.curve[-1]
    if final.train_predictions is None:
      # Resumed from the final checkpoint: recompute the final predictions (the
      # same program on the same parameters gives the same values).
      train_pred, _ = _evaluate_split(self.eval_fn, run.state, run.data.x_train,
                                      run.data.y_train, self.n_dev)
      test_pred, _ = _evaluate_split(self.eval_fn, run.state, run.data.x_test,
                                     run.data.y_test, self.n_dev)
      final = dataclasses.replace(final, train_predictions=train_pred,
                                  test_predictions=test_pred)
      run.curve[-1] = final
    done = run.finished if not run.preempted else None
    return RunOutcome(
        "preempted" if done is None else done["status"], final, run.curve,
        None if done is None else done["steps_to_fit"],
        None if done is None else done["time_to_fit_s"], run.compile_s, self._wall(run),
        run.trained_images / max(run.train_time, 1e-9), run.state, run.data, self.schedule,
        preemption_count=run.preemption_count, resumed_from_step=run.resumed_from,
        checkpoint=ckpt.summary() if ckpt is not None else None,
        vmapped_seeds=run.vmapped_seeds)
