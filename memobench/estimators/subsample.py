"""Feldman & Zhang 2020 subsample memorization estimator: K models through the one training loop.

Feldman & Zhang, "What neural networks memorize and why: discovering the long
tail via influence estimation", NeurIPS 2020: the memorization of training
example i by algorithm A on data set S is

  mem(A, S, i) = P_{h ~ A(S)}[h(x_i) = y_i] - P_{h ~ A(S \\ i)}[h(x_i) = y_i],

estimated from K models, each trained on a uniformly random subset of S of
size m = round(fraction * |S|) (fraction 0.7 in the paper):

  mem(i)    = mean_{k: i in S_k} [h_k(x_i) = y_i] - mean_{k: i not in S_k} [h_k(x_i) = y_i]
  mem_se(i) = sqrt(q_in (1 - q_in) / n_in + q_out (1 - q_out) / n_out),
              q = (k + 1/2) / (n + 1)   (k correct of the n models that did (in) / did
              not (out) train on i: the Jeffreys Beta(1/2, 1/2) posterior mean)
  heldout_accuracy(i) = mean_{k: i not in S_k} [h_k(x_i) = y_i], the held-out
              consistency score of Jiang et al. 2021 ("Characterizing structural
              regularities of labeled data in overparameterized models", the
              C-score) at subset ratio `fraction`.

mem is the plain difference of the two means (the estimator's definition);
only its standard error uses the shrunk proportions q. The plain binomial se,
sqrt(p(1-p)/(n-1)) per group, is 0 for a unanimous group and undefined for a
group of one model, and with the ~0.3 K held-out models of a small ensemble
both are common: in a simulation with known per-example probabilities
(tests/test_fidelity_estimator.py) the nominal 95% interval mem +- 1.96 se of
8 models covered the true p_in - p_out for 46% of examples with the plain se
and 98% with q (64 models: 84% and 97%); on digits_partial40 (40 epochs), the
intervals of 8 trained models covered an independent 128-model estimate for
43% of examples with the plain se and 97% with q (`python -m
tests.test_fidelity_estimator --digits`). An example that no model trained on
(n_in = 0) or every model did (n_out = 0) has no estimate: mem and mem_se are
NaN in the npz, left out of the summary's means (null when none is left) and
counted there (examples_without_heldout_models, examples_without_training_models).

At subset ratio 0.7, mem estimates the memorization of an algorithm trained
on data sets of 0.7 |S| examples, not |S| (Feldman & Zhang 2020, Sec. 2).

y_i is the label trained on (the corrupted one where labels are corrupted), so
a corrupted label that the other examples contradict scores mem ~ 1. Each model
uses the spec's model, optimizer, batch size and corrupted data with the mean
cross-entropy objective (no turn-over masks, no augmentation), for a fixed
number of epochs over its subset.

Training: the K models are K members of one `training.loop.train_group`, in
ONE vmapped program (`estimator_workload` is the spec resolved for it: a
schedule of `epochs` epochs of m examples, no stop on fitting, one evaluation
at the end, so each model's whole training is one fused chunk). Model k's key
is fold_in(fold_in(run key, prng.MEMORIZATION), k); the loop derives its
initialization, batch order and dropout from it (prng.INIT, SHUFFLE, DROPOUT)
and its subset from prng.DATA (`subset_mask`), so model k is the same whatever
K it runs beside, on any number of devices. Every model shares the one
corrupted dataset, which the program takes unbatched (no K copies). The final
evaluation's predictions over the whole training set and the test set give the
(K, N) correctness matrix.

Devices: the loop shards each training and evaluation batch over every device
(mesh axis 'data'; budget.batch_size must divide by the device count), not the
model axis as the estimator's own program did before the restructure. One
process drives all its local devices; multi-host ensembles are not supported yet.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, specs
from memobench import workload as workload_lib
from memobench.data import corruptions, datasets
from memobench.estimators import base
from memobench.metrics import stats
from memobench.training import loop
from memobench.training.steps import subset_mask


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
  models: int = 64
  subset_fraction: float = 0.7
  epochs: int = 40


# --------------------------------------------------------------------------
# The estimator (pure numpy, on the correctness matrix)
# --------------------------------------------------------------------------


def jeffreys_proportion(k: np.ndarray, n: np.ndarray) -> np.ndarray:
  """(k + 1/2) / (n + 1): the mean of the Jeffreys Beta(k + 1/2, n - k + 1/2) posterior."""
  return (np.asarray(k, np.float64) + 0.5) / (np.asarray(n, np.float64) + 1.0)


def subsample_memorization(correct: np.ndarray, in_subset: np.ndarray) -> dict[str, np.ndarray]:
  """Per-example mem, its standard error, and held-out accuracy from (K, N) matrices.

  correct[k, i]: model k predicts example i as its label; in_subset[k, i]:
  model k trained on i. mem = p_in - p_out, the plain means; mem_se from the
  Jeffreys proportions q = (k + 1/2) / (n + 1) of each group (module
  docstring), finite whenever both groups have a model. NaN (mem, mem_se, and
  the empty group's accuracy) where an example was in every subset, or none.
  """
  correct = np.asarray(correct, np.float64)
  inside = np.asarray(in_subset, bool)
  n_in, n_out = inside.sum(0), (~inside).sum(0)
  k_in = np.where(inside, correct, 0).sum(0)
  k_out = np.where(~inside, correct, 0).sum(0)
  scored = (n_in > 0) & (n_out > 0)
  with np.errstate(invalid="ignore", divide="ignore"):
    p_in = k_in / n_in
    p_out = k_out / n_out
    q_in, q_out = jeffreys_proportion(k_in, n_in), jeffreys_proportion(k_out, n_out)
    se = np.sqrt(q_in * (1 - q_in) / n_in + q_out * (1 - q_out) / n_out)
  return {"mem": np.where(scored, p_in - p_out, np.nan), "mem_se": np.where(scored, se, np.nan),
          "in_accuracy": p_in, "heldout_accuracy": p_out, "n_in": n_in, "n_out": n_out}


def summarize(scores: dict[str, np.ndarray], correct: np.ndarray, in_subset: np.ndarray,
              test_correct: np.ndarray, corrupted: np.ndarray) -> dict[str, Any]:
  """The summary JSON's score part."""
  corrupted = np.asarray(corrupted, bool)
  in_acc = np.where(in_subset, correct, 0).sum(1) / np.maximum(in_subset.sum(1), 1)
  mem = scores["mem"]
  finite = np.isfinite(mem)
  return {
      "mem_mean": stats.split_summary(mem, corrupted),
      "mem_se_mean": stats.split_summary(scores["mem_se"], corrupted),
      "heldout_accuracy_mean": stats.split_summary(scores["heldout_accuracy"], corrupted),
      "mem_auc": stats.roc_auc(mem[finite], corrupted[finite]),
      "examples_scored": int(finite.sum()),
      # Examples with no estimate (mem, mem_se NaN in the npz, left out of the means):
      # in every model's subset (no held-out model), or in none.
      "examples_without_heldout_models": int(np.sum(scores["n_out"] == 0)),
      "examples_without_training_models": int(np.sum(scores["n_in"] == 0)),
      "models_per_example_in": float(np.mean(scores["n_in"])),
      "models_per_example_out": float(np.mean(scores["n_out"])),
      # Each model's accuracy on its own subset (did the ensemble fit?) and on the test set.
      "model_subset_train_accuracy_mean": float(np.mean(in_acc)),
      "model_subset_train_accuracy_min": float(np.min(in_acc)),
      "model_test_accuracy_mean": float(np.mean(test_correct)),
  }


# --------------------------------------------------------------------------
# The models' keys and subsets
# --------------------------------------------------------------------------


def model_keys(seed: int, count: int) -> jax.Array:
  """Models 0..count-1's keys, (count,): fold_in(fold_in(run_key(seed), MEMORIZATION), k)."""
  base = jax.random.fold_in(prng.run_key(seed), prng.MEMORIZATION)
  return jax.vmap(lambda k: jax.random.fold_in(base, k))(jnp.arange(count, dtype=jnp.uint32))


def subset_size(config: EnsembleConfig, n: int) -> int:
  return int(round(config.subset_fraction * n))


# --------------------------------------------------------------------------
# Training the K models through the loop
# --------------------------------------------------------------------------


def estimator_workload(spec: specs.Spec, config: EnsembleConfig, dataset: datasets.Dataset,
                       data_dir: str | None = None, evaluations: int = 1
                       ) -> workload_lib.Workload:
  """`spec` resolved for the estimator's models.

  Each trains `config.epochs` epochs over its own subset of m examples
  (Workload.subset_size), whatever its training accuracy (stops_on_fit=False),
  and is evaluated once, at the end (eval_every_steps = its total steps; or
  `evaluations` times, evenly), with
  the plain model and the mean cross-entropy (analysis.turnover_dropout=0,
  analysis.objective=ce). The program is fused on every backend, as the
  estimator's has always been (its models share one vmapped program).
  """
  n = dataset.num_train
  fraction = config.subset_fraction
  if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and 0 < fraction < 1):
    raise specs.SpecError(f"--subset_fraction must be in (0, 1), got {fraction}")
  m = subset_size(config, n)
  batch = spec.budget.batch_size
  if batch > m:
    raise specs.SpecError(f"budget.batch_size={batch} is larger than a subset of {m} examples")
  if spec.dataset.random_crop or spec.dataset.input_noise:
    raise specs.SpecError("the subsample estimator trains without augmentation: leave "
                          "dataset.random_crop and dataset.input_noise off")
  total = config.epochs * (m // batch)
  model_spec = dataclasses.replace(
      spec,
      budget=dataclasses.replace(spec.budget, max_epochs=config.epochs, max_steps=None,
                                 eval_every_steps=max(1, total // evaluations)),
      analysis=dataclasses.replace(spec.analysis, turnover_dropout=0.0, objective="ce"))
  return workload_lib.resolve(model_spec, data_dir, dataset=dataset, subset_size=m,
                              stops_on_fit=False, fused=True)


@dataclasses.dataclass
class Ensemble:
  """What training the models gives: (K, N) predictions, subset masks and timings."""
  train_predictions: np.ndarray   # (K, N training examples)
  test_predictions: np.ndarray    # (K, N test examples)
  in_subset: np.ndarray           # (K, N): model k trained on example i
  compile_s: float                # every program the models needed (one when vmapped)
  train_s: float                  # wall seconds in training chunks, summed over programs
  train_cpu_s: float              # this process's CPU seconds in them (all threads)
  outcomes: list[Any]             # training.loop.RunOutcome per model


def train_models(workload: workload_lib.Workload, data: corruptions.CorruptedData,
                 keys: jax.Array, vmapped: bool = True) -> Ensemble:
  """Trains one model per key through `training.loop.train_group`.

  vmapped=True: all of them in ONE program (the estimator). vmapped=False: one
  program per model, one after another (the `--sequential` benchmark baseline:
  the same models, K compilations). Every model shares `data`, unbatched.
  """
  silent = lambda _: None  # pylint: disable=unnecessary-lambda-assignment
  members = [loop.Member(workload.spec, data, log=silent, key=keys[k])
             for k in range(keys.shape[0])]
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  n, m = workload.dataset.num_train, workload.subset_size
  masks = jax.jit(jax.vmap(subset_mask, in_axes=(0, None, None)), static_argnums=(1, 2))(
      keys, n, m)
  programs = outcomes[:1] if vmapped else outcomes  # a vmapped group shares its times
  return Ensemble(
      train_predictions=np.stack([o.final.train_predictions for o in outcomes]),
      test_predictions=np.stack([o.final.test_predictions for o in outcomes]),
      in_subset=np.asarray(masks),
      compile_s=sum(o.compile_s for o in programs),
      train_s=sum(o.train_s for o in programs),
      train_cpu_s=sum(o.train_cpu_s for o in programs),
      outcomes=outcomes)


# --------------------------------------------------------------------------
# The same estimators on a population's outputs (estimators/population.py)
# --------------------------------------------------------------------------


def _jeffreys_se(k: np.ndarray, n: np.ndarray) -> np.ndarray:
  q = jeffreys_proportion(k, n)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n > 0, np.sqrt(q * (1 - q) / n), np.nan)


def heldout_influence(inclusion: np.ndarray, test_correct: np.ndarray) -> dict[str, np.ndarray]:
  """Feldman & Zhang's influence of each training example i on each held-out example j.

  infl(i, j) = mean_{k: i in S_k} [h_k(x'_j) = y'_j] - mean_{k: i not in S_k} [h_k(x'_j) = y'_j]
  (their Eq. 2's estimator, j a test example no model trained on), (N, M); its
  se from the Jeffreys proportions of each group, as mem_se. NaN where i has
  no model on one side.
  """
  inside = np.asarray(inclusion, bool).astype(np.float64)
  tc = np.asarray(test_correct, np.float64)
  n_in, n_out = inside.sum(0)[:, None], (1 - inside).sum(0)[:, None]
  k_in, k_out = inside.T @ tc, (1 - inside).T @ tc
  with np.errstate(invalid="ignore", divide="ignore"):
    infl = k_in / n_in - k_out / n_out
    q_in, q_out = jeffreys_proportion(k_in, n_in), jeffreys_proportion(k_out, n_out)
    se = np.sqrt(q_in * (1 - q_in) / n_in + q_out * (1 - q_out) / n_out)
  scored = (n_in > 0) & (n_out > 0)
  return {"infl": np.where(scored, infl, np.nan), "se": np.where(scored, se, np.nan)}


def _population_mem(outputs) -> base.Scores:
  s = subsample_memorization(outputs.correct, outputs.inclusion)
  return base.Scores.of(s["mem"], s["mem_se"], examples_scored=int(np.isfinite(s["mem"]).sum()),
                        examples_without_heldout_models=int(np.sum(s["n_out"] == 0)),
                        models_per_example_out=float(np.mean(s["n_out"])))


def _cscore(outputs) -> base.Scores:
  s = subsample_memorization(outputs.correct, outputs.inclusion)
  k_out = s["heldout_accuracy"] * s["n_out"]
  return base.Scores.of(s["heldout_accuracy"], _jeffreys_se(k_out, s["n_out"]))


def _max_influence(outputs, top: int = 20) -> base.Scores:
  infl = heldout_influence(outputs.inclusion, outputs.test_correct)
  values, se = infl["infl"], infl["se"]
  scored = np.isfinite(values).any(1)
  j = np.argmax(np.where(np.isfinite(values), values, -np.inf), axis=1)
  rows = np.arange(values.shape[0])
  best = np.where(scored, values[rows, j], np.nan)
  best_se = np.where(scored, se[rows, j], np.nan)
  flat = np.where(np.isfinite(values), values, -np.inf).ravel()
  order = np.argsort(flat)[::-1][:top]
  pairs = [{"train": int(t // values.shape[1]), "test": int(t % values.shape[1]),
            "infl": float(flat[t]), "se": float(se.ravel()[t])}
           for t in order if np.isfinite(flat[t])]
  return base.Scores.of(best, best_se, top_pairs=pairs,
                        test_example_of_max=[int(v) for v in np.where(scored, j, -1)])


MEM = base.Estimator(
    name="fz_mem", reads=("correct",), score=_population_mem,
    source="Feldman & Zhang 2020, Eq. 1 and the subsample estimator (Sec. 2, Alg. 1); se from "
           "Jeffreys proportions")
CSCORE = base.Estimator(
    name="cscore", reads=("correct",), score=_cscore, sign=-1,
    source="Jiang, Zhang, Talwar & Mozer 2021 (C-score): expected accuracy of models that held "
           "the example out, at one subset ratio (the population's)")
MAX_INFLUENCE = base.Estimator(
    name="fz_max_influence", reads=("test_correct",), score=_max_influence,
    source="Feldman & Zhang 2020, Eq. 2 (influence on held-out examples): each training "
           "example's largest estimated influence on a test example")
