"""The compiled programs of the loop: advance a run (or a vmapped group) n steps, evaluate.

Each `*_program` returns (compile_s, advance) with
``advance(state, step, n, active) -> state``: n train steps from `step` for one
member, or for every member of a stacked group whose `active` flag is set.
Fused programs run the steps in one lax.fori_loop (training/steps.py,
`fused_steps_carrying_order`) and hand each epoch's batch order on to the next
chunk (`_CarriedOrder`), so an epoch is sorted once however it is chunked;
unfused ones (convolutional models on CPU) run a Python loop of
jitted steps, syncing often enough to keep XLA:CPU's rendezvous safe.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from memobench.training.steps import Steps, fused_steps_carrying_order, make_steps
from memobench.workload import Workload

# On CPU, more than ~32 queued multi-device steps without a sync can deadlock
# XLA's rendezvous; unfused loops block at least this often.
_MAX_QUEUED_STEPS = 16

Advance = Callable[[Any, int, int, Any], Any]


def eval_programs(steps: Steps, mesh: jax.sharding.Mesh,
                  shared_data: bool = False) -> tuple[Callable, Callable]:
  """(eval_fn, stacked_eval_fn): the batch-sharded eval step, alone and vmapped over members.

  shared_data: stacked_eval_fn takes one (x, y) for every member (vmap in_axes
  None), not a stack of each member's own.
  """
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

  def sharded_eval(params, model_state, x, y):
    x = jax.lax.with_sharding_constraint(x, batch_sharding)
    y = jax.lax.with_sharding_constraint(y, batch_sharding)
    return jax.lax.with_sharding_constraint(steps.eval_step(params, model_state, x, y),
                                            replicated)
  data_axis = None if shared_data else 0
  return jax.jit(sharded_eval), jax.jit(jax.vmap(sharded_eval,
                                                 in_axes=(0, 0, data_axis, data_axis)))


class _CarriedOrder:
  """The batch order the last chunk ended with, and the epoch it belongs to.

  Passed to the next chunk, which uses it when it starts in that epoch (an
  epoch longer than a chunk is then sorted once, not once per chunk). A fresh
  program (or a resumed run) starts without one: its first chunk computes it.
  """

  def __init__(self, steps_per_epoch: int):
    self.steps_per_epoch = steps_per_epoch
    self.order = None
    self.epoch: int | None = None

  def valid_for(self, step: int) -> np.bool_:
    return np.bool_(self.order is not None and self.epoch == step // self.steps_per_epoch)

  def keep(self, order, step: int, n: int) -> None:
    self.order, self.epoch = order, (step + n - 1) // self.steps_per_epoch


def _placeholder_order(epoch_order: Callable, members: int | None = None) -> np.ndarray:
  """An order of the right shape and dtype, never read (its valid flag is False)."""
  order = jax.eval_shape(epoch_order, jnp.zeros((), jnp.int32))
  shape = order.shape if members is None else (members, *order.shape)
  return np.zeros(shape, order.dtype)


def single_program(workload: Workload, steps: Steps, replicated: NamedSharding, state,
                   data) -> tuple[float, Advance]:
  """One member's own program (fused, or a Python loop of jitted steps)."""
  schedule, chunk_len = workload.schedule, workload.eval_every_steps
  t0 = time.perf_counter()
  if workload.fused:
    chunk_fn = jax.jit(
        lambda state, data, order, valid, n: fused_steps_carrying_order(
            steps, state, data, n, order=order, order_valid=valid),
        static_argnums=4, donate_argnums=(0, 2))
    full = min(chunk_len, schedule.total_steps)
    carried = _CarriedOrder(schedule.steps_per_epoch)
    placeholder = _placeholder_order(steps.epoch_order)
    compiled_chunk = chunk_fn.lower(state, data, placeholder, np.bool_(False), full).compile()

    def advance(state, step, n, active):
      del active
      valid = carried.valid_for(step)
      order = carried.order if valid else placeholder
      state, order = (compiled_chunk(state, data, order, valid) if n == full
                      else chunk_fn(state, data, order, valid, n))
      carried.keep(order, step, n)
      return state
    return time.perf_counter() - t0, advance

  step_fn = jax.jit(steps.train_step, donate_argnums=0)
  # Once per epoch, not per step (see fused_steps).
  order_fn = jax.jit(steps.epoch_order, out_shardings=replicated)
  compiled_step = step_fn.lower(state, data, order_fn(0)).compile()

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


