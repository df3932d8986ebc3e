"""LiRA, the likelihood-ratio membership inference attack, from a population's margins.

Carlini, Chien, Nasr, Song, Terzis & Tramer 2022, "Membership inference attacks
from first principles" (IEEE S&P), Sec. IV; released code tensorflow/privacy
research/mi_lira_2021 (score.py, plot.py). For a target model f and example
(x, y), the statistic is the logit-scaled confidence

  phi = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j

(score.py: log(y_true) - log(y_wrong) of a float64 softmax; memobench takes it
from the logits, population.outputs_from_logits: the population's `margin`).
The other models give, per example, the phi of the models that trained on it
(IN) and of those that did not (OUT), each fitted by a Gaussian whose mean is
the MEDIAN of the values and whose std is their population std (ddof 0),
plot.py's generate_ours / generate_ours_offline:

  online   Lambda = log N(phi; mu_in, sigma_in^2) - log N(phi; mu_out, sigma_out^2)
  offline  Lambda = log Phi((phi - mu_out) / sigma_out): the paper's one-sided
           test (Sec. IV-D: is phi larger than the OUT models make it?)

Fixed variance (the paper's advice for few shadow models; plot.py's
fix_variance): one sigma for every example, the std of all IN values (online:
for both Gaussians, as plot.py does) or of all OUT values (offline). Default:
fixed when the population has fewer than FIXED_VARIANCE_BELOW models.

Two evaluations, both from the one population:

  pooled       the paper's: each model in turn is the target, every other model
               fits the Gaussians (leave one model out, plot.py's do_plot with
               ntest = 1, repeated for every target), and the target's Lambda
               separates its members from its non-members across examples. The
               summary gives the mean over targets of that ROC's AUC and its TPR
               at 0.1% and 1% FPR.
  per example  memobench's score for the table: how well Lambda separates the
               models that trained on the example from those that did not, the
               AUC over its targets, P(Lambda_in > Lambda_out), ties 1/2 (0.5:
               this example's membership is invisible; 1: always visible). The
               targets are scored by two-fold cross-fitting (models k with k % 2
               = f are scored by Gaussians fitted on the other fold; IN and OUT
               targets are compared within a fold, the pairs of both folds
               pooled). Not by leaving one model out: a target left out of its
               own group's fit is compared with targets whose fits contain it,
               and the left-out value pulls its own group's median away from
               itself, so with no membership signal the leave-one-out AUC sits
               below 1/2 (0.43 on a synthetic null population of 64 models;
               tests/test_population.py), the anti-learning of leave-one-out
               cross-validation. With one fixed variance the online Lambda is
               linear in phi with the sign of mu_in - mu_out, and the offline
               one increasing in phi: per example, both measure how far the
               models that trained on it are more confident on it than those
               that did not, in the direction the other fold found.
               Its se: Hanley & McNeil 1982 on the shrunk AUC
               (U + 1/2) / (n_in n_out + 1) over the compared pairs, finite at 0 and 1.

Departures from the released code: no augmented queries (one query per
example, plot.py averages over mirror/shift augmentations); every other
model fits the Gaussians (plot.py truncates each example's IN and OUT lists to
the shortest example's); offline uses the paper's one-sided test where plot.py
scores by the two-sided -log N(phi; mu_out, sigma_out^2), which also calls an
unusually UNconfident target a member; the per-example AUC and its
cross-fitting are memobench's (the paper evaluates the pooled attack).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.special
import scipy.stats

from memobench.estimators import base
from memobench.metrics import stats

FIXED_VARIANCE_BELOW = 64
_EPS = 1e-30  # plot.py's std floor


def _loo_group_stats(values: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, ...]:
  """Per (target k, example i): median, std (ddof 0) and count of the group's values, k left out.

  The group of example i is {k: member[k, i]}; for a target k outside it nothing is left out.
  """
  k_models, n = values.shape
  filled = np.where(member, values, np.inf)
  order = np.argsort(filled, axis=0, kind="stable")
  ordered = np.take_along_axis(filled, order, axis=0)  # the group's values first, ascending
  rank = np.empty_like(order)
  np.put_along_axis(rank, order, np.broadcast_to(np.arange(k_models)[:, None], order.shape),
                    axis=0)
  count = member.sum(0)[None, :] - member  # (K, N): the group's size without the target

  def nth(j):  # the j-th smallest value left once the target is out
    j = np.where(member & (j >= rank), j + 1, j)
    return np.take_along_axis(ordered, np.clip(j, 0, k_models - 1), axis=0)

  with np.errstate(invalid="ignore"):
    median = np.where(count > 0, (nth((count - 1) // 2) + nth(count // 2)) / 2, np.nan)
  centre = np.where(member, values, 0).sum(0) / np.maximum(member.sum(0), 1)
  d = np.where(member, values - centre[None], 0.0)
  s1, s2 = d.sum(0)[None] - d, (d * d).sum(0)[None] - d * d
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = s1 / count
    std = np.where(count > 0, np.sqrt(np.maximum(s2 / count - mean * mean, 0.0)), np.nan)
  return median, std, count


def _loo_global_std(values: np.ndarray, member: np.ndarray) -> np.ndarray:
  """(K, 1): std (ddof 0) of every group value of every example, target model k left out."""
  v = np.where(member, values, 0.0)
  centre = v.sum() / max(member.sum(), 1)
  d = np.where(member, values - centre, 0.0)
  n = member.sum() - member.sum(1)
  s1, s2 = d.sum() - d.sum(1), (d * d).sum() - (d * d).sum(1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))[:, None]


def _lambda(phi, mu_in, sd_in, mu_out, sd_out, online: bool) -> np.ndarray:
  with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
    if not online:
      return scipy.special.log_ndtr((phi - mu_out) / (sd_out + _EPS))
    return (scipy.stats.norm.logpdf(phi, mu_in, sd_in + _EPS)
            - scipy.stats.norm.logpdf(phi, mu_out, sd_out + _EPS))


def _fixed(fix_variance: bool | None, models: int) -> bool:
  return models < FIXED_VARIANCE_BELOW if fix_variance is None else bool(fix_variance)


def target_scores(margin: np.ndarray, inclusion: np.ndarray, online: bool,
                  fix_variance: bool | None = None) -> np.ndarray:
  """(K, N) Lambda of every model as the target, the others fitting (NaN: a group is empty)."""
  phi = np.asarray(margin, np.float64)
  inside = np.asarray(inclusion, bool)
  fixed = _fixed(fix_variance, inside.shape[0])
  mu_out, sd_out, n_out = _loo_group_stats(phi, ~inside)
  mu_in, sd_in, n_in = _loo_group_stats(phi, inside)
  if fixed:
    sd = _loo_global_std(phi, inside if online else ~inside)
    sd_in = sd_out = np.broadcast_to(sd, phi.shape)
  lam = _lambda(phi, mu_in, sd_in, mu_out, sd_out, online)
  return np.where((n_out > 0) & ((n_in > 0) | (not online)), lam, np.nan)


def _group_stats(values: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, ...]:
  """(N,) median, std (ddof 0) and count of each column's member values."""
  v = np.where(member, values, np.nan)
  count = member.sum(0)
  with warnings.catch_warnings():  # all-NaN columns (an empty group): NaN, said by count 0
    warnings.simplefilter("ignore", RuntimeWarning)
    return np.nanmedian(v, 0), np.nanstd(v, 0), count


