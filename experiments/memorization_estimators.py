"""Which memorization score is right? Every estimator scored against exact leave-one-out.

Command (default: digits, label noise partial40, the first 500 training
examples, MLP 1x512, SGD lr 0.1 momentum 0.9 x0.99/epoch, batch 64, 20 epochs;
probe set m = 200, S = 8 LOO seeds, subsample estimator up to K = 256):

    python experiments/memorization_estimators.py            # -> /tmp/memobench/experiments/memorization_estimators/digits
    python experiments/memorization_estimators.py --dataset=mnist1d
    python experiments/memorization_estimators.py --quick    # smoke test, seconds

Runtime: 4m28s wall (348 CPU-s) for the default on the idle 2-core machine
(2026-12-02, nothing cached), inside the 10-minute target: exact LOO (S = 8,
4 stages of 402 vmapped runs) 213 s, the subsample estimator (256 models) 31 s,
the one-run proxies 4 s in all, scoring and figures the rest (summary.json
`cost.<estimator>.seconds`, `wall_s` = 260 s inside the process). Every score
matched the first committed run (which took ~60 min under load 20-35). By
model-steps the default is 225,120 LOO + 25,600 subsample + ~1,000 other
steps of a 38k-parameter MLP; mnist1d (40-d inputs, batch 128, same
--train_size) needs ~0.6x the FLOPs of digits (an estimate from the shapes,
not measured).

Measured (digits_partial40, first 500 training examples, 20 epochs, probe
m = 200 = 100 corrupted + 100 clean, S = 8 LOO seeds):
  ground truth: mem_LOO mean 0.23 (corrupted) vs 0.14 (clean); loss_LOO
  2.17 vs 0.35; split-half reliability (Spearman-Brown, averaged over all 35
  balanced splits) 0.89 [0.85, 0.91] for mem_LOO, 0.996 for loss_LOO; mean se
  of mem_LOO 0.059. The full runs get 59% of the probe set right on its
  training labels (corrupted labels are only partly memorized at this
  budget), so many corrupted examples have mem_LOO = 0: neither run fits them.

  estimator            Spearman  Spearman  Pearson  AUC vs    top-10%  model-
                       mem_LOO   loss_LOO  mem_LOO  corrupt.  overlap  steps
  fz_subsample (K=256)  0.84      0.38      0.89     0.62      0.60    25,600
  turnover_loss         0.10      0.81      0.03     0.96      0.00       140
  turnover_accuracy     0.19      0.42      0.17     0.61      0.11       140
  first_learned         0.06      0.75     -0.07     0.95      0.00       140
  stable_learned        0.15      0.81      0.25     0.94      0.04       140
  cumulative_accuracy   0.10      0.85      0.08     0.99      0.00       140
  forgetting            0.12      0.78     -0.17     0.92      0.00       140
  final_loss            0.06      0.83     -0.13     0.96      0.00       140
  el2n (epoch 2, 4 runs) 0.12     0.82      0.19     0.99      0.00        56
  grand (epoch 2, 4 runs) 0.16    0.80      0.18     0.98      0.00        56
  tracin                0.15      0.89      0.06     0.98      0.00       140

  FZ convergence, Spearman with mem_LOO: K = 8: 0.75, 16: 0.76, 32: 0.82,
  64: 0.81, 128: 0.83, 256: 0.84 (mean 95% half-width 0.61, 0.36, 0.21,
  0.13, 0.084, 0.056). Stopping rule (half-width <= 0.1): K = 128 (0.83).
  (With S = 6 the same table read 0.83 for the subsample estimator and
  0.06-0.18 for the proxies: the ranking is stable in S.)

The claim tested (the issue's premise; Feldman & Zhang 2020 Sec. 3 and
Jiang et al. 2021): cheap one-run proxies disagree with the subsample
estimator. Agrees: only the subsample estimator ranks exact LOO memorization
(rho 0.84, near the ground truth's own reliability, 0.89); every one-run
proxy ranks the LOO *loss* change (rho 0.75-0.89; turnover_accuracy 0.42)
and finds the planted label noise (AUC 0.92-0.99) but hardly ranks mem_LOO
(rho 0.06-0.19), because they score every hard example high whether or not
the run memorizes it, while mem_LOO is 0 for a corrupted example that
neither run fits. The subsample estimator is the worst corruption detector
(AUC 0.62) for the same reason. The ground truth's reliability bounds every
correlation with mem_LOO.

Ground truth (estimators/leave_one_out.py): for each of S seeds, one run on the
training set and, per probe example i, a run without i that is otherwise
identical (same init and batch order, i's slot weighted 0 in the loss); all
through training.loop.train_group, (m + 1) x (seeds per group) vmapped members
per program. mem_LOO(i) = mean_s [correct_i(with) - correct_i(without)] and
the loss form loss_LOO(i) = mean_s [loss_i(without) - loss_i(with)]. Its
precision: split-half reliability over seeds, Spearman-Brown corrected.

Estimators, on the same probe set (higher = more memorized for each):
  fz_subsample      Feldman & Zhang 2020 subsample estimator (estimators/subsample.py),
                    K models on 70% subsets, the same epochs; fz_convergence: the
                    first K of the 256 models for K in 8..256
  turnover_loss, turnover_accuracy   turn-over dropout self-influence (rate 0.5, one run)
  first_learned, stable_learned       epoch first / stably predicted right (never: last+1)
  cumulative_accuracy                 1 - the fraction of evaluations predicted right
  forgetting                          Toneva et al.'s forgetting score (never learned: max)
  final_loss                          the final per-example loss (one run)
  el2n, grand                         Paul et al. 2021, at --early_epoch, mean over
                                      --proxy_seeds runs
  tracin                              TracInCP self-influence over the per-epoch checkpoints
The one-run scores come from the first of --proxy_seeds vmapped runs evaluated
every epoch; their seconds are that program's training time prorated by
model-steps (per model; for EL2N/GraNd the steps up to --early_epoch, times
the seeds), plus the score's own computation.

Each estimator: Spearman and Pearson correlation with both LOO forms (95%
intervals: bootstrap over probe examples), ROC AUC against the planted
corruption, and the overlap of its top 10% with the LOO top 10%.

Stopping rule for the subsample estimator: add models (doubling K) until the
mean over the probe set of the per-example 95% half-width 1.96 * mem_se
(Jeffreys se, estimators/subsample.py) is at most --halfwidth (0.1, a tenth of
the score's range); fz_stop_rule gives the K it picks and its Spearman.

Outputs in the workdir: correlations.png (heatmap), compute.png
(Spearman vs cost), summary.json, scores.parquet (every per-example score on
the probe set, memobench.example_table), stages/*.npz (each stage's
per-example arrays; a rerun skips the stages already there).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

import common
from common import plt

from memobench import example_table, leaderboard, prng, results, specs, workload as workload_lib
from memobench.data import datasets
from memobench.estimators import data_pruning_scores as dps
from memobench.estimators import leave_one_out as loo, subsample
from memobench.metrics import dynamics, stats, turnover
from memobench.training import loop

K_GRID = (8, 16, 32, 64, 128, 256)
ESTIMATORS = ("fz_subsample", "turnover_loss", "turnover_accuracy", "first_learned",
              "stable_learned", "cumulative_accuracy", "forgetting", "final_loss", "el2n",
              "grand", "tracin")


def parse_args():
  p = common.parser(__doc__, "memorization_estimators", "digits", seeds=8)
  p.add_argument("--corruption", default="partial40", help="label corruption (partialNN)")
  p.add_argument("--train_size", type=int, default=500, help="first N training examples")
  p.add_argument("--epochs", type=int, default=20, help="epochs of every model")
  p.add_argument("--probe", type=int, default=200, help="probe set size m")
  p.add_argument("--models", type=int, default=256, help="subsample estimator's largest K")
  p.add_argument("--proxy_seeds", type=int, default=4, help="runs averaged for EL2N/GraNd")
  p.add_argument("--early_epoch", type=int, default=None,
                 help="epoch of EL2N/GraNd (default: a tenth of --epochs, at least 1)")
  p.add_argument("--seeds_per_group", type=int, default=2,
                 help="LOO seeds per vmapped program ((m + 1) members each)")
  p.add_argument("--halfwidth", type=float, default=0.1, help="the stopping rule's target")
  p.add_argument("--seed", type=int, default=0, help="corruption and probe set seed")
  p.add_argument("--set", action="append", default=[], help="spec override key=value")
  p.add_argument("--stage", action="append", default=None,
                 help="run only these stages (loo_seedsA-B, subsample, proxies, turnover) and "
                      "exit, e.g. in parallel workers on one --workdir; a run without it "
                      "keeps what they saved")
  args = common.finish_args(p.parse_args())
  if args.shard is not None:
    common.fail("--shard: this experiment's stages are vmapped programs, not a grid of runs; "
                "run it on one worker", 2)
  if args.quick:
    args.train_size, args.epochs, args.probe, args.models = 128, 3, 6, 8
    args.proxy_seeds, args.seeds = 2, max(args.seeds, 2)
    args.seeds_per_group = args.seeds
  if args.early_epoch is None:
    args.early_epoch = max(1, args.epochs // 10)
  for name in ("train_size", "epochs", "probe", "models", "proxy_seeds", "seeds_per_group"):
    if getattr(args, name) < 1:
      common.fail(f"--{name} must be >= 1, got {getattr(args, name)}", 2)
  if args.seeds < 2:
    common.fail("--seeds must be >= 2 (the LOO standard error and reliability need two)", 2)
  if not 1 <= args.early_epoch <= args.epochs:
    common.fail(f"--early_epoch must be in [1, --epochs={args.epochs}]", 2)
  return args


# --------------------------------------------------------------------------
# Stages: each saves its per-example arrays; a rerun loads them
# --------------------------------------------------------------------------


# What every stage's arrays depend on; a stage adds its own (Stages.run's `depends`):
# a LOO group of seeds does not depend on how many seeds there are in all.
BASE_CONFIG = ("spec", "spec_hash", "epochs", "probe", "seed", "train_size")


class Stages:
  def __init__(self, args, config):
    self.folder = os.path.join(args.workdir, "stages")
    self.config = json.dumps(config, sort_keys=True)
    self.resume = not args.no_resume
    self.only = None if args.stage is None else set(args.stage)
    os.makedirs(self.folder, exist_ok=True)

  def run(self, name, compute, depends=()):
    """The stage's arrays: saved ones whose config agrees on BASE_CONFIG + `depends`, or new."""
    path = os.path.join(self.folder, name + ".npz")
    if self.only is not None and name not in self.only:
      return None
    if self.resume and os.path.exists(path):
      with np.load(path) as saved:
        theirs, ours = json.loads(str(saved["config"])), json.loads(self.config)
        if all(theirs.get(k) == ours.get(k) for k in BASE_CONFIG + tuple(depends)):
          print(f"stage {name}: kept existing result", file=sys.stderr)
          return {k: saved[k] for k in saved.files if k != "config"}
    t0 = time.perf_counter()
    arrays = compute()
    arrays["stage_s"] = np.float64(time.perf_counter() - t0)
    results.write_npz_atomic(path, {**arrays, "config": np.array(self.config)})
    print(f"stage {name}: {arrays['stage_s']:.0f} s", file=sys.stderr)
    return arrays


