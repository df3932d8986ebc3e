"""Feldman & Zhang 2020 subsample memorization estimator: K models in ONE jitted program.

Feldman & Zhang, "What neural networks memorize and why: discovering the long
tail via influence estimation", NeurIPS 2020: the memorization of training
example i by algorithm A on data set S is

  mem(A, S, i) = P_{h ~ A(S)}[h(x_i) = y_i] - P_{h ~ A(S \\ i)}[h(x_i) = y_i],

estimated from K models, each trained on a uniformly random subset of S of
size m = round(fraction * |S|) (fraction 0.7 in the paper):

  mem(i)    = mean_{k: i in S_k} [h_k(x_i) = y_i] - mean_{k: i not in S_k} [h_k(x_i) = y_i]
  mem_se(i) = sqrt(s_in^2 / n_in + s_out^2 / n_out)   (s^2: unbiased sample variance
              of the 0/1 correctness; n_in, n_out: how many models did / did not train on i)
  heldout_accuracy(i) = mean_{k: i not in S_k} [h_k(x_i) = y_i], the held-out
              consistency score of Jiang et al. 2021 ("Characterizing structural
              regularities of labeled data in overparameterized models", the
              C-score) at subset ratio `fraction`.

y_i is the label trained on (the corrupted one where labels are corrupted), so
a corrupted label that the other examples contradict scores mem ~ 1. Each model
uses the spec's model, optimizer, batch size and corrupted data with the mean
cross-entropy objective (no turn-over masks), for a fixed number of epochs.

All K models train in one program: `jax.vmap` over per-model keys (each key
gives the model's subset mask, initialization, batch order and dropout), the
whole loop a `lax.fori_loop`, under one `jax.jit` whose model axis is sharded
over every device (mesh axis 'models'), so adding devices adds models in
parallel. Seeds: model k's key is fold_in(fold_in(run key, prng.MEMORIZATION),
k), so model k (its subset, initialization and batches) is the same whatever K
it runs beside, on any number of devices. One process drives all its local
devices; multi-host ensembles are not supported yet.

  python -m memobench.memorization --spec=mnist5k_partial20 --models=64 --workdir=W

writes W/memorization.npz (per-example scores, the subset masks and the
correctness matrix) and W/memorization.json (summary, with the ROC AUC of mem
at separating corrupted from clean training examples), both atomically.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from memobench import models, prng, specs
from memobench.training import optimizers
from memobench.metrics import stats

SCORES_FILE = "memorization.npz"
SUMMARY_FILE = "memorization.json"
EVAL_CHUNK = 1024
# Per-model key streams.
_SUBSET, _INIT, _SHUFFLE, _DROPOUT = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
  models: int = 64
  subset_fraction: float = 0.7
  epochs: int = 40


# --------------------------------------------------------------------------
# The estimator (pure numpy, on the correctness matrix)
# --------------------------------------------------------------------------


def subsample_memorization(correct: np.ndarray, in_subset: np.ndarray) -> dict[str, np.ndarray]:
  """Per-example mem, its standard error, and held-out accuracy from (K, N) matrices.

  correct[k, i]: model k predicts example i as its label; in_subset[k, i]:
  model k trained on i. NaN where an example was in every subset, or none.
  """
  correct = np.asarray(correct, np.float64)
  inside = np.asarray(in_subset, bool)
  n_in, n_out = inside.sum(0), (~inside).sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    p_in = np.where(inside, correct, 0).sum(0) / n_in
    p_out = np.where(~inside, correct, 0).sum(0) / n_out
    # Unbiased variance of a 0/1 sample of size n with mean p: p(1-p) n/(n-1).
    var_in = p_in * (1 - p_in) * n_in / (n_in - 1)
    var_out = p_out * (1 - p_out) * n_out / (n_out - 1)
    se = np.sqrt(var_in / n_in + var_out / n_out)
  return {"mem": p_in - p_out, "mem_se": se, "in_accuracy": p_in, "heldout_accuracy": p_out,
          "n_in": n_in, "n_out": n_out}


# --------------------------------------------------------------------------
# Training K models in one program
# --------------------------------------------------------------------------


def model_keys(seed: int, count: int) -> jax.Array:
  from memobench.training import train  # pylint: disable=import-outside-toplevel
  base = jax.random.fold_in(train.run_key(seed), prng.MEMORIZATION)
  return jax.vmap(lambda k: jax.random.fold_in(base, k))(jnp.arange(count, dtype=jnp.uint32))


def subset_mask(key: jax.Array, n: int, m: int) -> jax.Array:
  """Exactly m of n examples, uniformly at random: a pure function of the model key."""
  order = jnp.argsort(jax.random.uniform(jax.random.fold_in(key, _SUBSET), (n,)))
  return jnp.zeros(n, bool).at[order[:m]].set(True)


@dataclasses.dataclass(frozen=True)
class Member:
  """The pure functions of one ensemble member (vmapped over models by `train_ensemble`)."""
  train: Callable[[jax.Array, jax.Array, jax.Array], tuple[Any, Any, jax.Array]]
  predict: Callable[[Any, Any, jax.Array], jax.Array]
  subset_size: int
  steps: int


def make_member(spec: specs.Spec, num_classes: int, input_shape: tuple[int, ...], n: int,
                config: EnsembleConfig) -> Member:
  """One model trained on its own random subset with the spec's model, optimizer and batch."""
  m = int(round(config.subset_fraction * n))
  batch = spec.budget.batch_size
  if not 0 < config.subset_fraction < 1:
    raise specs.SpecError(f"--subset_fraction must be in (0, 1), got {config.subset_fraction}")
  if batch > m:
    raise specs.SpecError(f"budget.batch_size={batch} is larger than a subset of {m} examples")
  if spec.dataset.random_crop or spec.dataset.input_noise:
    raise specs.SpecError("the subsample estimator trains without augmentation: leave "
                          "dataset.random_crop and dataset.input_noise off")
  steps_per_epoch = m // batch
  total = config.epochs * steps_per_epoch
  module = models.build(spec.model, num_classes)
  tx = optimizers.build(spec.optimizer, steps_per_epoch)

  def train_member(key, x, y):
    mask = subset_mask(key, n, m)
    members = jnp.nonzero(mask, size=m)[0]  # the subset, in index order
    variables = flax.core.unfreeze(module.init(
        jax.random.fold_in(key, _INIT), jnp.zeros((1, *input_shape), jnp.float32), train=False))
    params = variables.pop("params")
    variables.pop("intermediates", None)
    shuffle_key, dropout_key = jax.random.fold_in(key, _SHUFFLE), jax.random.fold_in(key, _DROPOUT)

    def step(i, carry):
      params, model_state, opt_state = carry
      perm = jax.random.permutation(jax.random.fold_in(shuffle_key, i // steps_per_epoch), m)
      idx = members[jax.lax.dynamic_slice_in_dim(perm, (i % steps_per_epoch) * batch, batch)]

      def loss_fn(p):
        logits, new_state = module.apply(
            {"params": p, **model_state}, x[idx], train=True,
            rngs={"dropout": jax.random.fold_in(dropout_key, i)}, mutable=list(model_state))
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            logits.astype(jnp.float32), y[idx])), new_state

      grads, new_state = jax.grad(loss_fn, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), dict(new_state), opt_state

    params, model_state, _ = jax.lax.fori_loop(
        0, total, step, (params, variables, tx.init(params)))
    return params, model_state, mask

  def predict(params, model_state, x):
    logits = module.apply({"params": params, **model_state}, x, train=False)
    return jnp.argmax(logits, -1).astype(jnp.int32)

  return Member(train_member, predict, m, total)


