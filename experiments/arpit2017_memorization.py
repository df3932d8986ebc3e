"""Arpit et al. 2017: easy examples, loss sensitivity, noise and capacity, CSR over training.

Command:

    python experiments/arpit2017_memorization.py              # mnist5k, 3 seeds
    python experiments/arpit2017_memorization.py --quick      # smoke test: digits, few steps

Runtime: 11m00s wall (940 CPU-s) for the default (26 cells x 3 seeds, then 9
groups of 20 one-epoch runs) on the idle 2-core machine (2026-12-02); every
cell the first committed run (~60 min under load 15-30) also had gave the same
numbers. --quick: 2 runs + 2 groups of 4, 19 s wall alone.

"A closer look at memorization in deep networks" (Arpit et al., ICML 2017);
its regularizer experiments are experiments/arpit2017_regularizers.py.
The paper's findings, in its terms, and what this script measures for each:

1. Easy examples (their Fig. 1): real data has "easy examples": after one
   epoch some examples are classified right by almost every run (seed), while
   on random data (randY: random labels; randX: random inputs) no example is
   consistently easy. Measured: each training example's misclassification rate
   after ONE epoch over --easy_runs runs that share one fixed dataset and
   differ in initialization and batch order (vmapped in one program); the
   figure is the sorted per-example rate; the cells are the fraction of
   examples never misclassified and misclassified in at most 10% of runs, per
   dataset replicate (the replicate's data seed; 3 replicates).
2. Loss sensitivity (their Sec. 3.2): g_x averaged over training is spread
   more unequally over the examples of real data than of random data: a higher
   Gini coefficient on real data. memobench's g_x is ||d CE(f(x), y) / d x||_1 of
   the example's own loss (metrics/loss_sensitivity.py; the paper differentiates
   a later loss through unrolled SGD steps), averaged over the run's
   evaluations. Per class: the mean g-bar_x of each class; the paper's per-class
   loss sensitivity is a class-by-class matrix (loss of class i against inputs
   of class j, through the unrolled steps), which this does not compute.
3. Noise and capacity: validation accuracy falls as a larger
   fraction of the training set is noise, random labels (partial{p}) or random
   inputs (randinput{p}: the input replaced by Gaussian noise, label kept), and
   with noise more capacity (hidden units) is needed for the best validation
   accuracy. memobench's validation set is the dataset's test split. Reported:
   the accuracy after the budget (`val_accuracy`) and the best over the run's
   evaluations (`best_val_accuracy`, what early stopping would keep).
4. Critical sample ratio over training: CSR stays low on real data and grows
   as noise is memorized (more critical samples, a more complex decision
   boundary, on random-label and random-input data).
   analysis.csr_every_eval on the first --csr_samples training inputs.

Measured (mnist5k, MLP 1x512, SGD lr 0.1 x0.95/epoch, batch 128, at most 20
epochs, a run stops at 0.99 training accuracy; 3 seeds, mean; 2026-12-02):

1. Easy examples (20 runs per replicate): examples never misclassified after
   one epoch: real 0.662, random labels 0.000, random inputs 0.000; misclassified
   in at most 10% of runs: 0.799 / 0.002 / 0.000. Agrees with the paper.
2. Loss-sensitivity Gini of g-bar_x: real 0.749, random labels 0.143, random
   inputs 0.161 (final parameters: 0.822 / 0.307 / 0.323). Agrees: higher on real
   data (with memobench's own-loss g_x, not the paper's unrolled one).
3. Validation accuracy after the budget / best over training, vs the fraction
   of random labels 0, .2, .4, .6, .8, 1: 0.938/0.938, 0.892/0.928,
   0.780/0.902, 0.617/0.851, 0.364/0.729, 0.110/0.132; vs random inputs:
   0.938, 0.930/0.932, 0.921, 0.915, 0.876, 0.088/0.107. Agrees: accuracy
   falls with noise, far more slowly for random inputs (whose noise examples
   carry no misleading label) than for random labels.
   Capacity (best over training / after the budget; one hidden layer of
   32, 128, 512, 1024, 2048, 4096 units):
     clean              0.930, 0.938, 0.938, 0.937, 0.936, 0.936
     60% random labels  0.836, 0.848, 0.851, 0.856, 0.849, 0.845
                        (after the budget 0.693, 0.640, 0.617, 0.596, 0.603, 0.608)
     60% random inputs  0.889, 0.902, 0.915, 0.914, 0.913, 0.915
   Partly agrees: clean data saturates by 128 units, while with noise the
   best accuracy keeps rising to 512 (random inputs) and 1024 (random labels)
   units, so noise needs more capacity for its best; but the gains are a
   point or less, they flatten or dip beyond (2048, 4096), and after the
   budget the 60%-label runs are best at width 32 (it memorizes less of the
   noise in 20 epochs). The widths 1024-4096 were added on an idle machine
   (chosen before that run).
4. CSR (100 training inputs): real data 0.007 after one epoch, then 0.000;
   random labels 0.06-0.09 throughout its 20 epochs (final 0.067); random
   inputs 0.077 after one epoch, 0.003 once fit (6 epochs). Partly agrees:
   random labels keep more critical samples than real data; random inputs
   (memorized fastest) do not stay high once fit, and no CSR rise with
   memorization is seen at this budget and sample size.

The settings are --set overrides on registered specs, so the leaderboard
lists these runs unranked.

Outputs in the workdir: easy_examples.png, loss_sensitivity.png,
noise_capacity.png, csr.png, summary.json, leaderboard.json/.html,
easy_examples.npz (the per-example rates), runs/<cell>/seed<N>/.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np

import common

from memobench import leaderboard, results, runtime, specs, workload
from memobench.data import datasets
from memobench.training import loop

FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# memobench's corruption names for (kind, fraction): labels resampled with prob. p,
# inputs replaced by Gaussian noise with prob. p; 0 is clean, 1 randlabels / gaussian.
NOISE_KINDS = ("labels", "inputs")
WIDTHS = (32, 128, 512, 1024, 2048, 4096)
CAPACITY_DATA = (("clean", 0.0), ("labels", 0.6), ("inputs", 0.6))
EASY_DATA = (("real", "clean"), ("random_labels", "randlabels"), ("random_inputs", "gaussian"))
ENDPOINTS = (("real", "clean"), ("random", "randlabels"), ("random_inputs", "gaussian"))


def corruption_name(kind: str, fraction: float) -> str:
  if fraction == 0.0:
    return "clean"
  if fraction == 1.0:
    return "randlabels" if kind == "labels" else "gaussian"
  return f"{'partial' if kind == 'labels' else 'randinput'}{round(fraction * 100)}"


def cells(args) -> list[common.Cell]:
  budget = (common.QUICK_SET if args.quick else
            (f"budget.max_epochs={args.epochs}", "analysis.effective_rank=false",
             "analysis.dynamics=false"))
  analysis = ("analysis.loss_sensitivity=true", f"analysis.csr_samples={args.csr_samples}",
              "analysis.csr_split=train", "analysis.csr_every_eval=true")
  names = sorted({corruption_name(k, f) for k in NOISE_KINDS for f in args.fractions[k]})
  out = []
  for name in names:
    spec, _ = common.get_spec(f"{args.dataset}_{name}")
    extra = analysis if name in dict((c, 1) for _, c in ENDPOINTS) else ()
    out.append(common.Cell(f"noise_{name}", spec, (*budget, *extra)))
  for kind, fraction in args.capacity_data:
    name = corruption_name(kind, fraction)
    spec, _ = common.get_spec(f"{args.dataset}_{name}")
    for width in args.widths:
      if width == 512 and f"noise_{name}" in {c.key for c in out}:
        continue  # the default model (one hidden layer of 512) is that noise cell
      out.append(common.Cell(f"width{width}_{name}", spec,
                             (*budget, "model.name=mlp", "model.depth=1",
                              f"model.width={width}")))
  return out


def cell_key(args, name: str, width: int | None = None) -> str:
  if width is None or (width == 512 and f"noise_{name}" in args.noise_keys):
    return f"noise_{name}"
  return f"width{width}_{name}"


def best_test_accuracy(args, key: str, seeds: int) -> list[float | None]:
  out = []
  for seed in range(seeds):
    c = common.curve(args, key, seed)
    acc = None if c is None else [a for a in c.get("test_accuracy", []) if a is not None]
    out.append(max(acc) if acc else None)
  return out


def memorization(runs, section: str, field: str) -> list:
  return [((r or {}).get("memorization") or {}).get(section, {}).get(field) for r in runs]


# --- easy examples: one fixed dataset, many runs, one epoch (the loop, vmapped) ---

def easy_examples(args) -> dict[str, np.ndarray]:
  """{data kind: (replicates, examples) misclassification rate after one epoch}.

  The runs of a replicate differ only in their initialization and batch order
  (their loop keys); they share the replicate's corrupted data (data seed =
  replicate). Resumable: the rates are saved to easy_examples.npz.
  """
  path = os.path.join(args.workdir, "easy_examples.npz")
  config = json.dumps({"dataset": args.dataset, "runs": args.easy_runs,
                       "replicates": args.seeds, "quick": args.quick})
  if os.path.exists(path) and not args.no_resume:
    with np.load(path) as saved:
      if str(saved["config"]) == config:
        return {k: saved[k] for k, _ in EASY_DATA if k in saved}
  rates = {}
  for kind, corruption in EASY_DATA[:2] if args.quick else EASY_DATA:
    spec, _ = common.get_spec(f"{args.dataset}_{corruption}", (
        "budget.max_epochs=1", "analysis.effective_rank=false", "analysis.dynamics=false"))
    try:
      w = workload.resolve(spec, args.data_dir, stops_on_fit=False)
    except (datasets.DataError, specs.SpecError) as e:
      common.fail(str(e), 1)
    per_replicate = []
    for replicate in range(args.seeds):
      data = w.corrupted_data(replicate)
      members = [loop.Member(dataclasses.replace(spec, seed=replicate * 1000 + j), data,
                             log=lambda _: None) for j in range(args.easy_runs)]
      outs = loop.train_group(w, members, vmapped=True)
      y = np.asarray(data.y_train)
      wrong = np.stack([np.asarray(o.final.train_predictions) != y for o in outs])
      per_replicate.append(wrong.mean(0))
      print(f"easy examples: {kind} replicate {replicate}: mean misclassification "
            f"{wrong.mean():.3f}", file=sys.stderr)
    rates[kind] = np.stack(per_replicate)
  results.write_npz_atomic(path, {**rates, "config": np.asarray(config)})
  return rates


def easy_summary(rates: dict[str, np.ndarray]) -> dict:
  out = {}
  for kind, r in rates.items():
    out[kind] = {
        "never_misclassified": leaderboard.summarize((row == 0).mean() for row in r),
        "misclassified_at_most_10pct": leaderboard.summarize((row <= 0.1).mean() for row in r),
        "always_misclassified": leaderboard.summarize((row == 1).mean() for row in r),
        "mean_misclassification": leaderboard.summarize(row.mean() for row in r),
    }
  return out


# --- figures ---

def plot_easy(args, rates):
  fig, ax = common.plt.subplots(figsize=(5, 3.6))
  for (kind, _), color in zip(EASY_DATA, ("C0", "C3", "C1")):
    if kind in rates:
      for i, row in enumerate(rates[kind]):
        ax.plot(np.linspace(0, 1, len(row)), np.sort(row), color=color, lw=1,
                alpha=1 if i == 0 else 0.4, label=kind.replace("_", " ") if i == 0 else None)
  ax.set(xlabel="examples, sorted (fraction)", ylim=(-0.02, 1.02),
         ylabel=f"misclassification rate after 1 epoch\n(over {args.easy_runs} runs)",
         title=f"easy examples ({args.dataset}; one line per replicate)")
  ax.legend(fontsize=8)
  common.savefig(fig, args, "easy_examples.png")


def plot_sensitivity(args, grouped):
  fig, axes = common.plt.subplots(1, 2, figsize=(9, 3.6))
  for (kind, name), color in zip(ENDPOINTS, ("C0", "C3", "C1")):
    runs = grouped.get(f"noise_{name}")
    if not runs:
      continue
    for i, r in enumerate(runs):
      rows = memorization([r], "loss_sensitivity", "over_training")[0] or []
      if rows:
        steps, ginis = zip(*[(s, g) for s, g, _ in rows])
        epochs = np.asarray(steps) / max(args.steps_per_epoch, 1)
        axes[0].plot(epochs, ginis, color=color, alpha=1 if i == 0 else 0.4,
                     label=kind.replace("_", " ") if i == 0 else None)
    per_class = [pc for pc in memorization(runs, "loss_sensitivity", "per_class") if pc]
    if per_class:
      means = np.array([[m if m is not None else np.nan for m in pc["mean"]]
                        for pc in per_class])
      norm = means / np.nansum(means, axis=1, keepdims=True)
      offset = {"real": -0.27, "random": 0.0, "random_inputs": 0.27}[kind]
      axes[1].bar(np.arange(norm.shape[1]) + offset, np.nanmean(norm, 0), width=0.27,
                  color=color, label=kind.replace("_", " "))
  axes[0].set(xlabel="epoch", ylabel="Gini of g_x at the evaluation",
              title="loss-sensitivity Gini over training")
  axes[0].legend(fontsize=8)
  axes[1].set(xlabel="class (label trained on)", ylabel="share of mean g-bar_x",
              title="per-class loss sensitivity (normalized)")
  axes[1].legend(fontsize=8)
  fig.tight_layout()
  common.savefig(fig, args, "loss_sensitivity.png")


def plot_noise_capacity(args, summary):
  fig, axes = common.plt.subplots(1, 2, figsize=(9, 3.6))
  for kind, color in zip(NOISE_KINDS, ("C3", "C1")):
    cells_ = summary["noise_fraction"][kind]
    xs = [float(f) for f in cells_]
    common.errorbar(axes[0], xs, [c["val_accuracy"] for c in cells_.values()], color=color,
                    label=f"random {kind}: after budget")
    common.errorbar(axes[0], xs, [c["best_val_accuracy"] for c in cells_.values()],
                    color=color, ls="--", label=f"random {kind}: best")
  axes[0].set(xlabel="fraction of training set that is noise", ylabel="validation accuracy",
              title="noise fraction (MLP 1x512)", ylim=(0, 1.02))
  axes[0].legend(fontsize=7)
  for (label, cells_), color in zip(summary["capacity"].items(), ("C0", "C3", "C1")):
    ws = [int(w) for w in cells_]
    common.errorbar(axes[1], ws, [c["best_val_accuracy"] for c in cells_.values()],
                    color=color, label=f"{label}: best")
    common.errorbar(axes[1], ws, [c["val_accuracy"] for c in cells_.values()], color=color,
                    ls="--", label=f"{label}: after budget")
  axes[1].set_xscale("log")
  axes[1].set(xlabel="hidden units (one hidden layer)", ylabel="validation accuracy",
              title="capacity", ylim=(0, 1.02))
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  common.savefig(fig, args, "noise_capacity.png")


def plot_csr(args, grouped):
  fig, ax = common.plt.subplots(figsize=(5, 3.6))
  for (kind, name), color in zip(ENDPOINTS, ("C0", "C3", "C1")):
    for i, r in enumerate(grouped.get(f"noise_{name}", [])):
      rows = memorization([r], "critical_sample_ratio", "over_training")[0] or []
      if rows:
        steps, ratios = zip(*rows)
        ax.plot(np.asarray(steps) / max(args.steps_per_epoch, 1), ratios, color=color,
                alpha=1 if i == 0 else 0.4, label=kind.replace("_", " ") if i == 0 else None)
  ax.set(xlabel="epoch", ylabel=f"CSR (first {args.csr_samples} training inputs)",
         title="critical sample ratio over training")
  ax.legend(fontsize=8)
  common.savefig(fig, args, "csr.png")


# --- summary ---

def summarize(args, grouped, rates) -> dict:
  seeds = args.seeds
  stat = lambda values: leaderboard.summarize(values)
  summary = {"experiment": "arpit2017_memorization", "dataset": args.dataset, "seeds": seeds,
             "quick": args.quick, "epochs": None if args.quick else args.epochs,
             "easy_runs": args.easy_runs, "csr_samples": args.csr_samples}
  summary["easy_examples"] = easy_summary(rates)
  gini, gini_final, per_class = {}, {}, {}
  csr_final, csr_curves = {}, {}
  for kind, name in ENDPOINTS:
    runs = grouped.get(f"noise_{name}")
    if not runs:
      continue
    gini[kind] = stat(memorization(runs, "loss_sensitivity", "gini"))
    gini_final[kind] = stat(memorization(runs, "loss_sensitivity", "final_gini"))
    pcs = memorization(runs, "loss_sensitivity", "per_class")
    classes = max((len(pc["mean"]) for pc in pcs if pc), default=0)
    per_class[kind] = {str(c): stat(pc["mean"][c] if pc else None for pc in pcs)
                       for c in range(classes)}
    csr_final[kind] = stat(memorization(runs, "critical_sample_ratio", "critical_sample_ratio"))
    curves = [memorization([r], "critical_sample_ratio", "over_training")[0] or [] for r in runs]
    longest = max((len(c) for c in curves), default=0)
    csr_curves[kind] = [
        {"evaluation": i, "epoch": next(c[i][0] for c in curves if len(c) > i)
         / max(args.steps_per_epoch, 1),
         "csr": stat(c[i][1] if len(c) > i else None for c in curves)} for i in range(longest)]
  summary["loss_sensitivity_gini"] = gini
  summary["loss_sensitivity_gini_final"] = gini_final
  summary["loss_sensitivity_per_class"] = per_class
  summary["csr"] = {"final": csr_final, "over_training": csr_curves}
  noise = {}
  for kind in NOISE_KINDS:
    noise[kind] = {}
    for fraction in args.fractions[kind]:
      key = cell_key(args, corruption_name(kind, fraction))
      runs = grouped[key]
      noise[kind][f"{fraction:g}"] = {
          "val_accuracy": common.stat(runs, "test_accuracy"),
          "best_val_accuracy": stat(best_test_accuracy(args, key, seeds)),
          "train_accuracy": common.stat(runs, "train_accuracy")}
  summary["noise_fraction"] = noise
  capacity = {}
  for kind, fraction in args.capacity_data:
    label = "clean" if fraction == 0 else f"{kind}{fraction:g}"
    name = corruption_name(kind, fraction)
    capacity[label] = {}
    for width in args.widths:
      key = cell_key(args, name, width)
      capacity[label][str(width)] = {
          "val_accuracy": common.stat(grouped[key], "test_accuracy"),
          "best_val_accuracy": stat(best_test_accuracy(args, key, seeds)),
          "train_accuracy": common.stat(grouped[key], "train_accuracy")}
  summary["capacity"] = capacity
  return summary


def main() -> None:
  p = common.parser(__doc__, "arpit2017_memorization", "mnist5k")
  p.add_argument("--epochs", type=int, default=20, help="training budget of the sweep runs")
  p.add_argument("--easy_runs", type=int, default=None,
                 help="runs per dataset replicate for the easy-example rates (default 20; "
                      "4 with --quick)")
  p.add_argument("--csr_samples", type=int, default=None,
                 help="training inputs of the CSR over training (default 100; 16 with --quick)")
  args = common.finish_args(p.parse_args())
  if args.epochs < 1:
    common.fail(f"--epochs must be >= 1, got {args.epochs}", 2)
  args.easy_runs = args.easy_runs or (4 if args.quick else 20)
  args.csr_samples = args.csr_samples or (16 if args.quick else 100)
  if args.easy_runs < 2 or args.csr_samples < 1:
    common.fail("--easy_runs must be >= 2 and --csr_samples >= 1", 2)
  # --quick: random labels at 0 and 1 only (randinput has its own tests).
  args.fractions = ({"labels": (0.0, 1.0), "inputs": (0.0,)} if args.quick
                    else {kind: FRACTIONS for kind in NOISE_KINDS})
  args.widths = (512,) if args.quick else WIDTHS  # --quick: the noise cell's MLP 1x512
  args.capacity_data = CAPACITY_DATA[:1] if args.quick else CAPACITY_DATA
  # Cells of one model share their programs' HLO: compile each once.
  runtime.enable_compilation_cache(runtime.default_compilation_cache_dir())
  grid = cells(args)
  args.noise_keys = {c.key for c in grid if c.key.startswith("noise_")}
  base, _ = common.get_spec(f"{args.dataset}_clean")
  try:
    num_train = workload.resolve(base, args.data_dir).dataset.num_train
  except (datasets.DataError, specs.SpecError) as e:
    common.fail(str(e), 1)
  args.steps_per_epoch = num_train // base.budget.batch_size
  grouped = common.run_cells(grid, args)
  rates = easy_examples(args)
  summary = summarize(args, grouped, rates)
  plot_easy(args, rates)
  plot_sensitivity(args, grouped)
  plot_noise_capacity(args, summary)
  plot_csr(args, grouped)
  common.export(args, summary)
  e = summary["easy_examples"]
  for kind in e:
    print(f"easy examples {kind:14s} never misclassified "
          f"{e[kind]['never_misclassified']['mean']:.3f}, <=10%: "
          f"{e[kind]['misclassified_at_most_10pct']['mean']:.3f}")
  for kind, s in summary["loss_sensitivity_gini"].items():
    print(f"loss-sensitivity Gini {kind:14s} {s['mean']}")
  for kind, s in summary["csr"]["final"].items():
    print(f"final CSR {kind:14s} {s['mean']}")
  for kind, cells_ in summary["noise_fraction"].items():
    print(f"val acc vs {kind} noise: " + ", ".join(
        f"{f}: {c['val_accuracy']['mean']:.3f}/{c['best_val_accuracy']['mean']:.3f}"
        for f, c in cells_.items()))
  for label, cells_ in summary["capacity"].items():
    print(f"val acc vs width ({label}): " + ", ".join(
        f"{w}: {c['val_accuracy']['mean']:.3f}/{c['best_val_accuracy']['mean']:.3f}"
        for w, c in cells_.items()))


if __name__ == "__main__":
  sys.exit(main())