def loo_stage(workload, data, probe, keys, vmapped):
  return lambda: loo.train_seeds(workload, data, probe, keys, vmapped)


def subsample_stage(spec, args, dataset, data, vmapped):
  def compute():
    config = subsample.EnsembleConfig(models=args.models, epochs=args.epochs)
    workload = subsample.estimator_workload(spec, config, dataset)
    ensemble = subsample.train_models(workload, data, subsample.model_keys(args.seed, args.models),
                                      vmapped)
    y = np.asarray(data.y_train)
    return {"correct": ensemble.train_predictions == y[None], "in_subset": ensemble.in_subset,
            "steps_per_model": np.int64(workload.schedule.total_steps)}
  return compute


def proxy_stage(spec, args, dataset, data, probe, vmapped):
  """--proxy_seeds runs evaluated every epoch: dynamics, final loss, EL2N/GraNd, TracIn."""
  def compute():
    workload = loo.fixed_budget_workload(spec, args.epochs, dataset, evaluations=args.epochs)
    spe = workload.schedule.steps_per_epoch
    y = np.asarray(data.y_train)
    x_probe, y_probe = np.asarray(data.x_train)[probe], y[probe]
    score = dps.scorer(workload.module)
    base = jax_fold(args.seed)
    m = probe.size
    out = {"el2n": np.zeros((args.proxy_seeds, m)), "grand": np.zeros((args.proxy_seeds, m))}
    tracker = dynamics.LearningDynamics(y)
    tracin = dps.TracInSelfInfluence(m)
    timing = {"tracin_s": 0.0, "early_s": 0.0}
    members = []
    for k in range(args.proxy_seeds):
      def on_eval(ev, k=k):
        t0 = time.perf_counter()
        needs_early = round(ev.epoch) == args.early_epoch
        if k == 0 or needs_early:
          _, params, model_state = ev.model()
          s = score(params, model_state, x_probe, y_probe)
        if needs_early:
          out["el2n"][k], out["grand"][k] = s["el2n"], s["grand"]
          timing["early_s"] += time.perf_counter() - t0
        if k == 0:
          tracker.update(ev.step, ev.train_predictions)
          tracin.add(ev.learning_rate, s["grad_sq_norm"])
          out["final_loss_probe"] = s["loss"]  # the last evaluation's stays
          timing["tracin_s"] += time.perf_counter() - t0
      members.append(loop.Member(workload.spec, data, log=lambda _: None, on_eval=on_eval,
                                 key=jax_key(base, k)))
    outcomes = loop.train_group(workload, members, vmapped=vmapped and args.proxy_seeds > 1)
    arrays = {k: v for k, v in tracker.arrays().items()}
    return {**out, **{f"dyn_{k}": v[probe] for k, v in arrays.items()},
            "evaluations": np.int64(tracker.evaluations), "tracin": tracin.value,
            "tracin_checkpoints": np.int64(tracin.checkpoints),
            "train_s": np.float64(outcomes[0].train_s + outcomes[0].compile_s),
            "total_steps": np.int64(workload.schedule.total_steps),
            "early_steps": np.int64(args.early_epoch * spe),
            "tracin_s": np.float64(timing["tracin_s"]), "early_s": np.float64(timing["early_s"])}
  return compute


