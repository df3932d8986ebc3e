"""A population of models trained on known subsets, and the per-model outputs every score reads.

Feldman & Zhang's subsample estimator, the C-score, LiRA and confident
learning all read the same thing: K models, each trained on a known subset of
the training set, and each model's outputs on every example. memobench trains
that population once (`train`), stores its outputs (`save`: the inclusion
matrix, each model's correctness, correct-class logit margin and softmax, in
float16 where they are real numbers) and scores every estimator of the table
from them (estimators/__init__.py); `grow` adds models to a saved population
and trains only the new ones.

Inclusion designs (`PopulationConfig.design`):

  balanced     LiRA's construction (Carlini et al. 2022; tensorflow/privacy
               research/mi_lira_2021/train.py: a (K, N) matrix of uniforms,
               ranked within each column, an example IN the models where its
               rank is below pkeep * K): every example is held out of EXACTLY
               round((1 - p) K) models (round half up), so no example lacks
               held-out models at small K. Built in blocks of `block` models
               so that the design nests: block b holds each example out of
               R((b + 1) B) - R(b B) of its models, R(k) = round((1 - p) k), so
               the first K models of any larger population are the K-model
               population, and every multiple of B holds each example out of
               exactly R(K) models. Model k's subset size varies around p N.
  independent  Feldman & Zhang's draws: model k trains on a uniformly random
               subset of exactly m = round(p N) examples, independently of the
               other models (steps.subset_mask of its key, the subsets of
               memobench.memorization's default ensemble); an example is held
               out of Binomial(K, 1 - p) models, possibly none.

Training: every model trains through the one loop (training.loop.train_group),
all in one vmapped program (or one per `group` models), for a fixed budget of
`epochs` epochs, no stop on fitting:

  balanced     on the whole training set's batch order with its held-out
               examples weighted 0 in the loss (loop.Member.loss_weights), the
               procedure of the exact leave-one-out runs (leave_one_out.py), so
               the population and the ground truth are one algorithm on
               different data: an epoch is floor(N / B) steps of B slots, about
               p B of them the model's own, and visits each of its examples once.
               (Loss weights keep a held-out example out of the loss, not out of
               BatchNorm's batch statistics: models with BatchNorm are refused.)
  independent  on batches of its own subset (Workload.subset_size): an epoch is
               floor(m / B) steps, as memobench.memorization's ensemble has
               always trained (the same models, bit for bit).

Whether each model fitted its own training set (>= FIT_THRESHOLD of its own
examples predicted as their training label) is recorded per model at every
evaluation (`fit_epoch`: the first; NaN: censored, never within the budget).
Each model's correctness is the loop's final evaluation's (the predictions
every memobench score reads); its margin and softmax come from its final
parameters' logits.

Model k's key is fold_in(fold_in(run key, prng.MEMORIZATION), k) (its
initialization, batch order, dropout, and its independent subset), the
balanced design's block b draws from fold_in(fold_in(run key,
prng.POPULATION_DESIGN), b): model k is the same whatever K it runs beside.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, results, specs
from memobench import workload as workload_lib
from memobench.data import corruptions, datasets
from memobench.estimators import base
from memobench.estimators import leave_one_out as loo
from memobench.estimators.subsample import EnsembleConfig, estimator_workload, model_keys
from memobench.training import loop
from memobench.training.steps import subset_mask

DESIGNS = ("balanced", "independent")
FIT_THRESHOLD = 0.99
FILE = "population.npz"
# The fields of PopulationConfig that define its models (all but their number and grouping):
# a saved population is grown only when these agree.
IDENTITY = ("subset_fraction", "design", "block", "epochs", "evaluations")


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
  models: int = 64
  subset_fraction: float = 0.7
  design: str = "balanced"
  block: int = 16           # the balanced design's block (models); K need not be a multiple
  epochs: int = 40          # each model's budget, in epochs over the whole training set
  evaluations: int = 1      # evaluations over the budget (the fit record's resolution)
  group: int = 0            # models per vmapped program (0: all in one); memory only

  def check(self) -> "PopulationConfig":
    """Raises specs.SpecError, one line, on a bad value."""
    p = self.subset_fraction
    if not (isinstance(p, (int, float)) and math.isfinite(p) and 0 < p < 1):
      raise specs.SpecError(f"subset_fraction must be in (0, 1), got {p}")
    if self.design not in DESIGNS:
      raise specs.SpecError(f"design must be one of {', '.join(DESIGNS)}, got {self.design!r}")
    if self.group < 0:
      raise specs.SpecError(f"group must be at least 0 (0: all models in one program), got "
                            f"{self.group}")
    for name in ("models", "block", "epochs", "evaluations"):
      if getattr(self, name) < 1:
        raise specs.SpecError(f"{name} must be at least 1, got {getattr(self, name)}")
    if self.models < 2:
      raise specs.SpecError(f"models must be at least 2, got {self.models}")
    if self.evaluations > self.epochs:
      raise specs.SpecError(f"evaluations ({self.evaluations}) must not exceed epochs "
                            f"({self.epochs})")
    return self


# --------------------------------------------------------------------------
# Designs
# --------------------------------------------------------------------------


def held_out_count(models: int, fraction: float) -> int:
  """R(K) = round((1 - p) K), halves rounded up: the balanced design's held-out models."""
  return int(math.floor((1.0 - fraction) * models + 0.5))


