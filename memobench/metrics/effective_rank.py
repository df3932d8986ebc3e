"""Effective rank of the penultimate-layer embeddings (analysis.effective_rank).

Two spectral forms, each reported by its name, on the (N x D) matrix of
penultimate-layer embeddings (rows = examples) of the split
`analysis.effective_rank_split` ("test", the default, or "train": the inputs
trained on, corrupted ones included), raw and column-centered:

  effective_rank[_centered]        Roy & Vetterli 2007 ("The effective rank: a
      measure of effective dimensionality", EUSIPCO): p_k = s_k / sum_j s_j over
      the singular values s_k (normalized singular values, NOT squared),
      exp(H(p)), H(p) = -sum_k p_k log p_k in nats; 1 <= erank <= rank.
  gram_entropy[_centered]          Huh et al. 2023 ("The low-rank simplicity
      bias in deep networks", TMLR), as their released code computes it: H(q)
      (no exp) of the normalized singular values of the embedding Gram matrix
      H H^T, whose singular values are s_k^2: q_k = s_k^2 / sum_j s_j^2.
  gram_effective_rank[_centered]   exp(gram_entropy): the same distribution q
      on Roy & Vetterli's scale (1 <= it <= rank).

The forms disagree: q weighs the large singular values more than p, so the
Gram forms are smaller and can order two models differently. On digits_clean
(test split, trained to fit), mlp1x512 vs mlp3x512: effective_rank 89.4 vs
66.0 and gram_effective_rank_centered 19.3 vs 10.4 fall with depth (Huh et
al.'s finding), but the uncentered Gram form rises (gram_entropy 1.74 vs 2.07,
gram_effective_rank 5.7 vs 7.9). All are computed from the
singular values of the embedding matrix itself in float64 (never by forming
the Gram matrix, which would square its condition number).
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memobench import specs
from memobench.metrics import base
from memobench.training import evaluation


SPLITS = ("test", "train")


def singular_values(matrix: np.ndarray, center: bool = False) -> np.ndarray | None:
  """Singular values (float64) of `matrix` as (rows, -1), column-centered with `center`.

  None when an entry is not finite, e.g. after a diverged run.
  """
  m = np.asarray(matrix, np.float64)
  m = m.reshape(m.shape[0], -1)
  if not np.all(np.isfinite(m)):
    return None
  if center:
    m = m - m.mean(axis=0, keepdims=True)
  return np.linalg.svd(m, compute_uv=False)


def spectral_entropy(s: np.ndarray | None, power: float = 1.0) -> float:
  """H(p) in nats, p_k = s_k^power / sum_j s_j^power; 0 for a zero spectrum, NaN for None."""
  if s is None:
    return float("nan")
  w = np.asarray(s, np.float64) ** power
  total = w.sum()
  if not np.isfinite(total) or total <= 0:
    return 0.0
  p = w[w > 0] / total
  return float(-np.sum(p * np.log(p)))


def _exp_entropy(s: np.ndarray | None, power: float) -> float:
  """exp(spectral_entropy): 0 for a zero spectrum (no dimension at all), NaN for None."""
  if s is not None and not np.any(np.asarray(s) > 0):
    return 0.0
  return float(np.exp(spectral_entropy(s, power)))


def effective_rank(matrix: np.ndarray, center: bool = False) -> float:
  """exp(entropy of the normalized singular values s / sum s) (Roy & Vetterli 2007).

  0 for a zero matrix; NaN (null in result.json) when an entry is not finite,
  e.g. after a diverged run.
  """
  return _exp_entropy(singular_values(matrix, center), 1.0)


def gram_entropy(matrix: np.ndarray, center: bool = False) -> float:
  """Entropy (no exp) of the normalized singular values of the Gram matrix: q = s^2 / sum s^2.

  Huh et al. 2023's released code. 0 for a zero matrix, NaN when not finite.
  """
  return spectral_entropy(singular_values(matrix, center), 2.0)


def gram_effective_rank(matrix: np.ndarray, center: bool = False) -> float:
  """exp(gram_entropy): 0 for a zero matrix, NaN when an entry is not finite."""
  return _exp_entropy(singular_values(matrix, center), 2.0)


def spectra(matrix: np.ndarray) -> dict[str, float]:
  """Every form, raw and centered (one SVD each), keyed as in result.json."""
  out = {}
  for suffix, center in (("", False), ("_centered", True)):
    s = singular_values(matrix, center)
    out[f"effective_rank{suffix}"] = _exp_entropy(s, 1.0)
    out[f"gram_entropy{suffix}"] = spectral_entropy(s, 2.0)
    out[f"gram_effective_rank{suffix}"] = _exp_entropy(s, 2.0)
  return out


def check(spec: specs.Spec) -> None:
  split = spec.analysis.effective_rank_split
  if split not in SPLITS:
    raise specs.SpecError(f"analysis.effective_rank_split must be one of {', '.join(SPLITS)}, "
                          f"got {split!r}")


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


_KEYS = tuple(f"{form}{suffix}" for suffix in ("", "_centered")
              for form in ("effective_rank", "gram_entropy", "gram_effective_rank"))


def embedding_rank(module, params, model_state, x, split: str = "test") -> dict[str, Any]:
  """result.json entry: the effective ranks of the penultimate embeddings of `x` (`split`)."""
  h = penultimate_features(module, params, model_state, x)
  if h is None:
    return {**{k: None for k in _KEYS}, "split": split,
            "note": "the model sows no 'features' intermediate"}
  ranks = spectra(h)
  return {"effective_rank": ranks["effective_rank"],
          "effective_rank_centered": ranks["effective_rank_centered"],
          "gram_entropy": ranks["gram_entropy"],
          "gram_effective_rank": ranks["gram_effective_rank"],
          "gram_entropy_centered": ranks["gram_entropy_centered"],
          "gram_effective_rank_centered": ranks["gram_effective_rank_centered"],
          "split": split, "embedding_dim": int(h.shape[1]), "examples": int(h.shape[0]),
          "form": "exp(entropy of singular values / their sum), Roy & Vetterli 2007",
          "gram_form": ("entropy (nats, no exp) of squared singular values / their sum, "
                        "i.e. of the Gram matrix's normalized singular values, Huh et al. "
                        "2023; gram_effective_rank is its exp")}


def _finish(context: base.Context) -> base.Result:
  split = context.spec.analysis.effective_rank_split
  x = context.x_test if split == "test" else context.x_train
  section = embedding_rank(context.module, context.params, context.model_state, x, split)
  return base.Result(section, headline=("effective rank", section["effective_rank"]))


METRIC = base.Metric(
    section="effective_rank", fields=("analysis.effective_rank", "analysis.effective_rank_split"),
    enabled=lambda spec: spec.analysis.effective_rank, finish=_finish,
    timing_key="effective_rank", check=check)
