"""Sharpness: the top Hessian eigenvalue of the training loss (analysis.sharpness_iters).

The largest-magnitude eigenvalue of the Hessian of the training loss (mean
cross-entropy on the labels trained on, evaluation mode) at the final
parameters, on the first `sharpness_examples` training examples: power
iteration on Hessian-vector products (forward-over-reverse jax.jvp of
jax.grad), reported as the Rayleigh quotient v.Hv of the last iterate (Keskar
et al. 2017 and Cohen et al. 2021 use the same top eigenvalue).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from memobench import prng, specs
from memobench.metrics import base
from memobench.training import losses


def check(spec: specs.Spec) -> None:
  a = spec.analysis
  if a.sharpness_iters < 0:
    raise specs.SpecError(f"analysis.sharpness_iters must be >= 0, got {a.sharpness_iters}")
  if a.sharpness_examples <= 0:
    raise specs.SpecError(f"analysis.sharpness_examples must be positive, "
                          f"got {a.sharpness_examples}")


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
    return losses.mean_cross_entropy(
        module.apply({"params": p, **model_state}, x, train=False), y)

  eigenvalue, residual = jax.jit(
      lambda p, k: top_hessian_eigenvalue(loss_fn, p, k, iters))(params, key)
  return {"top_hessian_eigenvalue": float(eigenvalue), "residual": float(residual),
          "iterations": iters, "examples": int(x.shape[0])}


def _finish(context: base.Context) -> base.Result:
  a = context.spec.analysis
  section = sharpness(context.module, context.params, context.model_state, context.x_train,
                      context.y_train, a.sharpness_examples, a.sharpness_iters,
                      jax.random.fold_in(context.run_key, prng.SHARPNESS))
  return base.Result(section, headline=("sharpness", section["top_hessian_eigenvalue"]))


METRIC = base.Metric(
    section="sharpness", fields=("analysis.sharpness_iters", "analysis.sharpness_examples"),
    enabled=lambda spec: spec.analysis.sharpness_iters > 0, finish=_finish,
    timing_key="sharpness", check=check)