def make_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.device_count(),), ("models",),
                       axis_types=(jax.sharding.AxisType.Auto,))


def _predict_all(member: Member, params, model_state, x, vmapped: bool) -> np.ndarray:
  """(K, N) predictions (or (N,) for one model), in chunks of examples."""
  fn = jax.vmap(member.predict, in_axes=(0, 0, None)) if vmapped else member.predict
  fn = jax.jit(fn)
  return np.concatenate([np.asarray(fn(params, model_state, x[s:s + EVAL_CHUNK]))
                         for s in range(0, x.shape[0], EVAL_CHUNK)], axis=-1)


def train_ensemble(member: Member, keys: jax.Array, x: jax.Array, y: jax.Array,
                   x_test: jax.Array, mesh: jax.sharding.Mesh | None = None) -> dict[str, Any]:
  """Trains len(keys) models in one jitted program; their predictions, masks and timings."""
  mesh = mesh or make_mesh()
  k = keys.shape[0]
  if k % mesh.size:
    raise specs.SpecError(f"--models={k} does not divide over {mesh.size} devices")
  by_model, replicated = NamedSharding(mesh, P("models")), NamedSharding(mesh, P())
  program = jax.jit(jax.vmap(member.train, in_axes=(0, None, None)),
                    in_shardings=(by_model, replicated, replicated),
                    out_shardings=by_model)
  keys = jax.device_put(keys, by_model)
  x, y = jax.device_put(x, replicated), jax.device_put(y, replicated)
  t0 = time.perf_counter()
  compiled = program.lower(keys, x, y).compile()
  compile_s = time.perf_counter() - t0
  t0, c0 = time.perf_counter(), time.process_time()
  params, model_state, masks = compiled(keys, x, y)
  jax.block_until_ready(params)
  # CPU seconds of all this process's threads: on a shared machine, less
  # sensitive than wall time to what else runs.
  train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
  return {"train_predictions": _predict_all(member, params, model_state, x, True),
          "test_predictions": _predict_all(member, params, model_state, x_test, True),
          "in_subset": np.asarray(masks), "compile_s": compile_s, "train_s": train_s,
          "train_cpu_s": train_cpu_s, "compiled": compiled}


