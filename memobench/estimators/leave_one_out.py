"""Exact leave-one-out memorization: the ground truth that memorization estimators are scored on.

Feldman & Zhang 2020 define the memorization of training example i by a
training algorithm A on data set S as

  mem(A, S, i) = P_{h ~ A(S)}[h(x_i) = y_i] - P_{h ~ A(S \\ i)}[h(x_i) = y_i].

Their subsample estimator (estimators/subsample.py) estimates it from models
trained on random 70% subsets. On a small data set memobench computes it
directly for a probe set of m training examples: for each training seed
s = 1..S, one run on the whole training set and, for each probe example i, a
run without i that is otherwise identical -- the same initialization, dropout
and batch order, with i's slot dropped from the loss (loop.Member.loss_weights:
weight 0 for i; each batch's loss is the mean over its other examples). The
m + 1 runs of a seed are members of one vmapped `training.loop.train_group`
(several seeds per group), so the only difference between a run with i and
its run without i is example i. Then, against the label trained on (the
corrupted one where labels are corrupted):

  mem_LOO(i)      = mean_s [correct_i(with i) - correct_i(without i)]
  mem_LOO_se(i)   = std_s(...) / sqrt(S)        (sample std over seeds, ddof 1)
  loss_LOO(i)     = mean_s [loss_i(without i) - loss_i(with i)]     (its loss form)

The pairing makes the seed-to-seed noise of the two runs cancel except for
what removing i changes; what is left is the algorithm's own randomness over
seeds, which S averages. mem_LOO is for data sets of |S| examples (not 0.7 |S|
as the subsample estimator's).

Precision of the ground truth: `split_half_reliability` splits the S seeds
into two halves, correlates the two halves' per-example means over the probe
set (Pearson r), corrects to the full S seeds with the Spearman-Brown formula
2r / (1 + r), and averages over every balanced split (35 for S = 8); a
bootstrap over probe examples gives its interval. 1 means the ranking of
examples is free of seed noise; 0 that it is all noise.

Probe set (`select_probe`): m examples, half of them (or all there are) with a
planted label corruption (label_changed) and the rest clean, drawn uniformly
within each group by numpy's PCG64 from the seed: the same on every machine.

`compare` scores an estimator against the ground truth: Spearman and Pearson
correlations with both LOO forms (with bootstrap intervals over examples), ROC
AUC against the planted corruption (stats.roc_auc) and the overlap of its top
10% with the LOO top 10% (`top_fraction_overlap`, ties shared out).
`group_correlations` adds the same correlations within the corrupted and the
clean group and weighted to the training population's corrupted share
(pooling two groups can hide opposite relations inside them);
`half_reliability` and `attenuation_ceiling` bound what any estimator can
show: sqrt(r_truth r_estimator) from each one's own reliability.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from memobench import prng, specs
from memobench import workload as workload_lib
from memobench.data import corruptions, datasets
from memobench.metrics import stats
from memobench.training import loop
from memobench.training.losses import cross_entropy


# --------------------------------------------------------------------------
# The probe set and the runs
# --------------------------------------------------------------------------


def select_probe(corrupted: np.ndarray, m: int, seed: int) -> np.ndarray:
  """m training indices (sorted): half with a planted corruption where there are enough."""
  corrupted = np.asarray(corrupted, bool)
  if not 0 < m <= corrupted.size:
    raise specs.SpecError(f"a probe set of {m} examples is not within the {corrupted.size} "
                          "training examples")
  rng = np.random.Generator(np.random.PCG64(seed))
  bad, good = np.flatnonzero(corrupted), np.flatnonzero(~corrupted)
  n_bad = min(m // 2, bad.size)
  n_good = m - n_bad
  if n_good > good.size:
    n_good, n_bad = good.size, m - good.size
  return np.sort(np.concatenate([rng.choice(bad, n_bad, replace=False),
                                 rng.choice(good, n_good, replace=False)]))


def seed_keys(seed: int, count: int) -> list[jax.Array]:
  """The training seeds' keys: fold_in(fold_in(run_key(seed), LEAVE_ONE_OUT), s), s = 1..count."""
  base = jax.random.fold_in(prng.run_key(seed), prng.LEAVE_ONE_OUT)
  return [jax.random.fold_in(base, s) for s in range(1, count + 1)]


