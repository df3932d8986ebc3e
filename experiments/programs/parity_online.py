"""Online SGD on sparse parities (Barak et al. 2022): a fresh batch at every step, hinge loss.

Why a program of its own, not memobench's training loop: the loop trains on a
resident, fixed training set with the cross-entropy and measures what its
metrics table defines; Barak et al. train on fresh online batches (the
population, never a fixed sample), with the hinge loss, and the experiment
reads the first layer's weights, their initial values and the loss at every
evaluation. `train(workload, seeds, ...)` runs it: the workload (a resolved
`parity_n{n}_k{k}` spec) gives the model, optimizer, batch size and the fixed
test set; the seeds train side by side, one jitted, vmapped-over-seeds
`lax.scan` per evaluation interval. `train_data="fixed"` draws each batch
uniformly from the dataset's fixed training set instead.

Per seed, the run key is prng.run_key(seed): parameters from its INIT stream,
online batches from its PARITY_ONLINE stream (fixed batches: SHUFFLE), each a
pure function of (seed, step).

Measured at every evaluation (every `eval_every` steps, and at step 0), per seed:
  loss            hinge loss on the fixed test set (an estimate of the population
                  loss: online training never sees those examples)
  test_accuracy   the sign of the margin against the label
  fourier_gap     parity.coordinate_mass_ratio of the first layer's movement
                  W_t - W_0 (mean row norm over S / over the other coordinates;
                  ~1 for an unstructured random walk; null at step 0: 0 / 0)
  weight_ratio    the same ratio of W_t itself
  train_loss      mean hinge loss of the interval's training batches (null at 0)
A SIGTERM (memobench.signals) stops the run at the next evaluation; the result
then says so (`preempted`), and the caller discards it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, signals
from memobench.data import parity
from memobench.training import losses
from memobench.workload import Workload

TRAIN_DATA = ("online", "fixed")


def first_kernel(params):
  """The first Dense layer's kernel (n, width): one row per input coordinate."""
  return params["Dense_0"]["kernel"]


def train(wl: Workload, seeds: int, *, max_steps: int, eval_every: int,
          train_data: str = "online", solved_accuracy: float = 0.99,
          log: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
  """Trains `seeds` runs of `wl` (a sparse parity) side by side until every seed's test
  accuracy reaches `solved_accuracy` or `max_steps` are done.

  Returns {"coords", "steps", "seconds", "preempted", "curves": {name: [per-seed list]}}.
  """
  if train_data not in TRAIN_DATA:
    raise ValueError(f"train_data={train_data!r}: expected one of {', '.join(TRAIN_DATA)}")
  n, k = parity.parse_name(wl.spec.dataset.name)
  ds, module, tx = wl.dataset, wl.module, wl.tx
  coords = parity.hidden_coordinates(n, k)
  batch = wl.spec.budget.batch_size
  x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
  x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  online = train_data == "online"

  def loss_of(params, x, y):
    return jnp.mean(losses.binary_hinge(module.apply({"params": params}, x, train=False), y))

  def init(seed_key):
    params = module.init(jax.random.fold_in(seed_key, prng.INIT),
                         jnp.zeros((1, *ds.input_shape)), train=False)["params"]
    return params, tx.init(params)

  def draw(data_key, step):
    if online:
      x, y = parity.online_batch(data_key, step, batch, n, coords)
      return x[..., None], y
    pick = jax.random.randint(jax.random.fold_in(data_key, step), (batch,), 0, ds.num_train)
    return x_train[pick], y_train[pick]

  def interval(params, opt_state, data_key, start):
    def body(carry, step):
      params, opt_state = carry
      x, y = draw(data_key, step)
      loss, grads = jax.value_and_grad(loss_of)(params, x, y)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (jax.tree.map(jnp.add, params, updates), opt_state), loss
    (params, opt_state), batch_losses = jax.lax.scan(
        body, (params, opt_state), start + jnp.arange(eval_every))
    return params, opt_state, jnp.mean(batch_losses)

  def evaluate(params, initial_kernel):
    logits = module.apply({"params": params}, x_test, train=False)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == y_test).astype(jnp.float32))
    kernel = first_kernel(params)
    return {"loss": jnp.mean(losses.binary_hinge(logits, y_test)), "test_accuracy": accuracy,
            # 0 / 0 at step 0 (no movement yet): NaN, written as null.
            "fourier_gap": parity.coordinate_mass_ratio(kernel - initial_kernel, coords),
            "weight_ratio": parity.coordinate_mass_ratio(kernel, coords)}

  @jax.jit
  def setup(seed_ids):
    # One program (each eager op would compile one of its own).
    seed_keys = jax.vmap(prng.run_key)(seed_ids)
    data_keys = jax.vmap(lambda key: jax.random.fold_in(
        key, prng.PARITY_ONLINE if online else prng.SHUFFLE))(seed_keys)
    params, opt_state = jax.vmap(init)(seed_keys)
    return params, opt_state, data_keys, first_kernel(params)

  params, opt_state, data_keys, initial_kernel = setup(jnp.arange(seeds, dtype=jnp.uint32))
  interval_fn = jax.jit(jax.vmap(interval, in_axes=(0, 0, 0, None)))
  evaluate_fn = jax.jit(jax.vmap(evaluate))
  names = ("loss", "test_accuracy", "fourier_gap", "weight_ratio", "train_loss")
  curves: dict[str, list] = {name: [] for name in names}
  steps = [0]
  first = jax.device_get(evaluate_fn(params, initial_kernel))
  for name in names[:-1]:
    curves[name].append(np.asarray(first[name]).tolist())
  curves["train_loss"].append([None] * seeds)
  t0 = time.time()
  step, preempted = 0, False
  while step < max_steps:
    params, opt_state, train_loss = interval_fn(params, opt_state, data_keys, step)
    step += eval_every
    out = jax.device_get(evaluate_fn(params, initial_kernel))
    for name in names[:-1]:
      curves[name].append(np.asarray(out[name]).tolist())
    curves["train_loss"].append(np.asarray(train_loss).tolist())
    steps.append(step)
    if np.all(np.asarray(out["test_accuracy"]) >= solved_accuracy):
      break
    if signals.sigterm_received():
      preempted = True
      break
  seconds = time.time() - t0
  # Columns per seed: curves[name][seed] is that seed's curve.
  per_seed = {name: [list(col) for col in zip(*rows)] for name, rows in curves.items()}
  log(f"{step} steps x {seeds} seeds in {seconds:.0f} s; final test accuracy "
      f"{np.round([c[-1] for c in per_seed['test_accuracy']], 3).tolist()} "
      f"(S = {coords.tolist()})")
  return {"coords": coords.tolist(), "steps": steps, "seconds": seconds,
          "preempted": preempted, "curves": per_seed}
