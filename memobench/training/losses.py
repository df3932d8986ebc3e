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