def jax_fold(seed):
  import jax  # pylint: disable=import-outside-toplevel
  return jax.random.fold_in(prng.run_key(seed), prng.PROXY_RUNS)


def jax_key(base, k):
  import jax  # pylint: disable=import-outside-toplevel
  return jax.random.fold_in(base, k)


def turnover_stage(spec, args, dataset, data, probe):
  def compute():
    rate = 0.5
    tspec = dataclasses.replace(spec, analysis=dataclasses.replace(spec.analysis,
                                                                   turnover_dropout=rate))
    workload = loo.fixed_budget_workload(tspec, args.epochs, dataset)
    key = jax_key(jax_fold(args.seed), 1000)
    member = loop.Member(workload.spec, data, log=lambda _: None, key=key)
    (outcome,) = loop.train_group(workload, [member], vmapped=False)
    t0 = time.perf_counter()
    arrays = turnover.self_influence(workload.module, outcome.state.params,
                                     outcome.state.model_state, data.x_train, data.y_train,
                                     turnover.turnover_key(key), rate)
    return {"loss": arrays["self_influence_loss"][probe],
            "accuracy": arrays["self_influence_accuracy"][probe],
            "train_s": np.float64(outcome.train_s + outcome.compile_s),
            "score_s": np.float64(time.perf_counter() - t0),
            "total_steps": np.int64(workload.schedule.total_steps)}
  return compute


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def estimator_scores(fz, proxy, turn, probe, args):
  """{estimator: (probe,) scores, higher = more memorized}; {estimator: (model_steps, seconds)}."""
  scores_fz = subsample.subsample_memorization(fz["correct"], fz["in_subset"])
  late = float(proxy["evaluations"] + 1)
  first = proxy["dyn_first_learned_step"].astype(np.float64)
  stable = proxy["dyn_stable_learned_step"].astype(np.float64)
  spe = float(proxy["total_steps"]) / args.epochs
  scores = {
      "fz_subsample": scores_fz["mem"][probe],
      "turnover_loss": turn["loss"], "turnover_accuracy": turn["accuracy"],
      "first_learned": np.where(first >= 0, first / spe, late),
      "stable_learned": np.where(stable >= 0, stable / spe, late),
      "cumulative_accuracy": 1.0 - proxy["dyn_correct_fraction"],
      "forgetting": proxy["dyn_forgetting_score"].astype(np.float64),
      "final_loss": proxy["final_loss_probe"],
      "el2n": proxy["el2n"].mean(0), "grand": proxy["grand"].mean(0), "tracin": proxy["tracin"],
  }
  k_steps = int(fz["steps_per_model"])
  proxy_model_s = float(proxy["train_s"]) / args.proxy_seeds  # per model, prorated
  one_run = (int(proxy["total_steps"]), proxy_model_s)
  early_frac = float(proxy["early_steps"]) / float(proxy["total_steps"])
  early = (args.proxy_seeds * int(proxy["early_steps"]),
           args.proxy_seeds * proxy_model_s * early_frac + float(proxy["early_s"]))
  turn_cost = (int(turn["total_steps"]), float(turn["train_s"]) + float(turn["score_s"]))
  cost = {
      "fz_subsample": (args.models * k_steps, float(fz["stage_s"])),
      "turnover_loss": turn_cost, "turnover_accuracy": turn_cost,
      "first_learned": one_run, "stable_learned": one_run, "cumulative_accuracy": one_run,
      "forgetting": one_run, "final_loss": one_run, "el2n": early, "grand": early,
      "tracin": (one_run[0], one_run[1] + float(proxy["tracin_s"])),
  }
  return scores, cost, scores_fz