def train_sequentially(member: Member, keys: jax.Array, x: jax.Array, y: jax.Array,
                       x_test: jax.Array) -> dict[str, Any]:
  """The same models, one jitted run per model (the baseline `train_ensemble` replaces)."""
  program = jax.jit(member.train)
  t0 = time.perf_counter()
  compiled = program.lower(keys[0], x, y).compile()
  compile_s = time.perf_counter() - t0
  preds, test_preds, masks = [], [], []
  t0, c0 = time.perf_counter(), time.process_time()
  for key in keys:
    params, model_state, mask = compiled(key, x, y)
    jax.block_until_ready(params)
    preds.append(_predict_all(member, params, model_state, x, False))
    test_preds.append(_predict_all(member, params, model_state, x_test, False))
    masks.append(np.asarray(mask))
  # Both include the (small) per-model evaluation.
  train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
  return {"train_predictions": np.stack(preds), "test_predictions": np.stack(test_preds),
          "in_subset": np.stack(masks), "compile_s": compile_s, "train_s": train_s,
          "train_cpu_s": train_cpu_s}


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
      "models_per_example_in": float(np.mean(scores["n_in"])),
      "models_per_example_out": float(np.mean(scores["n_out"])),
      # Each model's accuracy on its own subset (did the ensemble fit?) and on the test set.
      "model_subset_train_accuracy_mean": float(np.mean(in_acc)),
      "model_subset_train_accuracy_min": float(np.min(in_acc)),
      "model_test_accuracy_mean": float(np.mean(test_correct)),
  }


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def run(spec: specs.Spec, config: EnsembleConfig, workdir: str, *, sequential: bool = False,
        data_dir: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
  """Trains the ensemble of `spec`, writes the npz and the summary JSON; returns the summary."""
  from memobench import results  # pylint: disable=import-outside-toplevel
  from memobench.metrics import analysis
  from memobench.training import train
  specs.validate(spec)
  if config.models < 2:
    raise specs.SpecError(f"--models must be at least 2, got {config.models}")
  if config.epochs <= 0:
    raise specs.SpecError(f"--epochs must be positive, got {config.epochs}")
  if not results.is_remote(workdir):  # gs:// workdirs are written by whole-object uploads
    try:
      os.makedirs(workdir, exist_ok=True)
    except OSError as e:
      raise results.WorkdirError(f"cannot create workdir {workdir}: {e.strerror}") from None
    if not os.access(workdir, os.W_OK):
      raise results.WorkdirError(f"workdir {workdir} is not writable")
  data = train.prepare_data(spec, data_dir)
  n = int(data.x_train.shape[0])
  member = make_member(spec, data.num_classes, tuple(data.x_train.shape[1:]), n, config)
  keys = model_keys(spec.seed, config.models)
  log(f"{spec.name}: {config.models} models on random {member.subset_size}/{n} subsets, "
      f"{config.epochs} epochs ({member.steps} steps) each, in one program on "
      f"{jax.device_count()} device(s)")
  out = train_ensemble(member, keys, data.x_train, data.y_train, data.x_test)
  log(f"ensemble: compile {out['compile_s']:.1f}s, train {out['train_s']:.1f}s "
      f"({out['train_cpu_s']:.1f} CPU-s)")
  timing = {"ensemble_compile_s": out["compile_s"], "ensemble_train_s": out["train_s"],
            "ensemble_train_cpu_s": out["train_cpu_s"]}
  if sequential:
    seq = train_sequentially(member, keys, data.x_train, data.y_train, data.x_test)
    log(f"sequential: compile {seq['compile_s']:.1f}s, train {seq['train_s']:.1f}s "
        f"({seq['train_cpu_s']:.1f} CPU-s)")
    timing.update(sequential_compile_s=seq["compile_s"], sequential_train_s=seq["train_s"],
                  sequential_train_cpu_s=seq["train_cpu_s"],
                  sequential_matches_ensemble=float(np.mean(
                      seq["train_predictions"] == out["train_predictions"])))
  y_train, y_test = np.asarray(data.y_train), np.asarray(data.y_test)
  corrupted = np.asarray(data.label_changed)
  correct = out["train_predictions"] == y_train[None]
  test_correct = out["test_predictions"] == y_test[None]
  scores = subsample_memorization(correct, out["in_subset"])
  summary = {
      "spec": {"name": spec.name, "hash": specs.spec_hash(spec), "seed": spec.seed,
               "resolved": dataclasses.asdict(spec)},
      "estimator": {"models": config.models, "subset_fraction": config.subset_fraction,
                    "subset_size": member.subset_size, "epochs": config.epochs,
                    "steps_per_model": member.steps, "devices": jax.device_count(),
                    "label_noise_fraction": float(np.mean(corrupted))},
      "scores": summarize(scores, correct, out["in_subset"], test_correct, corrupted),
      "timing": timing,
      "environment": results.environment(),
  }
  analysis.write_npz_atomic(os.path.join(workdir, SCORES_FILE), {
      **scores, "in_subset": out["in_subset"], "correct": correct,
      "test_accuracy": test_correct.mean(0), "label_changed": corrupted})
  results.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary)
  s = summary["scores"]
  auc = s["mem_auc"]
  log(f"mem: corrupted {_fmt(s['mem_mean']['corrupted'])}, clean {_fmt(s['mem_mean']['clean'])}"
      f", AUC {_fmt(auc)}; model test acc {s['model_test_accuracy_mean']:.4f} -> "
      f"{os.path.join(workdir, SUMMARY_FILE)}")
  return summary


