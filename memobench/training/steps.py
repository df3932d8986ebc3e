"""A run's pure functions: init, train step, eval step, and fused steps.

The whole (corrupted) dataset stays resident on device. A train step takes the
state and the dataset, and derives its own batch from the step number: epoch
e = step // steps_per_epoch visits the training set in the order
permutation(fold_in(shuffle_key, e)), so the batch schedule is a pure function
of (seed, step) -- independent of device count, and exactly resumable. A
workload with a `subset_size` m (the subsample estimator) trains each run on
its own subset, members = subset_indices(key, n, m) (in index
order): epoch e visits members[permutation(fold_in(shuffle_key, e), m)].

Data parallelism: jit over a 1-D device Mesh ('data'); each global batch is
sharded over the devices, parameters are replicated, and XLA inserts the
gradient all-reduce. Global batch = spec.budget.batch_size, which must divide
by the device count.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from memobench import prng, specs
from memobench.data import corruptions, preprocessing
from memobench.training import objectives, turnover_masks
from memobench.training.losses import cross_entropy
from memobench.workload import Schedule, Workload


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # non-parameter collections, e.g. {'batch_stats': ...}
  opt_state: Any
  loss_sum: jax.Array  # sum of training batch losses since the last eval (logging)


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


# The subset's stream of a model key: prng.DATA, as the estimator has always used
# (stream 0 of the model key; init, shuffle and dropout are streams 1, 2, 3).
_SUBSET = prng.DATA


def subset_mask(key: jax.Array, n: int, m: int) -> jax.Array:
  """Exactly m of n examples, uniformly at random: a pure function of the model key."""
  order = jnp.argsort(jax.random.uniform(jax.random.fold_in(key, _SUBSET), (n,)))
  return jnp.zeros(n, bool).at[order[:m]].set(True)


def subset_indices(key: jax.Array, n: int, m: int) -> jax.Array:
  """The m training examples of `subset_mask(key, n, m)`, in index order (jit-able)."""
  return jnp.nonzero(subset_mask(key, n, m), size=m)[0]



def make_steps(workload: Workload, key: jax.Array,
               mesh: jax.sharding.Mesh | None = None,
               loss_weights: jax.Array | None = None) -> Steps:
  """The pure init/train/eval functions of `workload` for the run whose key is `key`.

  Called with a traced key inside a vmapped group: it looks nothing up and
  loads nothing (the workload holds every resolved piece).
  loss_weights: one weight per training example (loop.Member.loss_weights);
  the objective then gets the batch's weights (`weights=`), and the batch
  order is unchanged. None: the objective is called as always.
  """
  spec, schedule, module, tx = workload.spec, workload.schedule, workload.module, workload.tx
  input_shape = workload.dataset.input_shape
  shuffle_key = jax.random.fold_in(key, prng.SHUFFLE)
  dropout_key = jax.random.fold_in(key, prng.DROPOUT)
  objective = workload.objective(key)  # spec.analysis.objective; default: mean CE
  example_masks = turnover_masks.masker(spec, key)  # idx -> per-example dropout masks (or no-op)
  batch_sharding = NamedSharding(mesh, P("data")) if mesh is not None else None
  if loss_weights is not None:
    loss_weights = jnp.asarray(loss_weights, jnp.float32)
  if workload.subset_size is None:
    order_fn = functools.partial(epoch_order, shuffle_key, schedule=schedule)
  else:
    # The run's own subset (computed once per program), visited in a fresh order each epoch.
    members = subset_indices(key, workload.dataset.num_train, workload.subset_size)

    def order_fn(epoch):
      return members[epoch_order(shuffle_key, epoch, schedule)]

  def init(init_key):
    variables = module.init(init_key, jnp.zeros((1, *input_shape), jnp.float32), train=False)
    variables = flax.core.unfreeze(variables)
    params = variables.pop("params")
    variables.pop("intermediates", None)
    return TrainState(jnp.zeros((), jnp.int32), params, variables, tx.init(params),
                      jnp.zeros((), jnp.float32))

  def train_step(state, data, order=None):
    if order is None:
      order = order_fn(state.step // schedule.steps_per_epoch)
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
      if loss_weights is None:
        return objective(forward, x, y, idx, state.step)
      return objective(forward, x, y, idx, state.step, weights=loss_weights[idx])

    if spec.analysis.igr_lambda:  # objective igr: + lambda ||grad loss||^2 (double backprop)
      loss_fn = objectives.gradient_penalized(loss_fn, spec.analysis.igr_lambda)
    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(state.step + 1, optax.apply_updates(state.params, updates),
                      dict(new_model_state), opt_state, state.loss_sum + loss)

  return Steps(init, train_step, functools.partial(eval_step, module), module, schedule,
               order_fn)


def eval_step(module: nn.Module, params, model_state, x, y):
  """(predictions, per-example loss) of a batch in evaluation mode."""
  logits = module.apply({"params": params, **model_state}, x, train=False)
  return jnp.argmax(logits, -1).astype(jnp.int32), cross_entropy(logits, y)


def fused_steps(steps: Steps, state: TrainState, data: corruptions.CorruptedData,
                n: int, start_step: jax.Array | None = None) -> TrainState:
  """`n` train steps in one lax.fori_loop, computing each epoch's batch order once.

  The order is a full permutation (a sort): on a 2-core CPU ~1.7 ms for 4,000
  examples and ~23 ms for 50,000, more than an MLP step, so it is carried
  across steps rather than recomputed by every step (docs/BENCHMARKS.md).
  Same batches as `train_step` alone.
  """
  return fused_steps_carrying_order(steps, state, data, n, start_step)[0]


def fused_steps_carrying_order(steps: Steps, state: TrainState,
                               data: corruptions.CorruptedData, n: int,
                               start_step: jax.Array | None = None,
                               order: jax.Array | None = None,
                               order_valid: jax.Array | bool = False
                               ) -> tuple[TrainState, jax.Array]:
  """`fused_steps`, taking and returning the batch order so that chunks share it.

  `order` is the order of the epoch of the first step when `order_valid`
  (a traced bool: the loop knows whether the previous chunk ended in that
  epoch), else it is computed at the first step. Returns (state, the order of
  the last step's epoch). A chunk shorter than an epoch then sorts nothing
  (at 50,000 examples and 32-step chunks that was ~0.3-0.7 ms per step).
  Same batches, same numbers: the order is a pure function of the epoch.
  """
  spe = steps.schedule.steps_per_epoch
  start_step = state.step if start_step is None else start_step

  def body(i, carry):
    state, order = carry
    step = start_step + i
    recompute = jnp.where(i == 0, jnp.logical_not(order_valid), step % spe == 0)
    order = jax.lax.cond(recompute, lambda: steps.epoch_order(step // spe), lambda: order)
    return steps.train_step(state, data, order), order

  if order is None:
    shape = jax.eval_shape(steps.epoch_order, state.step)
    order = jnp.zeros(shape.shape, shape.dtype)
  return jax.lax.fori_loop(0, n, body, (state, order))