def balanced_design(seed: int, models: int, n: int, fraction: float, block: int) -> np.ndarray:
  """(models, n) inclusion of LiRA's construction, in nested blocks (module docstring)."""
  base_key = jax.random.fold_in(prng.run_key(seed), prng.POPULATION_DESIGN)
  inside = np.zeros((models, n), bool)
  for b, start in enumerate(range(0, models, block)):
    size = min(block, models - start)
    out = held_out_count(start + size, fraction) - held_out_count(start, fraction)
    u = np.asarray(jax.random.uniform(jax.random.fold_in(base_key, b), (size, n)))
    rank = np.argsort(np.argsort(u, axis=0, kind="stable"), axis=0, kind="stable")
    inside[start:start + size] = rank >= out
  return inside


def independent_design(keys: jax.Array, n: int, fraction: float) -> np.ndarray:
  """(K, n): model k's subset of exactly round(p n) examples, steps.subset_mask of its key."""
  m = int(round(fraction * n))
  masks = jax.jit(jax.vmap(subset_mask, in_axes=(0, None, None)), static_argnums=(1, 2))(
      keys, n, m)
  return np.asarray(masks)


def design(config: PopulationConfig, seed: int, n: int) -> np.ndarray:
  """The (K, n) inclusion matrix of `config` for `seed`."""
  if config.design == "balanced":
    return balanced_design(seed, config.models, n, config.subset_fraction, config.block)
  return independent_design(model_keys(seed, config.models), n, config.subset_fraction)


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------


def outputs_from_logits(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
  """correct (bool), margin and probs (float16) from (K, N, C) logits, computed in float32.

  margin = z_y - logsumexp_{j != y} z_j = log p_y - log(1 - p_y), the released
  LiRA code's log(y_true) - log(y_wrong) without its 1e-45 floor (exact in logit space).
  """
  z = np.asarray(logits, np.float32)
  labels = np.asarray(labels)
  z_y = np.take_along_axis(z, labels[None, :, None].repeat(z.shape[0], 0), axis=-1)[..., 0]
  others = z.copy()
  np.put_along_axis(others, labels[None, :, None].repeat(z.shape[0], 0), -np.inf, axis=-1)
  top = others.max(-1, keepdims=True)
  lse_others = top[..., 0] + np.log(np.exp(others - top).sum(-1))
  shifted = z - z.max(-1, keepdims=True)
  probs = np.exp(shifted)
  probs /= probs.sum(-1, keepdims=True)
  return {"correct": np.argmax(z, -1) == labels[None], "margin": (z_y - lse_others)
          .astype(np.float16), "probs": probs.astype(np.float16)}


def model_logits(module, params: list[Any], model_states: list[Any], x: np.ndarray,
                 models_per_call: int = 16, examples_per_call: int = 4096) -> np.ndarray:
  """(K, N, C) float32 logits of every model on `x` (evaluation mode), in chunks."""
  stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)  # noqa: E731

  @jax.jit
  def apply(p, s, xs):
    return jax.vmap(lambda pp, ss: module.apply({"params": pp, **ss}, xs, train=False))(p, s)

  rows = []
  for k0 in range(0, len(params), models_per_call):
    p, s = stack(params[k0:k0 + models_per_call]), stack(model_states[k0:k0 + models_per_call])
    rows.append(np.concatenate([np.asarray(apply(p, s, jnp.asarray(x[i:i + examples_per_call])))
                                for i in range(0, x.shape[0], examples_per_call)], axis=1))
  return np.concatenate(rows, axis=0)


