"""Online SGD on sparse parities (Barak et al. 2022): a fresh batch at every step, hinge loss.

Why a program of its own, not memobench's training loop: the loop trains on a
resident, fixed training set with the cross-entropy and measures what its
metrics table defines; Barak et al. train on fresh online batches (the
population, never a fixed sample), with the hinge loss, and the experiment
reads the first layer's weights, their initial values and the loss at every
evaluation. `train(workload, seeds, ...)` runs it: the workload (a resolved
`parity_n{n}_k{k}` spec, with its optimizer and learning rate) gives the model,
optimizer, batch size and the fixed test set; the seeds train side by side,
one jitted, vmapped-over-seeds `lax.scan` per evaluation interval.
`train_data="fixed"` draws each batch uniformly from the dataset's fixed
training set instead.

The model's output (`output`):
  margin   the spec's two-class MLP; f = logit_1 - logit_0 (memobench's first
           protocol; the margin doubles the output scale and the output layer's
           effective learning rate against a scalar output)
  scalar   the same MLP with ONE output unit, f its value (the paper's kind)
and its initialization (`init`):
  flax     flax's defaults: LeCun-normal kernels (std 1/sqrt(fan_in), truncated),
           zero biases
  uniform  PyTorch's nn.Linear default: kernels and biases U(-1/sqrt(fan_in),
           1/sqrt(fan_in)) (std 1/sqrt(3 fan_in): sqrt(3) smaller kernels)
The loss is the hinge max(0, 1 - t f), t = 2 * label - 1; a prediction is sign(f).

Per seed, the run key is prng.run_key(seed): parameters from its INIT stream,
online batches from its PARITY_ONLINE stream (fixed batches: SHUFFLE), each a
pure function of (seed, step).

Measured at every evaluation (every `eval_every` steps, and at step 0), per seed:
  loss            hinge loss on the fixed test set (2,000 examples; online training
                  never sees them)
  test_accuracy   sign(f) against the label on it
  movement_ratio  parity.coordinate_mass_ratio of the first layer's movement
                  W_t - W_0: mean row norm over S / over the other coordinates
                  (~1 for an unstructured random walk; null at step 0: 0 / 0)
  weight_ratio    the same ratio of W_t itself
  train_loss      mean hinge loss of the interval's training batches (null at 0)
and, where `population` (n <= POPULATION_MAX_N: every one of the 2^n inputs
enumerated, so these are exact, not estimates):
  population_gradient_gap  coordinate_mass_ratio of the gradient of the
                  population hinge loss with respect to the first layer's kernel
                  (Barak et al.'s Fourier gap: the relevant coordinates' rows of
                  the population gradient against the others')
  population_loss, population_accuracy   the exact population hinge loss and accuracy
A SIGTERM (memobench.signals) stops the run at the next evaluation; the result
then says so (`preempted`), and the caller discards it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import models, prng, signals
from memobench.data import parity
from memobench.workload import Workload

TRAIN_DATA = ("online", "fixed")
OUTPUTS = ("margin", "scalar")
INITS = ("flax", "uniform")
POPULATION_MAX_N = 15   # 2^15 = 32,768 inputs: exact population measures up to here
_POPULATION_CHUNK = 4096


def first_kernel(params):
  """The first Dense layer's kernel (n, width): one row per input coordinate."""
  return params["Dense_0"]["kernel"]


def uniform_init(params, key):
  """PyTorch's nn.Linear default: every Dense kernel and bias U(+-1/sqrt(fan_in))."""
  out = {}
  for i, name in enumerate(sorted(params)):
    layer = params[name]
    bound = 1.0 / np.sqrt(layer["kernel"].shape[0])
    k_key, b_key = jax.random.split(jax.random.fold_in(key, i))
    out[name] = {"kernel": jax.random.uniform(k_key, layer["kernel"].shape, layer["kernel"].dtype,
                                              -bound, bound),
                 "bias": jax.random.uniform(b_key, layer["bias"].shape, layer["bias"].dtype,
                                            -bound, bound)}
  return out


def hinge(f, labels):
  """Per-example max(0, 1 - t f), t = 2 * label - 1 in {-1, +1}."""
  return jnp.maximum(0.0, 1.0 - (2.0 * labels - 1.0) * f)


def all_inputs(n: int) -> np.ndarray:
  """Every input of {-1, +1}^n, (2^n, n) float32 (row r: bit j of r set -> -1)."""
  bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
  return (1.0 - 2.0 * bits).astype(np.float32)