# train_group's default: slices of the backend's width (default_members_per_slice).
AUTO = "auto"


def default_members_per_slice(backend: str | None = None) -> int | None:
  """Members per slice of a vmapped group's training program when the caller names none.

  CPU: 1. Each member's steps are then the single-model program's computation
  (a vmapped seed equals its single run bitwise) and its parameters, momentum and
  activations stay in the caches for its steps, where one vmap of K members
  streams K stacked states through memory every step: measured 1.0-1.7x one vmap
  of all members on mlp1x512 populations of 8-512 models (digits, mnist1d,
  mnist5k; docs/BENCHMARKS.md, "Populations"). Accelerators: None (one vmap),
  since one small model leaves them mostly idle.
  """
  return 1 if (backend or jax.default_backend()) == "cpu" else None


def map_members(fn: Callable, args: tuple, batched: tuple[bool, ...],
                members_per_slice: int | None = None) -> Any:
  """`fn` over the members of the stacked `args` (those flagged in `batched`; the rest shared).

  members_per_slice None: one jax.vmap over every member (one batched op per
  layer for the whole group). An int c: jax.lax.map over slices of c members,
  each slice vmapped, one after another in the same program: a population
  larger than the caches then streams through them a slice at a time
  (docs/BENCHMARKS.md, "Populations"). A different slice width can sum a
  batched matmul in another order, so it is part of what reproduces a result.
  """
  if members_per_slice is None:
    return jax.vmap(fn, in_axes=tuple(0 if b else None for b in batched))(*args)
  mapped = tuple(a if b else None for a, b in zip(args, batched))

  def one(xs):
    return fn(*(x if b else a for x, a, b in zip(xs, args, batched)))
  return jax.lax.map(one, mapped, batch_size=members_per_slice)


def vmapped_program(workload: Workload, mesh: jax.sharding.Mesh, keys: list[jax.Array],
                    state, data, shared_data: bool = False,
                    loss_weights: np.ndarray | None = None,
                    members_per_slice: int | None = None) -> tuple[float, Advance]:
  """One program that trains every member of a stacked group (`state`, `data` stacked).

  shared_data: `data` is one dataset that every member trains on, unbatched
  (vmap in_axes None), rather than a stack of K copies.
  loss_weights: (members, training examples) per-example loss weights
  (loop.Member.loss_weights), or None: the plain mean loss.
  members_per_slice: see `map_members` (None: every member in one vmap).
  """
  keys = jnp.stack(keys)
  chunk_len = min(workload.eval_every_steps, workload.schedule.total_steps)
  weights = None if loss_weights is None else jnp.asarray(loss_weights, jnp.float32)

  def run_chunk(state, data, active, start_step, order, valid, n):
    def one(key, w, state, data, order):
      # Each member's own steps (keys, masks) from its traced key; start_step
      # and valid are shared, so each epoch's order is a real lax.cond, not a select.
      return fused_steps_carrying_order(make_steps(workload, key, mesh, loss_weights=w), state,
                                        data, n, start_step, order, valid)
    new, order = map_members(one, (keys, weights, state, data, order),
                             (True, weights is not None, True, not shared_data, True),
                             members_per_slice)
    # Finished members keep their state.
    return jax.tree.map(
        lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new,
        state), order

  chunk_fn = jax.jit(run_chunk, static_argnums=6, donate_argnums=(0, 4))
  t0 = time.perf_counter()
  placeholder = _placeholder_order(lambda e: make_steps(workload, keys[0], mesh).epoch_order(e),
                                   len(keys))
  carried = _CarriedOrder(workload.schedule.steps_per_epoch)
  compiled = chunk_fn.lower(state, data, np.ones(len(keys), bool), np.int32(0), placeholder,
                            np.bool_(False), chunk_len).compile()

  def advance(state, step, n, active):
    # numpy, not device arrays: every process of a multi-host run passes the same.
    valid = carried.valid_for(step)
    order = carried.order if valid else placeholder
    active, step32 = np.asarray(active), np.int32(step)
    state, order = (compiled(state, data, active, step32, order, valid) if n == chunk_len
                    else chunk_fn(state, data, active, step32, order, valid, n))
    carried.keep(order, step, n)
    return state
  return time.perf_counter() - t0, advance