# --------------------------------------------------------------------------
# The population
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Population:
  """A trained population: its outputs, each model's fit record, and what training cost."""
  config: PopulationConfig
  identity: dict[str, Any]       # spec hash, seed, n and the IDENTITY fields
  arrays: dict[str, np.ndarray]  # inclusion, correct, margin, probs, test_*, per-model records
  trained: int = 0               # models trained by this call (the rest were reused)
  compile_s: float = 0.0
  train_s: float = 0.0
  train_cpu_s: float = 0.0
  model_steps: int = 0           # optimizer steps of the models trained by this call

  def outputs(self) -> base.Outputs:
    a = self.arrays
    return base.Outputs(inclusion=a["inclusion"], labels=a["labels"], correct=a["correct"],
                        margin=a["margin"], probs=a["probs"],
                        test_correct=a["test_correct"]).check()

  def fit_summary(self) -> dict[str, Any]:
    """Per-model own-set accuracy and fit, with the censored (never fitted) models flagged."""
    a = self.arrays
    own, fit_epoch = a["own_train_accuracy"], a["fit_epoch"]
    fitted = own >= FIT_THRESHOLD
    return {"threshold": FIT_THRESHOLD, "models": int(own.size),
            "fitted_models": int(fitted.sum()), "censored_models": int((~fitted).sum()),
            "censored": [int(k) for k in np.flatnonzero(~fitted)],
            "own_train_accuracy": {"mean": float(own.mean()), "min": float(own.min())},
            "fit_epoch_mean": (float(np.nanmean(fit_epoch)) if np.isfinite(fit_epoch).any()
                               else None),
            "heldout_train_accuracy_mean": float(np.mean(a["heldout_train_accuracy"])),
            "test_accuracy_mean": float(np.mean(a["test_accuracy"]))}


def identity(spec: specs.Spec, config: PopulationConfig, seed: int, n: int) -> dict[str, Any]:
  return {"spec_hash": specs.spec_hash(spec), "seed": int(seed), "examples": int(n),
          **{name: getattr(config, name) for name in IDENTITY}}


def check_spec(spec: specs.Spec, dataset: datasets.Dataset) -> None:
  """What the population's training cannot honour; raises specs.SpecError, one line."""
  if spec.dataset.random_crop or spec.dataset.input_noise:
    raise specs.SpecError("the population trains without augmentation: leave "
                          "dataset.random_crop and dataset.input_noise off")
  if spec.budget.batch_size > dataset.num_train:
    raise specs.SpecError(f"budget.batch_size={spec.budget.batch_size} is larger than the "
                          f"{dataset.num_train} training examples")


def population_workload(spec: specs.Spec, config: PopulationConfig,
                        dataset: datasets.Dataset) -> workload_lib.Workload:
  """`spec` for the population's models: fixed budget, plain CE, fused, `evaluations` evaluations."""
  check_spec(spec, dataset)
  if config.design == "independent":
    return estimator_workload(spec, EnsembleConfig(config.models, config.subset_fraction,
                                                   config.epochs), dataset,
                              evaluations=config.evaluations)
  plain = dataclasses.replace(spec, analysis=dataclasses.replace(
      spec.analysis, turnover_dropout=0.0, objective="ce"))
  workload = loo.fixed_budget_workload(plain, config.epochs, dataset, config.evaluations)
  if _has_batch_norm(workload):
    raise specs.SpecError(f"{spec.model.name} has BatchNorm, whose batch statistics would see "
                          "held-out examples: the balanced design needs a model without it")
  return workload


