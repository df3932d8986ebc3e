"""The loss: per-example softmax cross-entropy with integer labels, in float32.

One definition for training, evaluation and every metric that differentiates or
reports a loss (turn-over self-influence, critical samples, sharpness, the
subsample estimator), so that they all mean the same number.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example -log softmax(logits)[label]; logits are cast to float32 first."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def mean_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return jnp.mean(cross_entropy(logits, labels))


def binary_hinge(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example hinge max(0, 1 - t * f) of two-class logits (Barak et al. 2022's loss).

  f = logits[:, 1] - logits[:, 0] is the margin of class 1 and t = 2 * label - 1
  in {-1, +1}; argmax of the logits is sign(f), so accuracy means the same as
  with the cross-entropy. Used by experiments/barak2022_sparse_parity.py.
  """
  if logits.shape[-1] != 2:
    raise ValueError(f"binary_hinge needs two-class logits, got {logits.shape[-1]} classes")
  logits = logits.astype(jnp.float32)
  margin = logits[..., 1] - logits[..., 0]
  return jnp.maximum(0.0, 1.0 - (2.0 * labels - 1.0) * margin)