def population_set(n: int, coords) -> tuple[jax.Array, jax.Array]:
  """Every input of {-1, +1}^n with its label, in chunks: (chunks, m, n, 1), (chunks, m)."""
  x_all = all_inputs(n)
  y_all = np.asarray(parity.label_of(x_all, coords))
  chunks = max(1, len(x_all) // _POPULATION_CHUNK)
  return jnp.asarray(x_all.reshape(chunks, -1, n, 1)), jnp.asarray(y_all.reshape(chunks, -1))


def population_measures(f_of, params, x_all, y_all, coords) -> dict[str, jax.Array]:
  """Exact population hinge loss, accuracy and the Fourier gap of the population gradient
  with respect to the first kernel, over every input (`population_set`). Jittable."""
  def chunk(xy):
    x, y = xy

    def loss_sum(p):
      f = f_of(p, x)
      return jnp.sum(hinge(f, y)), jnp.sum((f > 0) == (y == 1))
    (total, correct), grads = jax.value_and_grad(loss_sum, has_aux=True)(params)
    return total, correct, first_kernel(grads)
  totals, corrects, kernels = jax.lax.map(chunk, (x_all, y_all))
  count = x_all.shape[0] * x_all.shape[1]
  return {"population_loss": jnp.sum(totals) / count,
          "population_accuracy": jnp.sum(corrects) / count,
          "population_gradient_gap": parity.coordinate_mass_ratio(
              jnp.sum(kernels, 0) / count, coords)}


def train(wl: Workload, seeds: int, *, max_steps: int, eval_every: int,
          train_data: str = "online", solved_accuracy: float = 0.99, output: str = "margin",
          init: str = "flax", population: bool = False,
          log: Callable[[str], None] = lambda msg: None) -> dict[str, Any]:
  """Trains `seeds` runs of `wl` (a sparse parity) side by side until every seed's test
  accuracy reaches `solved_accuracy` or `max_steps` are done.

  Returns {"coords", "steps", "seconds", "preempted", "curves": {name: [per-seed list]}}.
  """
  for name, value, allowed in (("train_data", train_data, TRAIN_DATA),
                               ("output", output, OUTPUTS), ("init", init, INITS)):
    if value not in allowed:
      raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
  n, k = parity.parse_name(wl.spec.dataset.name)
  if population and n > POPULATION_MAX_N:
    raise ValueError(f"population measures enumerate 2^n inputs: n={n} > {POPULATION_MAX_N}")
  ds, tx = wl.dataset, wl.tx
  module = wl.module if output == "margin" else models.build(wl.spec.model, 1)
  coords = parity.hidden_coordinates(n, k)
  batch = wl.spec.budget.batch_size
  x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
  x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  online = train_data == "online"

  def f_of(params, x):
    out = module.apply({"params": params}, x, train=False)
    return out[..., 1] - out[..., 0] if output == "margin" else out[..., 0]

  def loss_of(params, x, y):
    return jnp.mean(hinge(f_of(params, x), y))

  def init_params(seed_key):
    init_key = jax.random.fold_in(seed_key, prng.INIT)
    params = module.init(init_key, jnp.zeros((1, *ds.input_shape)), train=False)["params"]
    if init == "uniform":
      params = uniform_init(params, init_key)
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

  if population:
    x_all, y_all = population_set(n, coords)

  def evaluate(params, initial_kernel):
    f = f_of(params, x_test)
    kernel = first_kernel(params)
    out = {"loss": jnp.mean(hinge(f, y_test)),
           "test_accuracy": jnp.mean(((f > 0) == (y_test == 1)).astype(jnp.float32)),
           # 0 / 0 at step 0 (no movement yet): NaN, written as null.
           "movement_ratio": parity.coordinate_mass_ratio(kernel - initial_kernel, coords),
           "weight_ratio": parity.coordinate_mass_ratio(kernel, coords)}
    if population:
      out.update(population_measures(f_of, params, x_all, y_all, coords))
    return out

  @jax.jit
  def setup(seed_ids):
    # One program (each eager op would compile one of its own).
    seed_keys = jax.vmap(prng.run_key)(seed_ids)
    data_keys = jax.vmap(lambda key: jax.random.fold_in(
        key, prng.PARITY_ONLINE if online else prng.SHUFFLE))(seed_keys)
    params, opt_state = jax.vmap(init_params)(seed_keys)
    return params, opt_state, data_keys, first_kernel(params)

  params, opt_state, data_keys, initial_kernel = setup(jnp.arange(seeds, dtype=jnp.uint32))
  interval_fn = jax.jit(jax.vmap(interval, in_axes=(0, 0, 0, None)))
  evaluate_fn = jax.jit(jax.vmap(evaluate))
  first = jax.device_get(evaluate_fn(params, initial_kernel))
  names = (*first, "train_loss")
  curves: dict[str, list] = {name: [] for name in names}
  for name in first:
    curves[name].append(np.asarray(first[name], np.float64).tolist())
  curves["train_loss"].append([None] * seeds)
  steps = [0]
  t0 = time.time()
  step, preempted = 0, False
  while step < max_steps:
    params, opt_state, train_loss = interval_fn(params, opt_state, data_keys, step)
    step += eval_every
    out = jax.device_get(evaluate_fn(params, initial_kernel))
    for name in out:
      curves[name].append(np.asarray(out[name], np.float64).tolist())
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
