"""Short runs of a learning-rate grid, vmapped as members: which rates a batch size can take.

Granziol et al.'s largest stable learning rate needs, for each batch size B
and optimizer, a grid of rates x seeds of short runs. The library's loop
vmaps seeds only (a group differs in its seed), and ~150 separate runs of 100
steps would cost more in compilation than in training, so this program
compiles one jitted function per (workload, B, steps, optimizer) and vmaps it
over members, each a (run key, learning rate) pair.

A member starts from its run key's initialization (prng.INIT, as the loop
does) and takes `steps` steps of plain SGD (no momentum: update -lr * grad) or
Adam (optax.scale_by_adam, then -lr * update), each on a fresh random batch of
B training examples drawn without replacement from the whole training set
(prng.SHUFFLE folded with the step; the same batches for every rate of a
seed), the model in evaluation mode (no dropout). It reports whether every
batch loss was finite and the whole training set's mean cross-entropy before
and after: the rule that calls a run stable is the caller's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memobench import prng
from memobench.training import losses
from memobench.workload import Workload

KINDS = ("sgd", "adam")


def _init(module, x, run_key):
  return module.init(jax.random.fold_in(run_key, prng.INIT), x[:1], train=False)["params"]


def init_params(workload: Workload, seed: int):
  """The parameters a member of `seed` starts from (those of the loop's run of that seed)."""
  return _init(workload.module, jnp.asarray(workload.dataset.x_train), prng.run_key(seed))


def program(workload: Workload, batch: int, steps: int, kind: str):
  """(run keys (M,), learning rates (M,)) -> (all batch losses finite, initial loss,
  final loss), each (M,): one jitted function, vmapped over the M members."""
  if kind not in KINDS:
    raise ValueError(f"optimizer {kind!r}: expected one of {', '.join(KINDS)}")
  module, ds = workload.module, workload.dataset
  x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  n = x.shape[0]
  if not 0 < batch <= n:
    raise ValueError(f"batch size {batch} is not within the {n} training examples")
  tx = optax.scale_by_adam() if kind == "adam" else optax.identity()
  full_loss = lambda p: losses.mean_cross_entropy(  # pylint: disable=unnecessary-lambda-assignment
      module.apply({"params": p}, x, train=False), y)

  def member(run_key, lr):
    params = _init(module, x, run_key)
    shuffle = jax.random.fold_in(run_key, prng.SHUFFLE)

    def step(carry, i):
      params, opt_state = carry
      idx = jax.random.permutation(jax.random.fold_in(shuffle, i), n)[:batch]
      loss, grads = jax.value_and_grad(lambda p: losses.mean_cross_entropy(
          module.apply({"params": p}, x[idx], train=False), y[idx]))(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
      return (params, opt_state), jnp.isfinite(loss)

    (final, _), finite = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
    return jnp.all(finite), full_loss(params), full_loss(final)

  return jax.jit(jax.vmap(member))


def run_grid(workload: Workload, seeds: list[int], lrs: list[float], batch: int, steps: int,
             kind: str, seeds_per_program: int = 0) -> dict[str, list[list]]:
  """Every (seed, rate) pair of the grid: {"finite", "initial", "final"}, each a list per
  seed of a list per rate. The members of `seeds_per_program` seeds at a time (0: all) run in
  one vmapped program (seed-major); another width gives the same runs up to float rounding
  (XLA sums a batched program in another order), which is how a rerun is checked."""
  chunk = seeds_per_program or len(seeds)
  out: dict[str, list[list]] = {"finite": [], "initial": [], "final": []}
  run = program(workload, batch, steps, kind)
  for start in range(0, len(seeds), chunk):
    part = seeds[start:start + chunk]
    keys = jnp.stack([prng.run_key(s) for s in part for _ in lrs])
    rates = jnp.asarray([lr for _ in part for lr in lrs], jnp.float32)
    finite, initial, final = (np.asarray(a) for a in run(keys, rates))
    shape = (len(part), len(lrs))
    out["finite"] += finite.reshape(shape).tolist()
    out["initial"] += initial.astype(np.float64).reshape(shape).tolist()
    out["final"] += final.astype(np.float64).reshape(shape).tolist()
  return out