def crossfit_scores(margin: np.ndarray, inclusion: np.ndarray, online: bool,
                    fix_variance: bool | None = None, folds: int = 2) -> np.ndarray:
  """(K, N) Lambda of model k as the target, the Gaussians fitted on the other folds' models."""
  phi = np.asarray(margin, np.float64)
  inside = np.asarray(inclusion, bool)
  fixed = _fixed(fix_variance, inside.shape[0])
  lam = np.full(phi.shape, np.nan)
  fold = np.arange(phi.shape[0]) % folds
  for f in range(folds):
    fit, target = fold != f, fold == f
    mu_in, sd_in, n_in = _group_stats(phi[fit], inside[fit])
    mu_out, sd_out, n_out = _group_stats(phi[fit], ~inside[fit])
    if fixed:
      pool = phi[fit][inside[fit] if online else ~inside[fit]]
      sd_in = sd_out = np.full(phi.shape[1], np.std(pool) if pool.size else np.nan)
    scored = _lambda(phi[target], mu_in, sd_in, mu_out, sd_out, online)
    ok = (n_out > 0) & ((n_in > 0) | (not online))
    lam[target] = np.where(ok[None], scored, np.nan)
  return lam


def per_example_auc(scores: np.ndarray, inclusion: np.ndarray,
                    groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Per column, the AUC of scores separating IN from OUT rows, and its Hanley-McNeil se.

  groups: a group per row (e.g. the fold); IN and OUT rows are compared within
  a group only, the pairs of every group pooled. Non-finite scores are left out.
  """
  scores = np.asarray(scores, np.float64)
  inside = np.asarray(inclusion, bool)
  groups = np.zeros(scores.shape[0], int) if groups is None else np.asarray(groups)
  u = np.zeros(scores.shape[1])
  n1 = np.zeros(scores.shape[1])
  pairs = np.zeros(scores.shape[1])
  n0 = np.zeros(scores.shape[1])
  for g in np.unique(groups):
    s, member = scores[groups == g], inside[groups == g]
    valid = np.isfinite(s)
    ranks = scipy.stats.rankdata(np.where(valid, s, -np.inf), axis=0)
    ranks = ranks - (~valid).sum(0)[None]  # ranks among the valid rows (the invalid rank lowest)
    g1, g0 = (member & valid).sum(0), (~member & valid).sum(0)
    u += np.where(member & valid, ranks, 0).sum(0) - g1 * (g1 + 1) / 2
    pairs += g1 * g0
    n1 += g1
    n0 += g0
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = np.where(pairs > 0, u / pairs, np.nan)
    a = (u + 0.5) / (pairs + 1)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    se = np.where(np.isfinite(auc), np.sqrt(np.maximum(var, 0.0)), np.nan)
  return auc, se


def pooled_attack(scores: np.ndarray, inclusion: np.ndarray) -> dict[str, Any]:
  """The paper's attack, each model the target in turn: means over targets of its ROC's
  AUC and TPR at 0.1% and 1% FPR across examples (scores: target_scores)."""
  scores = np.asarray(scores, np.float64)
  inside = np.asarray(inclusion, bool)
  aucs, tprs = [], {0.001: [], 0.01: []}
  for s, member in zip(scores, inside):
    ok = np.isfinite(s)
    s, member = s[ok], member[ok]
    if not member.any() or member.all():
      continue
    aucs.append(stats.roc_auc(s, member))
    negatives = np.sort(s[~member])[::-1]
    for fpr, out in tprs.items():
      allowed = int(np.floor(fpr * negatives.size))
      # The strictest threshold with at most `allowed` non-members above it.
      threshold = negatives[allowed] if allowed < negatives.size else -np.inf
      out.append(float(np.mean(s[member] > threshold)))
  mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
  return {"auc": mean(aucs), "tpr_at_fpr_0.001": mean(tprs[0.001]),
          "tpr_at_fpr_0.01": mean(tprs[0.01]), "targets": len(aucs),
          "examples": int(inside.shape[1])}


def lira(outputs: base.Outputs, online: bool, fix_variance: bool | None = None,
         folds: int = 2) -> base.Scores:
  """Per-example attack AUC over cross-fitted targets, with se; the pooled attack (docstring)."""
  fixed = _fixed(fix_variance, outputs.models)
  inside = np.asarray(outputs.inclusion, bool)
  lam = crossfit_scores(outputs.margin, inside, online, fixed, folds)
  auc, se = per_example_auc(lam, inside, np.arange(outputs.models) % folds)
  pooled = pooled_attack(target_scores(outputs.margin, inside, online, fixed), inside)
  return base.Scores.of(auc, se, fixed_variance=fixed, folds=folds, pooled=pooled,
                        examples_scored=int(np.isfinite(auc).sum()))


ONLINE = base.Estimator(
    name="lira_online", reads=("margin",), score=lambda o: lira(o, online=True),
    source="Carlini et al. 2022, Sec. IV (online LiRA); tensorflow/privacy mi_lira_2021 plot.py "
           "generate_ours; per-example AUC over two-fold cross-fitted targets")
OFFLINE = base.Estimator(
    name="lira_offline", reads=("margin",), score=lambda o: lira(o, online=False),
    source="Carlini et al. 2022, Sec. IV-D (offline LiRA, one-sided); tensorflow/privacy "
           "mi_lira_2021 plot.py generate_ours_offline; per-example AUC over targets")