def fz_convergence(fz, probe, truth, corrupted, args):
  out, stop = {}, None
  k_steps = int(fz["steps_per_model"])
  for k in [k for k in K_GRID if k <= args.models] or [args.models]:
    s = subsample.subsample_memorization(fz["correct"][:k], fz["in_subset"][:k])
    mem, se = s["mem"][probe], s["mem_se"][probe]
    c = loo.compare(mem, truth, corrupted, seed=args.seed)
    halfwidth = float(np.nanmean(1.96 * se))
    out[str(k)] = {"spearman": c["spearman_mem"], "spearman_loss": c["spearman_loss"],
                   "pearson": c["pearson_mem"], "auc_vs_corruption": c["auc_vs_corruption"],
                   "examples_scored": int(np.isfinite(mem).sum()),
                   "mean_halfwidth95": halfwidth, "model_steps": k * k_steps,
                   "seconds": float(fz["stage_s"]) * k / args.models}
    if stop is None and halfwidth <= args.halfwidth:
      stop = k
  rule = {"rule": f"smallest K of the doubling grid whose mean per-example 95% half-width "
                  f"1.96 * mem_se over the probe set is <= {args.halfwidth}",
          "K": stop, "spearman": out[str(stop)]["spearman"]["mean"] if stop else None}
  return out, rule


