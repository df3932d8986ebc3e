"""The mini-batch loss Hessian's top eigenvalue against the full-data Hessian's (Granziol et al.).

Granziol, Zohren & Roberts, "Learning rates as a function of batch size: a
random matrix theory approach to neural network training" (JMLR 2022): the
Hessian of the loss on a batch of B examples, H_B, is the empirical Hessian H
plus a fluctuation matrix whose spectral extent grows as B shrinks, so the
extreme eigenvalues of H_B exceed H's and approach them as B -> n. Here the
top eigenvalue of H_B (mean cross-entropy of B training examples, evaluation
mode) is found by Lanczos on Hessian-vector products (sharpness.py's
recurrence, full reorthogonalization), one jitted program per batch size taking
the parameters and the batch as arguments, averaged over random disjoint
batches; B = n is the full-data Hessian itself.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from memobench.metrics import sharpness
from memobench.training import losses


def top_ritz_value(alphas: np.ndarray, betas: np.ndarray) -> float:
  """The largest eigenvalue of the Lanczos tridiagonal matrix (steps up to a breakdown)."""
  alphas, betas = np.asarray(alphas, np.float64), np.asarray(betas, np.float64)
  zero = np.flatnonzero(betas[:-1] == 0.0)
  m = int(zero[0]) + 1 if zero.size else len(alphas)
  t = np.diag(alphas[:m]) + np.diag(betas[:m - 1], 1) + np.diag(betas[:m - 1], -1)
  return float(np.linalg.eigvalsh(t)[-1])


class TopEigenvalue:
  """(params, x, y, key) -> the top eigenvalue of the Hessian of the mean CE on (x, y).

  One jitted Lanczos program (`iters` steps) per input shape; the parameters
  and data are its arguments, so batches and models of one shape share it.
  """

  def __init__(self, module, model_state: Any, iters: int):
    self.iters = iters

    def tridiagonal(params, x, y, v0):
      flat, unravel = ravel_pytree(params)
      loss = lambda p: losses.mean_cross_entropy(  # pylint: disable=unnecessary-lambda-assignment
          module.apply({"params": unravel(p), **model_state}, x, train=False), y)
      hvp = lambda v: jax.jvp(jax.grad(loss), (flat,), (v,))[1]  # pylint: disable=unnecessary-lambda-assignment
      alphas, betas, _ = sharpness.lanczos_tridiagonal(hvp, v0, iters)
      return alphas, betas

    self._program = jax.jit(tridiagonal)

  def __call__(self, params, x, y, key) -> float:
    flat, _ = ravel_pytree(params)
    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    alphas, betas = self._program(params, jnp.asarray(x, jnp.float32),
                                  jnp.asarray(y, jnp.int32), v0)
    return top_ritz_value(np.asarray(alphas), np.asarray(betas))


def batch_top_eigenvalues(top: TopEigenvalue, params, x: np.ndarray, y: np.ndarray,
                          batch_size: int, batches: int, key: jax.Array) -> list[float]:
  """The top eigenvalue of H_B on `batches` disjoint random batches of `batch_size` examples.

  Fewer batches when they do not fit (n // batch_size); batch_size = n is one
  batch: the whole set in its order, i.e. the full-data Hessian.
  """
  n = len(x)
  if not 0 < batch_size <= n:
    raise ValueError(f"batch size {batch_size} is not within the {n} examples")
  perm_key, lanczos_key = jax.random.split(key)
  order = (np.arange(n) if batch_size == n
           else np.asarray(jax.random.permutation(perm_key, n)))
  out = []
  for b in range(min(batches, n // batch_size)):
    idx = order[b * batch_size:(b + 1) * batch_size]
    out.append(top(params, x[idx], y[idx], jax.random.fold_in(lanczos_key, b)))
  return out
