"""The Feldman & Zhang 2020 subsample memorization estimator, as a command line.

The estimator, its definition and how its K models train (through the one
training loop, `training.loop.train_group`: ONE vmapped program of K members,
each batch sharded over the devices' 'data' axis) live in
memobench/estimators/subsample.py; this module runs it and writes its outputs.
In short, from K models each trained on a uniformly random subset S_k of the
training set S of size m = round(fraction * |S|) (fraction 0.7 in the paper):

  mem(i)    = mean_{k: i in S_k} [h_k(x_i) = y_i] - mean_{k: i not in S_k} [h_k(x_i) = y_i]
  mem_se(i) = sqrt(q_in (1 - q_in) / n_in + q_out (1 - q_out) / n_out), q = (k + 1/2) / (n + 1)
              (k correct of the n_in / n_out models that did / did not train on i;
              Jeffreys-shrunk proportions, so the se is finite and calibrated for
              unanimous and one-model groups; mem itself is the plain difference)
  heldout_accuracy(i) = mean_{k: i not in S_k} [h_k(x_i) = y_i], the held-out
              consistency score of Jiang et al. 2021 (the C-score) at subset
              ratio `fraction`.

y_i is the label trained on (the corrupted one where labels are corrupted).
At subset ratio 0.7, mem estimates memorization for data sets of 0.7 |S|
examples (Feldman & Zhang 2020, Sec. 2). Model k's key is
fold_in(fold_in(run key, prng.MEMORIZATION), k), so model k (its subset,
initialization and batches) is the same whatever K it runs beside, on any
number of devices.

  python -m memobench.memorization --spec=mnist5k_partial20 --models=64 --workdir=W

writes W/memorization.npz (per-example scores, the subset masks and the
correctness matrix), W/memorization.json (summary, with the ROC AUC of mem
at separating corrupted from clean training examples) and W/scores.parquet
(mem with mem_se, heldout_accuracy and in_accuracy per example, in the table
of memobench/example_table.py), all atomically.

--sequential (a benchmark) also trains the same models through train_group
with vmapped=False: one program per model (K compilations), one after another;
its timings are sequential_*, and sequential_matches_ensemble is the fraction
of training-set predictions on which the two agree. Every train_s / CPU-s is
time in training chunks (the evaluation excluded), compile_s every program's
compilation.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable

import jax
import numpy as np

from memobench import cli, specs
from memobench import workload as workload_lib
# The library, under the names this module has always had.
from memobench.estimators.subsample import (  # noqa: F401  pylint: disable=unused-import
    EnsembleConfig, estimator_workload, model_keys, subsample_memorization, summarize,
    train_models)

SCORES_FILE = "memorization.npz"
SUMMARY_FILE = "memorization.json"


def run(spec: specs.Spec, config: EnsembleConfig, workdir: str, *, sequential: bool = False,
        data_dir: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
  """Trains the ensemble of `spec`, writes the npz and the summary JSON; returns the summary."""
  from memobench import results  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  workload_lib.validate(spec)
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
  dataset = datasets.load(spec.dataset, data_dir)
  model_workload = estimator_workload(spec, config, dataset, data_dir)
  data = model_workload.corrupted_data(spec.seed)
  n, m = dataset.num_train, model_workload.subset_size
  steps = model_workload.schedule.total_steps
  keys = model_keys(spec.seed, config.models)
  log(f"{spec.name}: {config.models} models on random {m}/{n} subsets, "
      f"{config.epochs} epochs ({steps} steps) each, in one program on "
      f"{jax.device_count()} device(s)")
  out = train_models(model_workload, data, keys)
  log(f"ensemble: compile {out.compile_s:.1f}s, train {out.train_s:.1f}s "
      f"({out.train_cpu_s:.1f} CPU-s)")
  timing = {"ensemble_compile_s": out.compile_s, "ensemble_train_s": out.train_s,
            "ensemble_train_cpu_s": out.train_cpu_s}
  if sequential:
    seq = train_models(model_workload, data, keys, vmapped=False)
    log(f"sequential: compile {seq.compile_s:.1f}s, train {seq.train_s:.1f}s "
        f"({seq.train_cpu_s:.1f} CPU-s)")
    timing.update(sequential_compile_s=seq.compile_s, sequential_train_s=seq.train_s,
                  sequential_train_cpu_s=seq.train_cpu_s,
                  sequential_matches_ensemble=float(np.mean(
                      seq.train_predictions == out.train_predictions)))
  y_train, y_test = np.asarray(data.y_train), np.asarray(data.y_test)
  corrupted = np.asarray(data.label_changed)
  correct = out.train_predictions == y_train[None]
  test_correct = out.test_predictions == y_test[None]
  scores = subsample_memorization(correct, out.in_subset)
  summary = {
      "spec": {"name": spec.name, "hash": specs.spec_hash(spec), "seed": spec.seed,
               "resolved": dataclasses.asdict(spec)},
      "estimator": {"models": config.models, "subset_fraction": config.subset_fraction,
                    "subset_size": m, "epochs": config.epochs,
                    "steps_per_model": steps, "devices": jax.device_count(),
                    "label_noise_fraction": float(np.mean(corrupted))},
      "scores": summarize(scores, correct, out.in_subset, test_correct, corrupted),
      "timing": timing,
      "environment": results.environment(),
  }
  results.write_npz_atomic(os.path.join(workdir, SCORES_FILE), {
      **scores, "in_subset": out.in_subset, "correct": correct,
      "test_accuracy": test_correct.mean(0), "label_changed": corrupted})
  results.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary)
  _write_score_table(workdir, spec, config, dataset, data, scores, log)
  s = summary["scores"]
  auc = s["mem_auc"]
  log(f"mem: corrupted {_fmt(s['mem_mean']['corrupted'])}, clean {_fmt(s['mem_mean']['clean'])}"
      f", AUC {_fmt(auc)}; model test acc {s['model_test_accuracy_mean']:.4f} -> "
      f"{os.path.join(workdir, SUMMARY_FILE)}")
  return summary


def _write_score_table(workdir, spec, config, dataset, data, scores, log) -> None:
  """mem (with mem_se), held-out and in-subset accuracy as rows of W/scores.parquet."""
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  original = np.asarray(data.y_train_original)
  keys = example_table.example_key(dataset.x_train, original)
  setting = {"spec": spec.name, "spec_hash": specs.spec_hash(spec), "seed": spec.seed,
             "K": config.models, "subset_fraction": config.subset_fraction,
             "epochs": config.epochs}
  common = dict(keys=keys, original_labels=original, labels=np.asarray(data.y_train),
                label_changed=np.asarray(data.label_changed), dataset=spec.dataset.name,
                config=setting)
  table = example_table.concat([
      example_table.rows(estimator="subsample.mem", scores=scores["mem"],
                         standard_errors=scores["mem_se"], **common),
      example_table.rows(estimator="subsample.heldout_accuracy",
                         scores=scores["heldout_accuracy"], **common),
      example_table.rows(estimator="subsample.in_accuracy", scores=scores["in_accuracy"],
                         **common)])
  example_table.write_quietly(os.path.join(workdir, example_table.SCORES_FILE), table, log)


def _fmt(v) -> str:
  return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def main(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  from memobench import results  # pylint: disable=import-outside-toplevel
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  f = flags.FLAGS
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  try:
    spec = catalogue.get(f.spec)
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
  cli.fail("memobench.memorization", message, code)


def _define_flags() -> None:
  # Defined only when run as a program, so that importing this module (tests,
  # run.py) never collides with memobench.main's flags.
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("spec", "mnist5k_partial20", "Registered spec name.")
  flags.DEFINE_integer("models", 64, "Number of models K (at least 2).")
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
  app.run(main, flags_parser=cli.flags_parser("memobench.memorization"))


if __name__ == "__main__":
  entry()
