"""Per-example scores from single training runs: EL2N, GraNd and TracIn self-influence.

EL2N and GraNd (Paul, Ganguli & Dziugaite, "Deep learning on a data diet:
finding important examples early in training", NeurIPS 2021, Sec. 2): for a
model f_w at an early point of training (they use epoch 20 of 200 on CIFAR-10),

  EL2N(x, y)  = || softmax(f_w(x)) - onehot(y) ||_2
  GraNd(x, y) = || grad_w loss(f_w(x), y) ||_2      (all parameters; cross-entropy)

each averaged over several independent runs (they use 10 seeds; the benchmark
averages over a few). High scores mark hard or atypical examples, which the
paper keeps when pruning.

TracIn self-influence (Pruthi, Liu, Kale & Sundararajan, "Estimating training
data influence by tracing gradient descent", NeurIPS 2020, TracInCP, Eq. 3
with z' = z): over checkpoints w_t saved during training, with the learning
rate eta_t of the interval each one closes,

  TracIn_self(z) = sum_t eta_t || grad_w loss(w_t, z) ||^2.

It is the first-order estimate of how much the training on z lowered z's own
loss; Pruthi et al. use it to find mislabelled examples. `TracInSelfInfluence`
accumulates it one checkpoint at a time (e.g. at each of a run's evaluations).

The loss is the cross-entropy against the label trained on (the corrupted one
where labels are corrupted); models are evaluated in evaluation mode (no
dropout, BatchNorm running statistics).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench.training.losses import cross_entropy


def el2n_from_logits(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """|| softmax(logits) - onehot(labels) ||_2 per example (Paul et al. 2021)."""
  probs = jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1)
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=probs.dtype)
  return jnp.sqrt(jnp.sum((probs - onehot) ** 2, axis=-1))


def per_example_grad_sq_norms(module, params: Any, model_state: Any, x: jax.Array,
                              y: jax.Array) -> jax.Array:
  """|| grad_params CE(f(x_i), y_i) ||^2 for each example (eval mode), all parameters."""
  def loss(p, xi, yi):
    logits = module.apply({"params": p, **model_state}, xi[None], train=False)
    return cross_entropy(logits, yi[None])[0]

  grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)
  return sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in jax.tree.leaves(grads))


def scorer(module) -> Callable[[Any, Any, jax.Array, jax.Array], dict[str, np.ndarray]]:
  """(params, model_state, x, y) -> {el2n, grand, grad_sq_norm, loss} per example; one jit."""
  @jax.jit
  def scores(params, model_state, x, y):
    logits = module.apply({"params": params, **model_state}, x, train=False)
    sq = per_example_grad_sq_norms(module, params, model_state, x, y)
    return {"el2n": el2n_from_logits(logits, y), "grand": jnp.sqrt(sq), "grad_sq_norm": sq,
            "loss": cross_entropy(logits, y)}

  def run(params, model_state, x, y):
    return {k: np.asarray(v, np.float64) for k, v in scores(params, model_state, x, y).items()}
  return run


class TracInSelfInfluence:
  """sum_t eta_t ||grad loss(w_t, z)||^2 over the checkpoints it is given, per example."""

  def __init__(self, n: int):
    self.value = np.zeros(n, np.float64)
    self.checkpoints = 0

  def add(self, learning_rate: float, grad_sq_norms: np.ndarray) -> None:
    self.value += float(learning_rate) * np.asarray(grad_sq_norms, np.float64)
    self.checkpoints += 1