def stat_over(values):
  return leaderboard.summarize(np.asarray(values, np.float64).tolist())


# --------------------------------------------------------------------------
# Figures and the table
# --------------------------------------------------------------------------


def plot_heatmap(args, comparisons):
  cols = [("spearman_mem", "Spearman\nmem_LOO"), ("spearman_loss", "Spearman\nloss_LOO"),
          ("pearson_mem", "Pearson\nmem_LOO"), ("pearson_loss", "Pearson\nloss_LOO"),
          ("auc_vs_corruption", "AUC vs\ncorruption"), ("top10_overlap", "top-10%\noverlap")]
  names = list(comparisons)
  grid = np.full((len(names), len(cols)), np.nan)
  for r, name in enumerate(names):
    for c, (key, _) in enumerate(cols):
      v = comparisons[name][key]
      v = v["mean"] if isinstance(v, dict) else v
      grid[r, c] = np.nan if v is None else v
  fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(names) + 1.5))
  im = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
  for r in range(len(names)):
    for c in range(len(cols)):
      if np.isfinite(grid[r, c]):
        ax.text(c, r, f"{grid[r, c]:.2f}", ha="center", va="center", fontsize=8)
  ax.set_xticks(range(len(cols)), [c[1] for c in cols])
  ax.set_yticks(range(len(names)), names)
  ax.set_title(f"estimators vs exact leave-one-out ({args.dataset}, {args.corruption}, "
               f"m={args.probe}, S={args.seeds})")
  fig.colorbar(im, ax=ax, shrink=0.8)
  return common.savefig(fig, args, "correlations.png")


def plot_compute(args, comparisons, cost, convergence):
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  ks = list(convergence)
  xs = [convergence[k]["model_steps"] for k in ks]
  ys = [convergence[k]["spearman"]["mean"] for k in ks]
  ax.plot(xs, [np.nan if y is None else y for y in ys], "o-", color="k",
          label="FZ subsample, K = " + ", ".join(ks))
  for name, c in comparisons.items():
    if name == "fz_subsample" or c["spearman_mem"]["mean"] is None:
      continue
    ax.scatter(cost[name]["model_steps"], c["spearman_mem"]["mean"], label=name, s=25)
  ax.set_xscale("log")
  ax.set_xlabel("cost (model-steps)")
  ax.set_ylabel("Spearman with mem_LOO")
  ax.axhline(0, color="grey", lw=0.5)
  ax.legend(fontsize=7, loc="best")
  ax.set_title("correlation with the ground truth vs compute")
  return common.savefig(fig, args, "compute.png")


