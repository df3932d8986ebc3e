"""Memorization estimators from one population of models, as a command line.

  python -m memobench.memorization --spec=mnist5k_partial20 --models=64 --workdir=W
  python -m memobench.memorization --spec=digits_partial40 --design=balanced --models=32 -W
  python -m memobench.memorization --outputs=FILE.npz [--spec=SPEC] --workdir=W

Trains K models on known subsets of the training set (estimators/population.py:
through the one training loop, one vmapped program of K members) and scores
every estimator of the table (estimators/__init__.py) from their outputs:
Feldman & Zhang's subsample memorization and their influence on test
examples, the C-score, LiRA online and offline, confident learning. The
Feldman & Zhang 2020 subsample estimator (estimators/subsample.py), from K
models each trained on a subset S_k of the training set S (fraction p = 0.7 in
the paper):

  mem(i)    = mean_{k: i in S_k} [h_k(x_i) = y_i] - mean_{k: i not in S_k} [h_k(x_i) = y_i]
  mem_se(i) = sqrt(q_in (1 - q_in) / n_in + q_out (1 - q_out) / n_out), q = (k + 1/2) / (n + 1)
              (k correct of the n_in / n_out models that did / did not train on i;
              Jeffreys-shrunk proportions, so the se is finite and calibrated for
              unanimous and one-model groups; mem itself is the plain difference)
  heldout_accuracy(i) = mean_{k: i not in S_k} [h_k(x_i) = y_i], the held-out
              consistency score of Jiang et al. 2021 (the C-score) at subset
              ratio p.

y_i is the label trained on (the corrupted one where labels are corrupted).
At subset ratio 0.7, mem estimates memorization for data sets of 0.7 |S|
examples (Feldman & Zhang 2020, Sec. 2). --design=independent (the default,
as this command has always run): each model's subset is uniformly random of
size round(p |S|), trained on its own batches; --design=balanced: every
example is held out of exactly round((1 - p) K) models (LiRA's construction,
in blocks of --block), each model trained on the whole batch order with its
held-out examples weighted 0. Model k's key is fold_in(fold_in(run key,
prng.MEMORIZATION), k), so model k is the same whatever K it runs beside.

Growing K: a population saved in the workdir (population.npz) with the same
spec, seed, design and budget is reused; only the models it lacks train.
--outputs scores models trained elsewhere (estimators/external.py) and trains
nothing.

Writes, atomically: W/population.npz (the inclusion matrix and each model's
correctness, correct-class logit margin and softmax in float16, its fit
record), W/memorization.npz (mem, mem_se, held-out and in-subset accuracy,
the subset masks and the correctness matrix), W/estimators.npz (every
estimator's score and se), W/memorization.json (summary: the subsample
estimator's scores with the ROC AUC of mem at separating corrupted from clean
training examples; `population`: the design and each model's fit to its own
training set, censored models flagged; `estimators`: each one's means,
AUC and summary, and the ones skipped with why) and W/scores.parquet (every
score per example, memobench/example_table.py).

--models is refused up front when the models' estimated memory exceeds half
the device's (population.check_memory). --sequential (a benchmark, independent
design) also trains the same models with vmapped=False: one program per model
(K compilations); its timings are sequential_*, and sequential_matches_ensemble
is the fraction of (model, training example) pairs whose correctness agrees.
Every train_s / CPU-s is time in training chunks (the evaluation excluded),
compile_s every program's compilation.
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
from memobench import estimators
from memobench.estimators import base, external, population, runner
# The library, under the names this module has always had.
from memobench.estimators.subsample import (  # noqa: F401  pylint: disable=unused-import
    EnsembleConfig, estimator_workload, model_keys, subsample_memorization, summarize,
    train_models)
from memobench.metrics import stats

SCORES_FILE = "memorization.npz"
SUMMARY_FILE = "memorization.json"
ESTIMATORS_FILE = "estimators.npz"


def population_config(config: EnsembleConfig | population.PopulationConfig
                      ) -> population.PopulationConfig:
  """An EnsembleConfig (the independent draws) as a PopulationConfig; a PopulationConfig as is."""
  if isinstance(config, population.PopulationConfig):
    return config
  return population.PopulationConfig(models=config.models,
                                     subset_fraction=config.subset_fraction,
                                     epochs=config.epochs, design="independent")


def _make_workdir(workdir: str) -> None:
  from memobench import results  # pylint: disable=import-outside-toplevel
  if results.is_remote(workdir):  # gs:// workdirs are written by whole-object uploads
    return
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise results.WorkdirError(f"cannot create workdir {workdir}: {e.strerror}") from None
  if not os.access(workdir, os.W_OK):
    raise results.WorkdirError(f"workdir {workdir} is not writable")


def run(spec: specs.Spec, config: EnsembleConfig | population.PopulationConfig, workdir: str, *,
        sequential: bool = False, data_dir: str | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
  """Trains (or grows) the population of `spec`, scores every estimator, writes the outputs.

  An EnsembleConfig is the independent design, trained as this command always
  has. A population saved in `workdir` with the same models is grown: only
  the models it lacks are trained.
  """
  from memobench import results  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  workload_lib.validate(spec)
  pconfig = population_config(config).check()
  if sequential and pconfig.design != "independent":
    raise specs.SpecError("--sequential times the independent design's ensemble; "
                          "drop --design=balanced")
  _make_workdir(workdir)
  dataset = datasets.load(spec.dataset, data_dir)
  model_workload = population.population_workload(spec, pconfig, dataset)
  data = model_workload.corrupted_data(spec.seed)
  n = dataset.num_train
  saved = population.load(os.path.join(workdir, population.FILE))
  log(f"{spec.name}: {pconfig.models} models, {pconfig.design} design (p = "
      f"{pconfig.subset_fraction}), {pconfig.epochs} epochs "
      f"({model_workload.schedule.total_steps} steps) each, on {jax.device_count()} device(s)")
  pop = population.train(spec, pconfig, dataset, data, spec.seed, saved, log)
  population.save(os.path.join(workdir, population.FILE), pop)
  log(f"population: compile {pop.compile_s:.1f}s, train {pop.train_s:.1f}s "
      f"({pop.train_cpu_s:.1f} CPU-s) for {pop.trained} model(s)")
  timing = {"ensemble_compile_s": pop.compile_s, "ensemble_train_s": pop.train_s,
            "ensemble_train_cpu_s": pop.train_cpu_s}
  a = pop.arrays
  correct, inside, test_correct = a["correct"], a["inclusion"], a["test_correct"]
  if sequential:
    seq = train_models(model_workload, data, model_keys(spec.seed, pconfig.models),
                       vmapped=False)
    log(f"sequential: compile {seq.compile_s:.1f}s, train {seq.train_s:.1f}s "
        f"({seq.train_cpu_s:.1f} CPU-s)")
    timing.update(sequential_compile_s=seq.compile_s, sequential_train_s=seq.train_s,
                  sequential_train_cpu_s=seq.train_cpu_s,
                  sequential_matches_ensemble=float(np.mean(
                      (seq.train_predictions == np.asarray(data.y_train)[None]) == correct)))
  corrupted = np.asarray(data.label_changed)
  scores = subsample_memorization(correct, inside)
  scored = runner.score_population(pop.outputs(), estimators.TABLE, log)
  summary = {
      "spec": {"name": spec.name, "hash": specs.spec_hash(spec), "seed": spec.seed,
               "resolved": dataclasses.asdict(spec)},
      "estimator": {"models": pconfig.models, "subset_fraction": pconfig.subset_fraction,
                    "subset_size": (int(round(pconfig.subset_fraction * n))
                                    if pconfig.design == "independent" else None),
                    "epochs": pconfig.epochs, "steps_per_model": int(a["steps_per_model"]),
                    "devices": jax.device_count(),
                    "label_noise_fraction": float(np.mean(corrupted))},
      "scores": summarize(scores, correct, inside, test_correct, corrupted),
      "population": {**dataclasses.asdict(pconfig), "models_trained": pop.trained,
                     "models_reused": pconfig.models - pop.trained,
                     "held_out_per_example": _range((~inside).sum(0)),
                     "subset_size_per_model": _range(inside.sum(1)),
                     "fit": pop.fit_summary()},
      "estimators": estimator_summary(scored, corrupted),
      "timing": timing,
      "environment": results.environment(),
  }
  results.write_npz_atomic(os.path.join(workdir, SCORES_FILE), {
      **scores, "in_subset": inside, "correct": correct,
      "test_accuracy": test_correct.mean(0), "label_changed": corrupted})
  results.write_npz_atomic(os.path.join(workdir, ESTIMATORS_FILE), estimator_arrays(scored))
  results.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary)
  _write_score_table(workdir, spec, pconfig, dataset, data, scores, log, scored)
  s = summary["scores"]
  log(f"mem: corrupted {_fmt(s['mem_mean']['corrupted'])}, clean {_fmt(s['mem_mean']['clean'])}"
      f", AUC {_fmt(s['mem_auc'])}; model test acc {s['model_test_accuracy_mean']:.4f}; "
      f"{summary['population']['fit']['fitted_models']}/{pconfig.models} models fit their "
      f"training sets -> {os.path.join(workdir, SUMMARY_FILE)}")
  return summary


def _range(values: np.ndarray) -> dict[str, float]:
  return {"min": int(np.min(values)), "max": int(np.max(values)), "mean": float(np.mean(values))}


def estimator_summary(scored: runner.Scored, corrupted: np.ndarray) -> dict[str, Any]:
  """Per estimator: its split means, se mean, AUC against the corruption (oriented), summary."""
  out: dict[str, Any] = {}
  for name, s in scored.scores.items():
    sign = estimators.get(name).sign
    finite = np.isfinite(s.score)
    out[name] = {"mean": stats.split_summary(s.score, corrupted),
                 "se_mean": stats.split_summary(s.se, corrupted),
                 "auc_vs_corruption": stats.roc_auc(sign * s.score[finite], corrupted[finite]),
                 "sign": sign, "seconds": scored.seconds[name],
                 **{k: v for k, v in s.summary.items() if k != "test_example_of_max"}}
  out["skipped"] = dict(scored.skipped)
  return out


def estimator_arrays(scored: runner.Scored) -> dict[str, np.ndarray]:
  arrays = {}
  for name, s in scored.scores.items():
    arrays[name], arrays[f"{name}_se"] = s.score, s.se
  return arrays


def _write_score_table(workdir, spec, config, dataset, data, scores, log,
                       scored: runner.Scored | None = None) -> None:
  """mem (with mem_se), held-out and in-subset accuracy, and every estimator, in W/scores.parquet."""
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  config = population_config(config)
  original = np.asarray(data.y_train_original)
  setting = {"spec": spec.name, "spec_hash": specs.spec_hash(spec), "seed": spec.seed,
             "K": config.models, "subset_fraction": config.subset_fraction,
             "epochs": config.epochs}
  if config.design != "independent":  # the independent design's rows keep their config
    setting.update(design=config.design, block=config.block)
  common = dict(**example_table.dataset_columns(dataset, original), original_labels=original,
                labels=np.asarray(data.y_train), label_changed=np.asarray(data.label_changed),
                dataset=spec.dataset.name, config=setting)
  table = example_table.concat([
      example_table.rows(estimator="subsample.mem", scores=scores["mem"],
                         standard_errors=scores["mem_se"], **common),
      example_table.rows(estimator="subsample.heldout_accuracy",
                         scores=scores["heldout_accuracy"], **common),
      example_table.rows(estimator="subsample.in_accuracy", scores=scores["in_accuracy"],
                         **common),
      runner.table_rows({} if scored is None else scored.scores, prefix="estimators.",
                        dataset=spec.dataset.name, config=setting,
                        columns={k: v for k, v in common.items()
                                 if k not in ("dataset", "config")})])
  example_table.write_quietly(os.path.join(workdir, example_table.SCORES_FILE), table, log)


def run_external(path: str, workdir: str, spec: specs.Spec | None = None,
                 data_dir: str | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
  """Scores the outputs of models trained elsewhere (estimators/external.py) into `workdir`."""
  from memobench import example_table, results  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  outputs, extras = external.load(path, log)
  _make_workdir(workdir)
  n = outputs.examples
  columns: dict[str, Any] = {"keys": [""] * n}
  original = extras["original_labels"]
  if spec is not None:
    dataset = datasets.load(spec.dataset, data_dir)
    if dataset.num_train != n:
      raise specs.SpecError(f"{path} has {n} training examples, {spec.name}'s dataset "
                            f"{dataset.num_train}")
    original = np.asarray(dataset.y_train)
    columns = example_table.dataset_columns(dataset, original)
  corrupted = outputs.labels != original
  scored = runner.score_population(outputs, estimators.TABLE, log)
  summary = {"source": {"outputs": os.path.abspath(path), "models": outputs.models,
                        "examples": n, "spec": None if spec is None else spec.name,
                        "spec_hash": None if spec is None else specs.spec_hash(spec)},
             "estimators": estimator_summary(scored, corrupted),
             "environment": results.environment()}
  results.write_npz_atomic(os.path.join(workdir, ESTIMATORS_FILE), estimator_arrays(scored))
  results.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary)
  table = runner.table_rows(
      scored.scores, prefix="estimators.",
      dataset="external" if spec is None else spec.dataset.name,
      columns={**columns, "original_labels": original, "labels": outputs.labels,
               "label_changed": corrupted},
      config={"outputs": os.path.basename(path), "K": outputs.models,
              **({} if spec is None else {"spec": spec.name, "spec_hash": specs.spec_hash(spec)})})
  example_table.write_quietly(os.path.join(workdir, example_table.SCORES_FILE), table, log)
  log(f"{len(scored.scores)} estimators scored from {outputs.models} models' outputs -> "
      f"{os.path.join(workdir, SUMMARY_FILE)}")
  return summary


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
      specs.check_seeds(f.seed, 1, "--seed")
      spec = dataclasses.replace(spec, seed=f.seed)
  except specs.SpecError as e:
    _fail(str(e), 2)
  workdir = f.workdir or os.path.join("/tmp/memobench", spec.name, f"seed{spec.seed}",
                                      "memorization")
  config = population.PopulationConfig(
      models=f.models, subset_fraction=f.subset_fraction, epochs=f.epochs, design=f.design,
      block=f.block, evaluations=f.evaluations, group=f.group)
  try:
    if f.outputs:
      given = any(f[name].present for name in ("spec", "set", "seed"))
      run_external(f.outputs, workdir, spec if given else None, data_dir=f.data_dir)
    else:
      run(spec, config, workdir, sequential=f.sequential, data_dir=f.data_dir)
  except (specs.SpecError, base.EstimatorError) as e:
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
  flags.DEFINE_enum("design", "independent", list(population.DESIGNS),
                    "Inclusion design: independent (each model a random subset of exactly "
                    "p N examples, as always) or balanced (every example held out of exactly "
                    "round((1 - p) K) models, LiRA's construction).")
  flags.DEFINE_integer("block", 16, "The balanced design's block of models (it nests in blocks).")
  flags.DEFINE_integer("group", 0, "Models per vmapped program (0: all in one).")
  flags.DEFINE_integer("evaluations", 1, "Evaluations over each model's budget (its fit record).")
  flags.DEFINE_string("outputs", None, "Score the outputs of models trained elsewhere (an .npz: "
                      "inclusion, labels, logits or margin/probs/correct; "
                      "memobench/estimators/external.py) instead of training; --spec keys the "
                      "rows by that spec's dataset.")


def entry():
  from absl import app, logging  # pylint: disable=import-outside-toplevel
  _define_flags()
  logging.set_verbosity(logging.WARNING)
  app.run(main, flags_parser=cli.flags_parser("memobench.memorization"))


if __name__ == "__main__":
  entry()
