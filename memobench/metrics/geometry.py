"""Representation and loss-landscape geometry of a trained model, each with bounded cost.

  effective_rank        Roy & Vetterli 2007 ("The effective rank: a measure of
                        effective dimensionality", EUSIPCO): for a matrix with
                        singular values s_k, p_k = s_k / sum_j s_j (normalized
                        singular values, NOT squared), erank = exp(-sum_k p_k
                        log p_k), the exponential of the Shannon entropy (nats)
                        of p; 1 <= erank <= rank. Applied, as Huh et al. 2023
                        ("The low-rank simplicity bias in deep networks",
                        TMLR) do, to the penultimate-layer embeddings of the
                        test set (rows = examples). memobench reports the raw
                        (uncentered) embedding matrix as `effective_rank`, and
                        the column-centered one as `effective_rank_centered`.
  critical_sample_ratio Arpit et al. 2017 ("A closer look at memorization in
                        deep networks", ICML): the fraction of inputs x
                        for which Langevin Adversarial Sample Search (LASS)
                        finds, within the box |x' - x|_inf <= r, an x' whose
                        predicted class differs from x's. LASS iterates
                        x' <- clip_box(x' + alpha sign(grad_x' CE(f(x'), f(x)))
                        + beta N(0, I)). Constants are those of the authors'
                        released code for inputs in [0, 1]: r = 0.3/255,
                        alpha = 0.25/255, beta = 0.2/255, at most 100
                        iterations; here scaled by the test inputs' value range
                        (max - min), which is 1 for the image datasets. All 100
                        iterations run (the released code's early stop when an
                        iteration adds fewer than 20 new critical samples
                        depends on how many samples are searched).
  sharpness             the largest-magnitude eigenvalue of the Hessian of the
                        training loss (mean cross-entropy on the labels trained
                        on, evaluation mode) at the final parameters, on the
                        first `sharpness_examples` training examples: power
                        iteration on Hessian-vector products (forward-over-
                        reverse jax.jvp of jax.grad), reported as the Rayleigh
                        quotient v.Hv of the last iterate (Keskar et al. 2017
                        and Cohen et al. 2021 use the same top eigenvalue).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

# LASS constants of Arpit et al.'s released code, for inputs in [0, 1].
LASS_R = 0.3 / 255.0
LASS_ALPHA = 0.25 / 255.0
LASS_BETA = 0.2 / 255.0
LASS_ITERS = 100
EVAL_BATCH = 1024


def effective_rank(matrix: np.ndarray, center: bool = False) -> float:
  """exp(entropy of the normalized singular values) (Roy & Vetterli 2007).

  0 for a zero matrix; NaN (null in result.json) when an entry is not finite,
  e.g. after a diverged run.
  """
  m = np.asarray(matrix, np.float64)
  m = m.reshape(m.shape[0], -1)
  if not np.all(np.isfinite(m)):
    return float("nan")
  if center:
    m = m - m.mean(axis=0, keepdims=True)
  s = np.linalg.svd(m, compute_uv=False)
  total = s.sum()
  if not np.isfinite(total) or total <= 0:
    return 0.0
  p = s[s > 0] / total
  return float(np.exp(-np.sum(p * np.log(p))))


def _find_features(intermediates: Any):
  """The first leaf sown under the name 'features' (models sow penultimate features there)."""
  if isinstance(intermediates, dict):
    if "features" in intermediates:
      value = intermediates["features"]
      return value[0] if isinstance(value, (tuple, list)) else value
    for v in intermediates.values():
      found = _find_features(v)
      if found is not None:
        return found
  return None


def penultimate_features(module: nn.Module, params: Any, model_state: Any, x: np.ndarray,
                         batch: int = EVAL_BATCH) -> np.ndarray | None:
  """(N, D) penultimate-layer embeddings (evaluation mode); None if the model sows none."""
  @jax.jit
  def embed(params, model_state, xb):
    _, sown = module.apply({"params": params, **model_state}, xb, train=False,
                           mutable=["intermediates"])
    h = _find_features(flax.core.unfreeze(sown).get("intermediates", {}))
    return None if h is None else h.reshape(h.shape[0], -1)

  parts = []
  for start in range(0, x.shape[0], batch):
    h = embed(params, model_state, jnp.asarray(x[start:start + batch]))
    if h is None:
      return None
    parts.append(np.asarray(h, np.float32))
  return np.concatenate(parts)


def embedding_rank(module, params, model_state, x_test) -> dict[str, Any]:
  """result.json entry: the effective ranks of the test-set penultimate embeddings."""
  h = penultimate_features(module, params, model_state, x_test)
  if h is None:
    return {"effective_rank": None, "note": "the model sows no 'features' intermediate"}
  return {"effective_rank": effective_rank(h),
          "effective_rank_centered": effective_rank(h, center=True),
          "embedding_dim": int(h.shape[1]), "examples": int(h.shape[0]),
          "form": "exp(entropy of singular values / their sum), Roy & Vetterli 2007"}


def critical_samples(logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                     key: jax.Array, r: float, alpha: float, beta: float,
                     iters: int = LASS_ITERS) -> jax.Array:
  """Boolean per example: LASS (Arpit et al. 2017) found a class change within the r-box."""
  label = jnp.argmax(logits_fn(x), -1)

  def loss(xa):
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(
        logits_fn(xa).astype(jnp.float32), label))

  grad = jax.grad(loss)

  def body(i, carry):
    xa, critical = carry
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    xa = xa + alpha * jnp.sign(grad(xa)) + beta * noise
    xa = jnp.clip(xa, x - r, x + r)
    critical = critical | (jnp.argmax(logits_fn(xa), -1) != label)
    return xa, critical

  _, critical = jax.lax.fori_loop(0, iters, body, (x, jnp.zeros(x.shape[0], bool)))
  return critical


def critical_sample_ratio(module, params, model_state, x_test: np.ndarray, samples: int,
                          key: jax.Array) -> dict[str, Any]:
  """result.json entry: CSR on the first `samples` test examples."""
  x = np.asarray(x_test[:samples], np.float32)
  scale = float(np.max(x_test) - np.min(x_test)) or 1.0
  logits_fn = lambda xb: module.apply({"params": params, **model_state}, xb, train=False)
  find = jax.jit(lambda xb, k: critical_samples(logits_fn, xb, k, LASS_R * scale,
                                                LASS_ALPHA * scale, LASS_BETA * scale))
  critical = np.concatenate([
      np.asarray(find(jnp.asarray(x[s:s + EVAL_BATCH]), jax.random.fold_in(key, s)))
      for s in range(0, len(x), EVAL_BATCH)])
  return {"critical_sample_ratio": float(critical.mean()), "samples": int(len(x)),
          "r": LASS_R * scale, "alpha": LASS_ALPHA * scale, "beta": LASS_BETA * scale,
          "iterations": LASS_ITERS}


def top_hessian_eigenvalue(loss_fn: Callable[[Any], jax.Array], params: Any, key: jax.Array,
                           iters: int) -> tuple[jax.Array, jax.Array]:
  """(eigenvalue, residual) by power iteration on Hessian-vector products of `loss_fn`.

  The eigenvalue is the Rayleigh quotient v.Hv of the last unit iterate v; the
  residual |Hv - lambda v| says how converged it is.
  """
  flat, unravel = ravel_pytree(params)
  flat_loss = lambda p: loss_fn(unravel(p))
  hvp = lambda v: jax.jvp(jax.grad(flat_loss), (flat,), (v,))[1]
  v0 = jax.random.normal(key, flat.shape, flat.dtype)
  v0 = v0 / jnp.linalg.norm(v0)

  def body(_, v):
    w = hvp(v)
    return w / jnp.maximum(jnp.linalg.norm(w), 1e-30)

  v = jax.lax.fori_loop(0, iters, body, v0)
  hv = hvp(v)
  eigenvalue = jnp.vdot(v, hv)
  return eigenvalue, jnp.linalg.norm(hv - eigenvalue * v)


def sharpness(module, params, model_state, x_train: np.ndarray, y_train: np.ndarray,
              examples: int, iters: int, key: jax.Array) -> dict[str, Any]:
  """result.json entry: top Hessian eigenvalue of the training loss on `examples` examples."""
  x = jnp.asarray(x_train[:examples], jnp.float32)
  y = jnp.asarray(y_train[:examples], jnp.int32)

  def loss_fn(p):
    logits = module.apply({"params": p, **model_state}, x, train=False)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), y))

  eigenvalue, residual = jax.jit(
      lambda p, k: top_hessian_eigenvalue(loss_fn, p, k, iters))(params, key)
  return {"top_hessian_eigenvalue": float(eigenvalue), "residual": float(residual),
          "iterations": iters, "examples": int(x.shape[0])}