def write_table(args, spec, data, probe, scores, truth, fz_scores, config):
  x = np.asarray(data.x_train)[probe]
  original = np.asarray(data.y_train_original)[probe]
  keys = example_table.example_key(x, original)
  common_cols = dict(dataset=spec.dataset.name, keys=keys, original_labels=original,
                     labels=np.asarray(data.y_train)[probe],
                     label_changed=np.asarray(data.label_changed)[probe], indices=probe)
  tables = [example_table.rows(estimator="loo.mem", scores=truth["mem"],
                               standard_errors=truth["mem_se"], config=config, **common_cols),
            example_table.rows(estimator="loo.loss", scores=truth["loss"],
                               standard_errors=truth["loss_se"], config=config, **common_cols)]
  for name, values in scores.items():
    se = fz_scores["mem_se"][probe] if name == "fz_subsample" else None
    tables.append(example_table.rows(estimator=f"estimators.{name}", scores=values,
                                     standard_errors=se, config=config, **common_cols))
  path = os.path.join(args.workdir, "scores.parquet")
  try:
    example_table.write(path, example_table.concat(tables))
    print(f"per-example scores -> {path}", file=sys.stderr)
  except ImportError as e:
    print(f"scores.parquet not written ({e})", file=sys.stderr)


# --------------------------------------------------------------------------