def fixed_budget_workload(spec: specs.Spec, epochs: int, dataset: datasets.Dataset,
                          evaluations: int = 1) -> workload_lib.Workload:
  """`spec` for `epochs` epochs whatever its training accuracy, evaluated `evaluations` times.

  No stop on fitting (runs with and without i train exactly as long), fused
  steps (one vmapped program).
  """
  steps_per_epoch = dataset.num_train // spec.budget.batch_size
  total = epochs * steps_per_epoch
  if total < 1:
    raise specs.SpecError(f"{epochs} epochs of batch {spec.budget.batch_size} over "
                          f"{dataset.num_train} examples is no step")
  every = max(1, total // evaluations)
  fixed = dataclasses.replace(
      spec, budget=dataclasses.replace(spec.budget, max_epochs=epochs, max_steps=None,
                                       eval_every_steps=every))
  return workload_lib.resolve(fixed, dataset=dataset, stops_on_fit=False, fused=True)


def without(n: int, i: int) -> np.ndarray:
  """Loss weights of a run without training example i: 1 everywhere but i."""
  weights = np.ones(n, np.float32)
  weights[i] = 0.0
  return weights


def probe_losses(module, params: list[Any], model_states: list[Any], x: jax.Array,
                 y: jax.Array) -> np.ndarray:
  """(members, probes) cross-entropy of every member on every probe example (eval mode)."""
  stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731

  @jax.jit
  def losses(params, model_state):
    def one(p, s):
      return cross_entropy(module.apply({"params": p, **s}, x, train=False), y)
    return jax.vmap(one)(params, model_state)
  return np.asarray(losses(stack(params), stack(model_states)))


def train_seeds(workload: workload_lib.Workload, data: corruptions.CorruptedData,
                probe: np.ndarray, keys: list[jax.Array], vmapped: bool = True
                ) -> dict[str, np.ndarray]:
  """The runs with and without each probe example for each key, through the one loop.

  Returns (seeds, probes) arrays correct_with, correct_without, loss_with,
  loss_without (against the labels trained on), each run's accuracy on its own
  training set (train_accuracy_with (seeds,): all N examples;
  train_accuracy_without (seeds, probes): all but i), and the group's timings.
  """
  n = workload.dataset.num_train
  silent = lambda _: None  # noqa: E731
  members = []
  for key in keys:
    members.append(loop.Member(workload.spec, data, log=silent, key=key))
    members += [loop.Member(workload.spec, data, log=silent, key=key,
                            loss_weights=without(n, int(i))) for i in probe]
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  y = np.asarray(data.y_train)
  probe = np.asarray(probe)
  x_probe, y_probe = jnp.asarray(data.x_train)[probe], jnp.asarray(y)[probe]
  losses = probe_losses(workload.module, [o.state.params for o in outcomes],
                        [o.state.model_state for o in outcomes], x_probe, y_probe)
  right = np.stack([o.final.train_predictions == y for o in outcomes])  # (runs, N)
  correct = right[:, probe]
  width = 1 + probe.size
  diagonal = np.arange(probe.size)
  out = {name: [] for name in ("correct_with", "correct_without", "loss_with", "loss_without",
                               "train_accuracy_with", "train_accuracy_without")}
  for s in range(len(keys)):
    rows = slice(s * width, (s + 1) * width)
    c, loss = correct[rows], losses[rows]
    out["correct_with"].append(c[0])
    out["correct_without"].append(c[1:][diagonal, diagonal])
    out["loss_with"].append(loss[0])
    out["loss_without"].append(loss[1:][diagonal, diagonal])
    # Each run's own training set: the run without i is scored without i.
    out["train_accuracy_with"].append(right[rows][0].mean())
    out["train_accuracy_without"].append(
        (right[rows][1:].sum(1) - c[1:][diagonal, diagonal]) / (n - 1))
  arrays = {k: np.stack(v) for k, v in out.items()}
  programs = outcomes[:1] if vmapped else outcomes
  arrays["train_s"] = np.float64(sum(o.train_s for o in programs))
  arrays["compile_s"] = np.float64(sum(o.compile_s for o in programs))
  arrays["model_steps"] = np.int64(len(outcomes) * workload.schedule.total_steps)
  return arrays


# --------------------------------------------------------------------------
# The ground truth and its precision
# --------------------------------------------------------------------------


def memorization(correct_with: np.ndarray, correct_without: np.ndarray, loss_with: np.ndarray,
                 loss_without: np.ndarray) -> dict[str, np.ndarray]:
  """mem_LOO, its se, and the loss form from (seeds, probes) arrays (module docstring)."""
  diff = np.asarray(correct_with, np.float64) - np.asarray(correct_without, np.float64)
  loss_diff = np.asarray(loss_without, np.float64) - np.asarray(loss_with, np.float64)
  s = diff.shape[0]
  se = lambda d: (np.std(d, axis=0, ddof=1) / np.sqrt(s) if s > 1  # noqa: E731
                  else np.full(d.shape[1], np.nan))
  return {"mem": diff.mean(0), "mem_se": se(diff), "loss": loss_diff.mean(0),
          "loss_se": se(loss_diff)}


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Pearson r of each row of a with the same row of b (NaN where a row is constant)."""
  a = a - a.mean(-1, keepdims=True)
  b = b - b.mean(-1, keepdims=True)
  denom = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(denom > 0, (a * b).sum(-1) / denom, np.nan)


def balanced_splits(s: int) -> list[tuple[int, ...]]:
  """Each split of s seeds into halves of floor(s/2) and the rest, once (not also mirrored)."""
  half = s // 2
  splits = [c for c in itertools.combinations(range(s), half)]
  if 2 * half == s:  # {A, B} and {B, A} are the same split
    splits = [c for c in splits if 0 in c]
  return splits


def split_half_reliability(per_seed: np.ndarray, bootstrap: int = 500,
                           seed: int = 0) -> dict[str, Any]:
  """Spearman-Brown corrected split-half reliability of the seed mean of per_seed (S, m).

  mean: over every balanced split of the seeds, 2r / (1 + r) with r the Pearson
  correlation of the halves' per-example means; ci95: percentile bootstrap
  over examples (the same splits); n: the number of splits. None below 2 seeds.
  """
  per_seed = np.asarray(per_seed, np.float64)
  s, m = per_seed.shape
  out = {"mean": None, "std": None, "ci95": None, "n": 0, "seeds": s,
         "method": "split-half over seeds, Pearson r of the halves' means, Spearman-Brown "
                   "2r/(1+r), averaged over every balanced split; ci95: bootstrap over examples"}
  if s < 2:
    return out
  splits = balanced_splits(s)
  first = np.stack([per_seed[list(c)].mean(0) for c in splits])
  second = np.stack([np.delete(per_seed, list(c), axis=0).mean(0) for c in splits])

  def corrected(a, b):
    r = _pearson_rows(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.nanmean(2 * r / (1 + r), axis=-1) if np.isfinite(r).any() else np.nan

  point = corrected(first, second)
  per_split = _pearson_rows(first, second)
  rng = np.random.Generator(np.random.PCG64(seed))
  draws = rng.integers(0, m, (bootstrap, m))
  boot = np.array([corrected(first[:, d], second[:, d]) for d in draws])
  boot = boot[np.isfinite(boot)]
  sb = 2 * per_split / (1 + per_split)
  out.update({"mean": float(point) if np.isfinite(point) else None,
              "std": float(np.nanstd(sb, ddof=1)) if np.isfinite(sb).sum() > 1 else None,
              "ci95": ([float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
                       if boot.size else None),
              "n": len(splits)})
  return out


# --------------------------------------------------------------------------
# Scoring an estimator against the ground truth
# --------------------------------------------------------------------------


def top_fraction_overlap(scores: np.ndarray, truth: np.ndarray, fraction: float = 0.1,
                         tie_break: np.ndarray | None = None) -> float | None:
  """Expected share of the ground truth's top `fraction` that the estimator's top holds.

  k = round(fraction * n) examples on each side. The truth's top k is taken
  with ties broken by `tie_break` (then by index); the estimator's ties at its
  k-th value are shared out: each tied example is in its top k with
  probability (places left) / (tied examples), the expectation under random
  tie-breaking. None without finite scores.
  """
  scores, truth = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
  ok = np.isfinite(scores) & np.isfinite(truth)
  scores, truth = scores[ok], truth[ok]
  n = scores.size
  k = int(round(fraction * n))
  if n == 0 or k == 0:
    return None
  secondary = (np.zeros(n) if tie_break is None
               else np.asarray(tie_break, np.float64)[ok])
  top_truth = np.lexsort((np.arange(n), -secondary, -truth))[:k]
  kth = np.sort(scores)[::-1][k - 1]
  above, tied = scores > kth, scores == kth
  p_in = np.where(above, 1.0, np.where(tied, (k - above.sum()) / tied.sum(), 0.0))
  return float(p_in[top_truth].sum() / k)


def _correlation_cell(score: np.ndarray, truth: np.ndarray, kind: str,
                      draws: np.ndarray) -> dict[str, Any]:
  """{mean: r, std and ci95: bootstrap over examples, n} of Spearman or Pearson r."""
  ok = np.isfinite(score) & np.isfinite(truth)
  out = {"mean": None, "std": None, "ci95": None, "n": int(ok.sum())}
  a, b = score[ok], truth[ok]
  if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return out
  if kind == "spearman":
    a, b = scipy.stats.rankdata(a), scipy.stats.rankdata(b)
  out["mean"] = float(_pearson_rows(a[None], b[None])[0])
  idx = draws[:, :a.size] % a.size
  ra, rb = a[idx], b[idx]
  if kind == "spearman":
    ra, rb = scipy.stats.rankdata(ra, axis=1), scipy.stats.rankdata(rb, axis=1)
  boot = _pearson_rows(ra, rb)
  boot = boot[np.isfinite(boot)]
  if boot.size > 1:
    out["std"] = float(np.std(boot, ddof=1))
    out["ci95"] = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
  return out


def compare(score: np.ndarray, truth: dict[str, np.ndarray], corrupted: np.ndarray,
            bootstrap: int = 500, seed: int = 0) -> dict[str, Any]:
  """An estimator's agreement with the ground truth (`memorization`'s output) on the probe set.

  Higher scores must mean "more memorized". Bootstrap draws are the same for
  every estimator of one seed (paired intervals).
  """
  score = np.asarray(score, np.float64)
  corrupted = np.asarray(corrupted, bool)
  rng = np.random.Generator(np.random.PCG64(seed))
  draws = rng.integers(0, 2**31, (bootstrap, score.size))
  finite = np.isfinite(score)
  return {
      "spearman_mem": _correlation_cell(score, truth["mem"], "spearman", draws),
      "spearman_loss": _correlation_cell(score, truth["loss"], "spearman", draws),
      "pearson_mem": _correlation_cell(score, truth["mem"], "pearson", draws),
      "pearson_loss": _correlation_cell(score, truth["loss"], "pearson", draws),
      "auc_vs_corruption": stats.roc_auc(score[finite], corrupted[finite]),
      # mem_LOO has many ties (a multiple of 1/S): its top 10% is broken by the loss form.
      "top10_overlap": top_fraction_overlap(score, truth["mem"], 0.1, tie_break=truth["loss"]),
      "examples": int(finite.sum()),
  }


# --------------------------------------------------------------------------
# Within-group and population-weighted agreement, reliability, ceilings
# --------------------------------------------------------------------------


def population_weights(corrupted: np.ndarray, noise_fraction: float) -> np.ndarray:
  """Per probe example, the weight that makes the probe's corrupted share the training set's.

  The probe holds a fraction q of corrupted examples (half, by construction);
  the training set pi = `noise_fraction`. Corrupted examples weigh pi / q,
  clean ones (1 - pi) / (1 - q), so weighted statistics are those of the
  training population rather than of the half-corrupted probe.
  """
  corrupted = np.asarray(corrupted, bool)
  q = corrupted.mean()
  if q in (0.0, 1.0):
    return np.ones(corrupted.size)
  return np.where(corrupted, noise_fraction / q, (1 - noise_fraction) / (1 - q))


def weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
  """Mid-ranks on the weighted scale: the weight below a value plus half the weight tied with it."""
  values, weights = np.asarray(values, np.float64), np.asarray(weights, np.float64)
  order = np.argsort(values, kind="stable")
  v, w = values[order], weights[order]
  first = np.r_[True, v[1:] != v[:-1]]
  group = np.cumsum(first) - 1
  group_weight = np.bincount(group, weights=w)
  below = np.r_[0.0, np.cumsum(group_weight)[:-1]]
  ranks = np.empty_like(values)
  ranks[order] = below[group] + group_weight[group] / 2
  return ranks


def weighted_pearson(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
  w = np.asarray(weights, np.float64) / np.sum(weights)
  da, db = a - np.sum(w * a), b - np.sum(w * b)
  denom = np.sqrt(np.sum(w * da * da) * np.sum(w * db * db))
  return float(np.sum(w * da * db) / denom) if denom > 0 else float("nan")


def _weighted_correlation(a, b, w, kind):
  if kind == "spearman":
    a, b = weighted_ranks(a, w), weighted_ranks(b, w)
  return weighted_pearson(a, b, w)


def _weighted_cell(score, truth, weights, kind, draws) -> dict[str, Any]:
  ok = np.isfinite(score) & np.isfinite(truth)
  out = {"mean": None, "std": None, "ci95": None, "n": int(ok.sum())}
  a, b, w = score[ok], truth[ok], weights[ok]
  if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return out
  point = _weighted_correlation(a, b, w, kind)
  if not np.isfinite(point):
    return out
  out["mean"] = point
  idx = draws[:, :a.size] % a.size
  boot = np.array([_weighted_correlation(a[d], b[d], w[d], kind) for d in idx])
  boot = boot[np.isfinite(boot)]
  if boot.size > 1:
    out["std"] = float(np.std(boot, ddof=1))
    out["ci95"] = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
  return out


def group_correlations(score: np.ndarray, truth: np.ndarray, corrupted: np.ndarray,
                       noise_fraction: float, bootstrap: int = 500,
                       seed: int = 0) -> dict[str, dict[str, Any]]:
  """Spearman and Pearson correlation of `score` with `truth` four ways, with bootstrap cells.

  pooled: every probe example; corrupted / clean: within each group;
  weighted: the probe weighted to the training population's corrupted share
  (population_weights; Spearman on weighted mid-ranks). Bootstrap draws are
  the same for every estimator of one seed (paired intervals).
  """
  score, truth = np.asarray(score, np.float64), np.asarray(truth, np.float64)
  corrupted = np.asarray(corrupted, bool)
  rng = np.random.Generator(np.random.PCG64(seed))
  draws = rng.integers(0, 2**31, (bootstrap, score.size))
  weights = population_weights(corrupted, noise_fraction)
  out = {}
  for kind in ("spearman", "pearson"):
    out[kind] = {
        "pooled": _correlation_cell(score, truth, kind, draws),
        "corrupted": _correlation_cell(score[corrupted], truth[corrupted], kind, draws),
        "clean": _correlation_cell(score[~corrupted], truth[~corrupted], kind, draws),
        "weighted": _weighted_cell(score, truth, weights, kind, draws)}
  return out


def fit_gated(score: np.ndarray, fits: np.ndarray) -> np.ndarray:
  """`score` where the run fits the example, and below every such score where it does not.

  A memorization score for an example its own run never fits should say "not
  memorized": the unfit examples tie at the bottom (one below the lowest fitted score).
  """
  score, fits = np.asarray(score, np.float64), np.asarray(fits, bool)
  if not fits.any():
    return np.zeros_like(score)
  floor = np.nanmin(score[fits]) - 1.0
  return np.where(fits, score, floor)


def half_reliability(first: np.ndarray, second: np.ndarray, halves: float = 2.0
                     ) -> dict[str, Any]:
  """Pearson r of two independent replicates over examples, and r Spearman-Brown corrected to
  `halves` replicates (2: each is half the estimator; 1: each is the whole estimator)."""
  a, b = np.asarray(first, np.float64), np.asarray(second, np.float64)
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
    return {"r": None, "reliability": None, "replicates": halves}
  r = float(_pearson_rows(a[ok][None], b[ok][None])[0])
  corrected = halves * r / (1 + (halves - 1) * r) if r > -1 / max(halves - 1, 1e-12) else r
  return {"r": r, "reliability": float(corrected), "replicates": halves}


def attenuation_ceiling(truth_reliability: float | None,
                        estimator_reliability: float | None) -> float | None:
  """sqrt(r_truth * r_estimator): the largest correlation two noisy measures can show."""
  if truth_reliability is None or estimator_reliability is None:
    return None
  return float(np.sqrt(max(0.0, truth_reliability) * max(0.0, estimator_reliability)))


def agreement(score: np.ndarray, truth: dict[str, np.ndarray], corrupted: np.ndarray,
              noise_fraction: float, seed: int = 0) -> dict[str, Any]:
  """An oriented estimator against the ground truth (`memorization`'s output), on the probe set.

  group_correlations with mem_LOO (spearman, pearson: pooled, corrupted, clean,
  weighted), the pooled Spearman with loss_LOO, the ROC AUC against the planted
  corruption and the top-10% overlap with mem_LOO (ties broken by loss_LOO).
  """
  score = np.asarray(score, np.float64)
  corrupted = np.asarray(corrupted, bool)
  finite = np.isfinite(score)
  loss = group_correlations(score, truth["loss"], corrupted, noise_fraction, bootstrap=0,
                            seed=seed)
  return {**group_correlations(score, truth["mem"], corrupted, noise_fraction, seed=seed),
          "spearman_loss": loss["spearman"]["pooled"]["mean"],
          "auc_vs_corruption": stats.roc_auc(score[finite], corrupted[finite]),
          "top10_overlap": top_fraction_overlap(score, truth["mem"], 0.1,
                                                tie_break=truth["loss"])}


def fit_record(train_accuracy_with: np.ndarray, train_accuracy_without: np.ndarray,
               correct_with: np.ndarray, corrupted: np.ndarray,
               threshold: float = 0.99) -> dict[str, Any]:
  """Did the LOO runs fit their own training sets? Counts of fitted runs (the rest censored),
  per run: each seed's with-run training accuracy and its censored without-runs (the probe
  positions whose run without i stayed below `threshold`); and the share of (seed, probe
  example) pairs the runs with i predict as their label."""
  acc_with = np.asarray(train_accuracy_with, np.float64)
  acc_without = np.asarray(train_accuracy_without, np.float64)
  with_fit, without_fit = acc_with >= threshold, acc_without >= threshold
  correct_with, corrupted = np.asarray(correct_with, bool), np.asarray(corrupted, bool)
  return {"threshold": threshold,
          "with_runs_fitted": f"{int(with_fit.sum())}/{with_fit.size}",
          "without_runs_fitted": f"{int(without_fit.sum())}/{without_fit.size}",
          "censored_runs": int((~with_fit).sum() + (~without_fit).sum()),
          "with_run_train_accuracy": acc_with.tolist(),
          "censored_without_runs": [np.flatnonzero(~row).tolist() for row in without_fit],
          "without_run_train_accuracy_min": float(np.min(acc_without)),
          "with_run_train_accuracy_min": float(np.min(acc_with)),
          "probe_fit_by_with_runs": {"corrupted": float(correct_with[:, corrupted].mean()),
                                     "clean": float(correct_with[:, ~corrupted].mean())}}