def _fmt(v) -> str:
  return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def main(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from memobench import results  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets
  f = flags.FLAGS
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  try:
    spec = specs.get(f.spec)
    spec, _ = specs.with_overrides(spec, f.set)
    if f.seed is not None:
      spec = dataclasses.replace(spec, seed=f.seed)
  except specs.SpecError as e:
    _fail(str(e), 2)
  workdir = f.workdir or os.path.join("/tmp/memobench", spec.name, f"seed{spec.seed}",
                                      "memorization")
  config = EnsembleConfig(models=f.models, subset_fraction=f.subset_fraction, epochs=f.epochs)
  try:
    run(spec, config, workdir, sequential=f.sequential, data_dir=f.data_dir)
  except specs.SpecError as e:
    _fail(str(e), 2)
  except (datasets.DataError, results.WorkdirError) as e:
    _fail(str(e), 1)


def _fail(message: str, code: int) -> None:
  print(f"memobench.memorization: error: {message}", file=sys.stderr)
  sys.exit(code)


def _define_flags() -> None:
  # Defined only when run as a program, so that importing this module (tests,
  # run.py) never collides with memobench.main's flags.
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("spec", "mnist5k_partial20", "Registered spec name.")
  flags.DEFINE_integer("models", 64, "Number of models K (a multiple of the device count).")
  flags.DEFINE_float("subset_fraction", 0.7, "Fraction of the training set each model sees.")
  flags.DEFINE_integer("epochs", 40, "Epochs (over its subset) each model trains for.")
  flags.DEFINE_string("workdir", None, "Output folder (default /tmp/memobench/<spec>/"
                      "seed<seed>/memorization).")
  flags.DEFINE_integer("seed", None, "Seed (default: the spec's).")
  flags.DEFINE_multi_string("set", [], "Override a spec field: key=value.")
  flags.DEFINE_boolean("sequential", False, "Also train the same models one program per model "
                       "and report both wall times (a benchmark).")
  flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR).")


def entry():
  from absl import app, logging  # pylint: disable=import-outside-toplevel
  _define_flags()
  logging.set_verbosity(logging.WARNING)
  app.run(main)


if __name__ == "__main__":
  entry()