def _has_batch_norm(workload: workload_lib.Workload) -> bool:
  shapes = jax.eval_shape(lambda: workload.module.init(
      jax.random.key(0), np.zeros((1, *workload.dataset.input_shape), np.float32), train=False))
  return "batch_stats" in shapes


def memory_estimate(in_program: int, models: int, param_count: int,
                    dataset: datasets.Dataset) -> int:
  """Bytes a population needs, an upper estimate.

  Per model of one vmapped program, its state and what a step makes of it in
  float32 (parameters, gradients, updates, up to two optimizer slots, kept
  RunOutcome state: 8 copies); per model of the population, its outputs (per
  example: float32 logits for the scoring, float16 softmax and margin stored,
  predictions).
  """
  per_example = dataset.num_classes * (4 + 2) + 2 + 4 + 1
  outputs = (dataset.num_train + dataset.x_test.shape[0]) * per_example
  return in_program * 8 * 4 * int(param_count) + models * outputs


def memory_bytes() -> int:
  """The memory the population's arrays may take: the device's, or the host's physical memory."""
  stats = jax.devices()[0].memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"])
  return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(in_program: int, models: int, param_count: int, dataset: datasets.Dataset,
                 flag: str = "--models") -> None:
  """Refuses up front (one SpecError line) a population whose estimate exceeds half the memory."""
  need, have = memory_estimate(in_program, models, param_count, dataset), memory_bytes()
  if need > have // 2:
    one = memory_estimate(1, 1, param_count, dataset)
    raise specs.SpecError(f"{flag}={models} needs about {need / 2**30:.1f} GiB for "
                          f"{param_count:,}-parameter models ({have / 2**30:.1f} GiB here, half "
                          f"of it usable): at most about {max(1, (have // 2) // one)} fit")


def train(spec: specs.Spec, config: PopulationConfig, dataset: datasets.Dataset,
          data: corruptions.CorruptedData, seed: int, saved: Population | None = None,
          log: Callable[[str], None] = print) -> Population:
  """The population of `config`: saved models reused where they match, the rest trained.

  A saved model k is reused when the saved population has the same identity
  (spec hash, seed, examples, design, fraction, block, epochs, evaluations)
  and the same inclusion row k; every other model is trained here.
  """
  config.check()
  n = dataset.num_train
  workload = population_workload(spec, config, dataset)
  ident = identity(spec, config, seed, n)
  check_memory(config.group or config.models, config.models, workload.param_count(), dataset)
  inclusion = design(config, seed, n)
  keys = model_keys(seed, config.models)
  reuse = np.zeros(config.models, bool)
  if saved is not None and saved.identity == ident:
    k = min(config.models, saved.arrays["inclusion"].shape[0])
    reuse[:k] = np.all(saved.arrays["inclusion"][:k] == inclusion[:k], axis=1)
  todo = np.flatnonzero(~reuse)
  log(f"population: {config.models} models ({config.design}, p = {config.subset_fraction}), "
      f"{int(reuse.sum())} reused, {todo.size} to train, {config.epochs} epochs each")
  rows: dict[int, dict[str, Any]] = {}
  if saved is not None:
    for k in np.flatnonzero(reuse):
      rows[int(k)] = {name: saved.arrays[name][k] for name in PER_MODEL}
  pop = Population(config, ident, {}, trained=int(todo.size))
  weighted = config.design == "balanced"
  group = config.group or max(todo.size, 1)
  for g0 in range(0, todo.size, group):
    ks = todo[g0:g0 + group]
    trained = _train_group(workload, data, keys, inclusion, ks, weighted)
    rows.update(trained["rows"])
    pop.compile_s += trained["compile_s"]
    pop.train_s += trained["train_s"]
    pop.train_cpu_s += trained["train_cpu_s"]
  pop.model_steps = int(todo.size * workload.schedule.total_steps)
  pop.arrays = {name: np.stack([rows[k][name] for k in range(config.models)])
                for name in PER_MODEL}
  pop.arrays.update(inclusion=inclusion, labels=np.asarray(data.y_train),
                    test_labels=np.asarray(data.y_test),
                    steps_per_model=np.int64(workload.schedule.total_steps))
  return pop


