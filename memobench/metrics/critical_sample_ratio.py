"""Critical sample ratio of the trained model on test inputs (analysis.csr_samples).

Arpit et al. 2017 ("A closer look at memorization in deep networks", ICML): the
fraction of inputs x for which Langevin Adversarial Sample Search (LASS) finds,
within the box |x' - x|_inf <= r, an x' whose predicted class differs from x's.
LASS iterates x' <- clip_box(x' + alpha sign(grad_x' CE(f(x'), f(x))) + beta N(0, I)).
Constants are those of the authors' released code for inputs in [0, 1]:
r = 0.3/255, alpha = 0.25/255, beta = 0.2/255, at most 100 iterations; here
scaled by the test inputs' value range (max - min), which is 1 for the image
datasets. All 100 iterations run (the released code's early stop when an
iteration adds fewer than 20 new critical samples depends on how many samples
are searched).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, specs
from memobench.metrics import base
from memobench.training import evaluation, losses

# LASS constants of Arpit et al.'s released code, for inputs in [0, 1].
LASS_R = 0.3 / 255.0
LASS_ALPHA = 0.25 / 255.0
LASS_BETA = 0.2 / 255.0
LASS_ITERS = 100


def check(spec: specs.Spec) -> None:
  if spec.analysis.csr_samples < 0:
    raise specs.SpecError(f"analysis.csr_samples must be >= 0, got {spec.analysis.csr_samples}")


def critical_samples(logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                     key: jax.Array, r: float, alpha: float, beta: float,
                     iters: int = LASS_ITERS) -> jax.Array:
  """Boolean per example: LASS (Arpit et al. 2017) found a class change within the r-box."""
  label = jnp.argmax(logits_fn(x), -1)

  def loss(xa):
    return jnp.sum(losses.cross_entropy(logits_fn(xa), label))

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
  # Each chunk's search noise is keyed by its first index.
  critical = evaluation.chunked(
      lambda start, stop: find(jnp.asarray(x[start:stop]), jax.random.fold_in(key, start)),
      len(x))
  return {"critical_sample_ratio": float(critical.mean()), "samples": int(len(x)),
          "r": LASS_R * scale, "alpha": LASS_ALPHA * scale, "beta": LASS_BETA * scale,
          "iterations": LASS_ITERS}


def _finish(context: base.Context) -> base.Result:
  section = critical_sample_ratio(
      context.module, context.params, context.model_state, context.x_test,
      context.spec.analysis.csr_samples, jax.random.fold_in(context.run_key, prng.CSR))
  return base.Result(section, headline=("CSR", section["critical_sample_ratio"]))


METRIC = base.Metric(
    section="critical_sample_ratio", fields=("analysis.csr_samples",),
    enabled=lambda spec: spec.analysis.csr_samples > 0, finish=_finish, timing_key="csr",
    check=check)
