"""Effective rank of the penultimate-layer test-set embeddings (analysis.effective_rank).

Roy & Vetterli 2007 ("The effective rank: a measure of effective
dimensionality", EUSIPCO): for a matrix with singular values s_k,
p_k = s_k / sum_j s_j (normalized singular values, NOT squared),
erank = exp(-sum_k p_k log p_k), the exponential of the Shannon entropy (nats)
of p; 1 <= erank <= rank. Applied, as Huh et al. 2023 ("The low-rank simplicity
bias in deep networks", TMLR) do, to the penultimate-layer embeddings of the
test set (rows = examples). memobench reports the raw (uncentered) embedding
matrix as `effective_rank`, and the column-centered one as
`effective_rank_centered`.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memobench.metrics import base
from memobench.training import evaluation


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
                         batch: int = evaluation.EVAL_BATCH) -> np.ndarray | None:
  """(N, D) penultimate-layer embeddings (evaluation mode); None if the model sows none."""
  @jax.jit
  def embed(params, model_state, xb):
    _, sown = module.apply({"params": params, **model_state}, xb, train=False,
                           mutable=["intermediates"])
    h = _find_features(flax.core.unfreeze(sown).get("intermediates", {}))
    return None if h is None else h.reshape(h.shape[0], -1)

  def chunk(start, stop):
    h = embed(params, model_state, jnp.asarray(x[start:stop]))
    return None if h is None else np.asarray(h, np.float32)

  # A model that sows no features gives None for every chunk, and chunked None.
  return evaluation.chunked(chunk, x.shape[0], batch=batch)


def embedding_rank(module, params, model_state, x_test) -> dict[str, Any]:
  """result.json entry: the effective ranks of the test-set penultimate embeddings."""
  h = penultimate_features(module, params, model_state, x_test)
  if h is None:
    return {"effective_rank": None, "note": "the model sows no 'features' intermediate"}
  return {"effective_rank": effective_rank(h),
          "effective_rank_centered": effective_rank(h, center=True),
          "embedding_dim": int(h.shape[1]), "examples": int(h.shape[0]),
          "form": "exp(entropy of singular values / their sum), Roy & Vetterli 2007"}


def _finish(context: base.Context) -> base.Result:
  section = embedding_rank(context.module, context.params, context.model_state, context.x_test)
  return base.Result(section, headline=("effective rank", section["effective_rank"]))


METRIC = base.Metric(
    section="effective_rank", fields=("analysis.effective_rank",),
    enabled=lambda spec: spec.analysis.effective_rank, finish=_finish,
    timing_key="effective_rank")