# Arrays with one row per model (K, ...), in the saved file and in Population.arrays.
PER_MODEL = ("correct", "margin", "probs", "test_correct", "test_margin", "own_train_accuracy",
             "heldout_train_accuracy", "test_accuracy", "fit_epoch")


def _train_group(workload, data, keys, inclusion, ks, weighted: bool) -> dict[str, Any]:
  """Trains models `ks` in one vmapped program; their per-model rows and timings.

  weighted: held-out examples weighted 0 (balanced); else each model's own
  subset (Workload.subset_size, from its key: the inclusion row).
  """
  silent = lambda _: None  # noqa: E731
  fit_epoch = {int(k): np.nan for k in ks}
  y = np.asarray(data.y_train)

  def tracker(k):
    def on_eval(ev):
      if np.isnan(fit_epoch[k]):
        own = np.mean(ev.train_predictions[inclusion[k]] == y[inclusion[k]])
        if own >= FIT_THRESHOLD:
          fit_epoch[k] = ev.epoch
    return on_eval
  members = [loop.Member(workload.spec, data, log=silent, on_eval=tracker(int(k)), key=keys[k],
                         loss_weights=inclusion[k].astype(np.float32) if weighted else None)
             for k in ks]
  outcomes = loop.train_group(workload, members, vmapped=len(members) > 1)
  logits = model_logits(workload.module, [o.state.params for o in outcomes],
                        [o.state.model_state for o in outcomes], np.asarray(data.x_train))
  test_logits = model_logits(workload.module, [o.state.params for o in outcomes],
                             [o.state.model_state for o in outcomes], np.asarray(data.x_test))
  train_out = outputs_from_logits(logits, y)
  test_out = outputs_from_logits(test_logits, np.asarray(data.y_test))
  y_test = np.asarray(data.y_test)
  rows = {}
  for j, k in enumerate(ks):
    inc = inclusion[k]
    # The loop's final predictions (what every memobench score reads), not argmax of the
    # logits recomputed here: the two programs may round a near-tie differently.
    correct = outcomes[j].final.train_predictions == y
    test_correct = outcomes[j].final.test_predictions == y_test
    rows[int(k)] = {
        "correct": correct, "margin": train_out["margin"][j], "probs": train_out["probs"][j],
        "test_correct": test_correct, "test_margin": test_out["margin"][j],
        "own_train_accuracy": np.float64(correct[inc].mean()),
        "heldout_train_accuracy": np.float64(correct[~inc].mean() if (~inc).any() else np.nan),
        "test_accuracy": np.float64(test_correct.mean()),
        "fit_epoch": np.float64(fit_epoch[int(k)])}
  shared = outcomes[:1] if len(members) > 1 else outcomes
  return {"rows": rows, "compile_s": sum(o.compile_s for o in shared),
          "train_s": sum(o.train_s for o in shared),
          "train_cpu_s": sum(o.train_cpu_s for o in shared)}


# --------------------------------------------------------------------------
# Saved populations
# --------------------------------------------------------------------------


def save(path: str, population: Population) -> None:
  """The population's outputs and records, atomically (results.write_npz_atomic)."""
  meta = {"config": dataclasses.asdict(population.config), "identity": population.identity}
  results.write_npz_atomic(path, {**population.arrays, "meta": np.array(json.dumps(meta))})


def load(path: str) -> Population | None:
  """A saved population, or None where there is none (a damaged file is one SpecError line)."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as z:
      arrays = {k: z[k] for k in z.files if k != "meta"}
      meta = json.loads(str(z["meta"]))
    config = PopulationConfig(**meta["config"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise specs.SpecError(f"{path}: not a readable population ({type(e).__name__}); remove it "
                          "to train anew") from None
  return Population(config, meta["identity"], arrays)