def main():
  args = parse_args()
  t_start = time.perf_counter()
  name = f"{args.dataset}_{args.corruption}"
  spec, _ = common.get_spec(name, [f"dataset.train_size={args.train_size}",
                                   "analysis.dynamics=false", "analysis.effective_rank=false",
                                   *args.set])
  try:
    os.makedirs(args.workdir, exist_ok=True)
    dataset = datasets.load(spec.dataset, args.data_dir)
    data = workload_lib.resolve(spec, dataset=dataset).corrupted_data(args.seed)
    corrupted_all = np.asarray(data.label_changed)
    probe = loo.select_probe(corrupted_all, args.probe, args.seed)
    loo_workload = loo.fixed_budget_workload(spec, args.epochs, dataset)
  except (datasets.DataError, specs.SpecError) as e:
    common.fail(str(e), 1)
  except OSError as e:
    common.fail(f"cannot create workdir {args.workdir}: {e.strerror}", 1)
  corrupted = corrupted_all[probe]
  vmapped = args.vmap_seeds != "false"
  config = {"spec": name, "spec_hash": specs.spec_hash(spec), "epochs": args.epochs,
            "probe": args.probe, "seeds": args.seeds, "seed": args.seed,
            "models": args.models, "proxy_seeds": args.proxy_seeds,
            "early_epoch": args.early_epoch, "train_size": args.train_size}
  stages = Stages(args, config)
  print(f"{name}: {dataset.num_train} training examples, probe {probe.size} "
        f"({int(corrupted.sum())} corrupted), {args.seeds} LOO seeds x {probe.size + 1} runs, "
        f"{args.epochs} epochs -> {args.workdir}", file=sys.stderr)

  keys = loo.seed_keys(args.seed, args.seeds)
  groups = [list(range(g, min(g + args.seeds_per_group, args.seeds)))
            for g in range(0, args.seeds, args.seeds_per_group)]
  parts = [stages.run(f"loo_seeds{g[0] + 1}-{g[-1] + 1}",
                      loo_stage(loo_workload, data, probe, [keys[s] for s in g], vmapped))
           for g in groups]
  fz = stages.run("subsample", subsample_stage(spec, args, dataset, data, vmapped), ("models",))
  proxy = stages.run("proxies", proxy_stage(spec, args, dataset, data, probe, vmapped),
                     ("proxy_seeds", "early_epoch"))
  turn = stages.run("turnover", turnover_stage(spec, args, dataset, data, probe))
  if args.stage is not None:
    print(f"stages {', '.join(args.stage)} done", file=sys.stderr)
    return
  per_seed = {k: np.concatenate([p[k] for p in parts]) for k in
              ("correct_with", "correct_without", "loss_with", "loss_without")}
  truth = loo.memorization(**per_seed)
  loo_cost = (int(sum(int(p["model_steps"]) for p in parts)),
              float(sum(float(p["stage_s"]) for p in parts)))
  scores, cost, fz_scores = estimator_scores(fz, proxy, turn, probe, args)

  comparisons = {e: loo.compare(scores[e], truth, corrupted, seed=args.seed) for e in ESTIMATORS}
  convergence, stop_rule = fz_convergence(fz, probe, truth, corrupted, args)
  cost_json = {e: {"model_steps": cost[e][0], "seconds": cost[e][1]} for e in ESTIMATORS}
  cost_json["loo"] = {"model_steps": loo_cost[0], "seconds": loo_cost[1]}
  reliability = loo.split_half_reliability(
      np.asarray(per_seed["correct_with"], float) - np.asarray(per_seed["correct_without"],
                                                               float), seed=args.seed)
  reliability_loss = loo.split_half_reliability(
      per_seed["loss_without"] - per_seed["loss_with"], seed=args.seed)
  summary = {
      "config": {**config, "dataset": args.dataset, "corruption": args.corruption,
                 "model": spec.model.name, "batch_size": spec.budget.batch_size,
                 "quick": args.quick, "probe_corrupted": int(corrupted.sum())},
      "loo": {
          "reliability": reliability, "reliability_loss": reliability_loss,
          "mean_by_group": {"clean": stat_over(truth["mem"][~corrupted]),
                            "corrupted": stat_over(truth["mem"][corrupted])},
          "loss_mean_by_group": {"clean": stat_over(truth["loss"][~corrupted]),
                                 "corrupted": stat_over(truth["loss"][corrupted])},
          "mean_se": float(np.mean(truth["mem_se"])),
          "auc_vs_corruption": {"mem": stats.roc_auc(truth["mem"], corrupted),
                                "loss": stats.roc_auc(truth["loss"], corrupted)},
          "full_run_probe_accuracy": stat_over(per_seed["correct_with"].mean(1)),
      },
      "spearman_vs_loo": {e: comparisons[e]["spearman_mem"] for e in ESTIMATORS},
      "spearman_vs_loss_loo": {e: comparisons[e]["spearman_loss"] for e in ESTIMATORS},
      "pearson_vs_loo": {e: comparisons[e]["pearson_mem"] for e in ESTIMATORS},
      "pearson_vs_loss_loo": {e: comparisons[e]["pearson_loss"] for e in ESTIMATORS},
      "auc_vs_corruption": {e: comparisons[e]["auc_vs_corruption"] for e in ESTIMATORS},
      "top10_overlap": {e: comparisons[e]["top10_overlap"] for e in ESTIMATORS},
      "cost": cost_json,
      "fz_convergence": convergence, "fz_stop_rule": stop_rule,
      "wall_s": time.perf_counter() - t_start,
  }
  results.write_json_atomic(os.path.join(args.workdir, "summary.json"),
                            results.finite_or_none(summary))
  plot_heatmap(args, comparisons)
  plot_compute(args, comparisons, cost_json, convergence)
  write_table(args, spec, data, probe, scores, truth, fz_scores, config)
  print(format_table(summary), file=sys.stdout)


def format_table(summary):
  lines = ["estimator            spearman(mem) spearman(loss) pearson(mem)  AUC   top10  "
           "model-steps  seconds"]
  fmt = lambda v: "  n/a" if v is None else f"{v:5.2f}"  # noqa: E731
  for e in ESTIMATORS:
    c = summary["cost"][e]
    lines.append(f"{e:20s} {fmt(summary['spearman_vs_loo'][e]['mean']):>13} "
                 f"{fmt(summary['spearman_vs_loss_loo'][e]['mean']):>14} "
                 f"{fmt(summary['pearson_vs_loo'][e]['mean']):>12} "
                 f"{fmt(summary['auc_vs_corruption'][e])} {fmt(summary['top10_overlap'][e])} "
                 f"{c['model_steps']:11d} {c['seconds']:8.1f}")
  rel = summary["loo"]["reliability"]["mean"]
  lines.append(f"LOO reliability (Spearman-Brown split-half): {fmt(rel)}; "
               "FZ convergence: " + ", ".join(
                   f"K={k}: {fmt(v['spearman']['mean'])}"
                   for k, v in summary["fz_convergence"].items()))
  return "\n".join(lines)


if __name__ == "__main__":
  main()
