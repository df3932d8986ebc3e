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
runs/<cell>/seed<N>/, cells/easy_<kind>/ (record.json and easy_examples.npz:
the per-example rates). `--print_config` lists the knobs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import KnobError, knob

FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# memobench's corruption names for (kind, fraction): labels resampled with prob. p,
# inputs replaced by Gaussian noise with prob. p; 0 is clean, 1 randlabels / gaussian.
NOISE_KINDS = ("labels", "inputs")
WIDTHS = (32, 128, 512, 1024, 2048, 4096)
CAPACITY_DATA = ("clean", "labels0.6", "inputs0.6")
EASY_DATA = (("real", "clean"), ("random_labels", "randlabels"), ("random_inputs", "gaussian"))
ENDPOINTS = (("real", "clean"), ("random", "randlabels"), ("random_inputs", "gaussian"))
# Points of each sorted per-example rate curve kept in the summary for the figure.
EASY_CURVE_POINTS = 201


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("mnist5k", "catalogue dataset")
  seeds: int = knob(3, "seeds per sweep cell (trained together), and dataset replicates of "
                       "the easy-example rates", lo=1)
  epochs: int = knob(20, "training budget of the sweep runs (budget.max_epochs)", lo=1)
  easy_runs: int = knob(20, "runs per dataset replicate for the easy-example rates", lo=2)
  csr_samples: int = knob(100, "training inputs of the CSR over training", lo=1)
  label_fractions: tuple[float, ...] = knob(FRACTIONS, "fractions of random labels",
                                            choices=FRACTIONS)
  input_fractions: tuple[float, ...] = knob(FRACTIONS, "fractions of random inputs",
                                            choices=FRACTIONS)
  widths: tuple[int, ...] = knob(WIDTHS, "hidden units of the capacity sweep (one hidden "
                                         "layer)", lo=1)
  capacity_data: tuple[str, ...] = knob(CAPACITY_DATA, "training data of the capacity sweep: "
                                                       "clean, labels<p> or inputs<p>")
  quick: bool = False


# --quick: random labels at 0 and 1 only (randinput has its own tests), the noise
# cell's MLP 1x512 for capacity, 20 steps per run, 4 runs per easy-example replicate.
QUICK = Config(dataset="digits", seeds=1, easy_runs=4, csr_samples=16,
               label_fractions=(0.0, 1.0), input_fractions=(0.0,), widths=(512,),
               capacity_data=("clean",), quick=True)


def parse_capacity(label: str) -> tuple[str, float]:
  """'clean' -> ('clean', 0.0); 'labels0.6' -> ('labels', 0.6)."""
  if label == "clean":
    return "clean", 0.0
  for kind in NOISE_KINDS:
    if label.startswith(kind):
      try:
        fraction = float(label[len(kind):])
      except ValueError:
        break
      if fraction in FRACTIONS:
        return kind, fraction
  raise KnobError(f"capacity_data: {label!r} is not clean, labels<p> or inputs<p> with p one "
                  f"of {', '.join(f'{f:g}' for f in FRACTIONS)}")


def check(config: Config) -> None:
  for label in config.capacity_data:
    parse_capacity(label)


def corruption_name(kind: str, fraction: float) -> str:
  if fraction == 0.0:
    return "clean"
  if fraction == 1.0:
    return "randlabels" if kind == "labels" else "gaussian"
  return f"{'partial' if kind == 'labels' else 'randinput'}{round(fraction * 100)}"


def fractions(config: Config) -> dict[str, tuple[float, ...]]:
  return {"labels": config.label_fractions, "inputs": config.input_fractions}


def noise_names(config: Config) -> list[str]:
  return sorted({corruption_name(k, f) for k, fs in fractions(config).items() for f in fs})


def cell_key(config: Config, name: str, width: int | None = None) -> str:
  """The spec cell of corruption `name` (at `width` hidden units: the noise cell at 512)."""
  if width is None or (width == 512 and name in noise_names(config)):
    return f"noise_{name}"
  return f"width{width}_{name}"


# --- easy examples: one fixed dataset, many runs, one epoch (the loop, vmapped) ---

@dataclasses.dataclass(frozen=True)
class EasyConfig:
  dataset: str
  corruption: str
  runs: int
  replicates: int


def compute_easy(config: EasyConfig, ctx) -> dict:
  """Per replicate, each training example's misclassification rate after one epoch.

  The runs of a replicate differ only in their initialization and batch order
  (their loop keys); they share the replicate's corrupted data (data seed =
  replicate), and train in one vmapped program.
  """
  import os  # pylint: disable=import-outside-toplevel
  from memobench import catalogue, results, specs, workload  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_{config.corruption}"), [
      "budget.max_epochs=1", "analysis.effective_rank=false", "analysis.dynamics=false"])
  w = workload.resolve(spec, ctx.data_dir, stops_on_fit=False)
  per_replicate = []
  for replicate in range(config.replicates):
    data = w.corrupted_data(replicate)
    members = [loop.Member(dataclasses.replace(spec, seed=replicate * 1000 + j), data,
                           log=lambda _: None) for j in range(config.runs)]
    outs = loop.train_group(w, members, vmapped=True)
    y = np.asarray(data.y_train)
    wrong = np.stack([np.asarray(o.final.train_predictions) != y for o in outs])
    per_replicate.append(wrong.mean(0))
    ctx.log(f"replicate {replicate}: mean misclassification {wrong.mean():.3f}")
  rates = np.stack(per_replicate)
  results.write_npz_atomic(os.path.join(ctx.folder, "easy_examples.npz"), {"rates": rates})
  return {"rates": rates.tolist()}


def easy_summary(rates: dict[str, np.ndarray]) -> dict:
  out = {}
  for kind, r in rates.items():
    out[kind] = {
        "never_misclassified": summaries.summarize((row == 0).mean() for row in r),
        "misclassified_at_most_10pct": summaries.summarize((row <= 0.1).mean() for row in r),
        "always_misclassified": summaries.summarize((row == 1).mean() for row in r),
        "mean_misclassification": summaries.summarize(row.mean() for row in r),
    }
  return out


def sorted_curves(rates: dict[str, np.ndarray]) -> dict[str, list[list[float]]]:
  """Per kind and replicate, the sorted rates at EASY_CURVE_POINTS evenly spaced ranks."""
  out = {}
  for kind, r in rates.items():
    idx = np.round(np.linspace(0, r.shape[1] - 1, EASY_CURVE_POINTS)).astype(int)
    out[kind] = [np.sort(row)[idx].tolist() for row in r]
  return out


def grid(config: Config) -> list:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  budget = (summaries.QUICK_SET if config.quick else
            (f"budget.max_epochs={config.epochs}", "analysis.effective_rank=false",
             "analysis.dynamics=false"))
  analysis = ("analysis.loss_sensitivity=true", f"analysis.csr_samples={config.csr_samples}",
              "analysis.csr_split=train", "analysis.csr_every_eval=true")
  endpoints = {c for _, c in ENDPOINTS}
  out: list = []
  for name in noise_names(config):
    extra = analysis if name in endpoints else ()
    out.append(SpecCell(f"noise_{name}", catalogue.get(f"{config.dataset}_{name}"),
                        (*budget, *extra), config.seeds))
  for label in config.capacity_data:
    name = corruption_name(*parse_capacity(label))
    for width in config.widths:
      if cell_key(config, name, width) != f"width{width}_{name}":
        continue  # the default model (one hidden layer of 512) is that noise cell
      out.append(SpecCell(f"width{width}_{name}", catalogue.get(f"{config.dataset}_{name}"),
                          (*budget, "model.name=mlp", "model.depth=1", f"model.width={width}"),
                          config.seeds))
  for kind, corruption in EASY_DATA[:2] if config.quick else EASY_DATA:
    out.append(ComputedCell(f"easy_{kind}", compute_easy, EasyConfig(
        config.dataset, corruption, config.easy_runs, config.seeds)))
  return out


# --- summary ---

def memorization(runs, section: str, field: str) -> list:
  return [((r or {}).get("memorization") or {}).get(section, {}).get(field) for r in runs]


def best_test_accuracy(runs) -> list[float | None]:
  out = []
  for r in runs:
    c = r.get("curve")
    acc = None if c is None else [a for a in c.get("test_accuracy", []) if a is not None]
    out.append(max(acc) if acc else None)
  return out


def steps_per_epoch(runs) -> int:
  run = runs[0]["run"]
  return max(round(run["steps"] / run["epochs"]), 1)


def summarize(config: Config, records) -> dict:
  stat = summaries.summarize
  spe = steps_per_epoch(records[cell_key(config, "clean")])
  summary = {"experiment": "arpit2017_memorization", "dataset": config.dataset,
             "seeds": config.seeds, "quick": config.quick,
             "epochs": None if config.quick else config.epochs,
             "easy_runs": config.easy_runs, "csr_samples": config.csr_samples}
  rates = {kind: np.asarray(records[f"easy_{kind}"]["rates"], np.float64)
           for kind, _ in EASY_DATA if f"easy_{kind}" in records}
  summary["easy_examples"] = easy_summary(rates)
  gini, gini_final, per_class = {}, {}, {}
  csr_final, csr_curves = {}, {}
  for kind, name in ENDPOINTS:
    runs = records.get(f"noise_{name}")
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
        {"evaluation": i, "epoch": next(c[i][0] for c in curves if len(c) > i) / spe,
         "csr": stat(c[i][1] if len(c) > i else None for c in curves)} for i in range(longest)]
  summary["loss_sensitivity_gini"] = gini
  summary["loss_sensitivity_gini_final"] = gini_final
  summary["loss_sensitivity_per_class"] = per_class
  summary["csr"] = {"final": csr_final, "over_training": csr_curves}
  noise = {}
  for kind, fs in fractions(config).items():
    noise[kind] = {}
    for fraction in fs:
      runs = records[cell_key(config, corruption_name(kind, fraction))]
      noise[kind][f"{fraction:g}"] = {
          "val_accuracy": summaries.stat(runs, "test_accuracy"),
          "best_val_accuracy": stat(best_test_accuracy(runs)),
          "train_accuracy": summaries.stat(runs, "train_accuracy")}
  summary["noise_fraction"] = noise
  capacity = {}
  for label in config.capacity_data:
    kind, fraction = parse_capacity(label)
    name = corruption_name(kind, fraction)
    capacity[label] = {}
    for width in config.widths:
      runs = records[cell_key(config, name, width)]
      capacity[label][str(width)] = {
          "val_accuracy": summaries.stat(runs, "test_accuracy"),
          "best_val_accuracy": stat(best_test_accuracy(runs)),
          "train_accuracy": summaries.stat(runs, "train_accuracy")}
  summary["capacity"] = capacity
  # What the figures need beyond the statistics above.
  summary["figures"] = {
      "steps_per_epoch": spe,
      "easy_sorted_rates": sorted_curves(rates),
      "loss_sensitivity_over_training": {
          kind: memorization(records[f"noise_{name}"], "loss_sensitivity", "over_training")
          for kind, name in ENDPOINTS if records.get(f"noise_{name}")},
      "loss_sensitivity_per_class_mean": {
          kind: [pc["mean"] if pc else None for pc in
                 memorization(records[f"noise_{name}"], "loss_sensitivity", "per_class")]
          for kind, name in ENDPOINTS if records.get(f"noise_{name}")},
      "csr_over_training": {
          kind: memorization(records[f"noise_{name}"], "critical_sample_ratio",
                             "over_training")
          for kind, name in ENDPOINTS if records.get(f"noise_{name}")},
  }
  return summary


# --- figures (from the summary alone) ---

def plot_easy(summary: dict, plt):
  fig, ax = plt.subplots(figsize=(5, 3.6))
  curves = summary["figures"]["easy_sorted_rates"]
  for (kind, _), color in zip(EASY_DATA, ("C0", "C3", "C1")):
    for i, row in enumerate(curves.get(kind, [])):
      ax.plot(np.linspace(0, 1, len(row)), row, color=color, lw=1,
              alpha=1 if i == 0 else 0.4, label=kind.replace("_", " ") if i == 0 else None)
  ax.set(xlabel="examples, sorted (fraction)", ylim=(-0.02, 1.02),
         ylabel=f"misclassification rate after 1 epoch\n(over {summary['easy_runs']} runs)",
         title=f"easy examples ({summary['dataset']}; one line per replicate)")
  ax.legend(fontsize=8)
  return fig


def plot_sensitivity(summary: dict, plt):
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  figures = summary["figures"]
  spe = figures["steps_per_epoch"]
  for (kind, _), color in zip(ENDPOINTS, ("C0", "C3", "C1")):
    for i, rows in enumerate(figures["loss_sensitivity_over_training"].get(kind, [])):
      if rows:
        steps, ginis = zip(*[(s, g) for s, g, _ in rows])
        axes[0].plot(np.asarray(steps) / spe, ginis, color=color, alpha=1 if i == 0 else 0.4,
                     label=kind.replace("_", " ") if i == 0 else None)
    per_class = [pc for pc in figures["loss_sensitivity_per_class_mean"].get(kind, []) if pc]
    if per_class:
      means = np.array([[m if m is not None else np.nan for m in pc] for pc in per_class])
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
  return fig


def plot_noise_capacity(summary: dict, plt, errorbar):
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  for kind, color in zip(NOISE_KINDS, ("C3", "C1")):
    cells_ = summary["noise_fraction"][kind]
    xs = [float(f) for f in cells_]
    errorbar(axes[0], xs, [c["val_accuracy"] for c in cells_.values()], color=color,
             label=f"random {kind}: after budget")
    errorbar(axes[0], xs, [c["best_val_accuracy"] for c in cells_.values()], color=color,
             ls="--", label=f"random {kind}: best")
  axes[0].set(xlabel="fraction of training set that is noise", ylabel="validation accuracy",
              title="noise fraction (MLP 1x512)", ylim=(0, 1.02))
  axes[0].legend(fontsize=7)
  for (label, cells_), color in zip(summary["capacity"].items(), ("C0", "C3", "C1")):
    ws = [int(w) for w in cells_]
    errorbar(axes[1], ws, [c["best_val_accuracy"] for c in cells_.values()], color=color,
             label=f"{label}: best")
    errorbar(axes[1], ws, [c["val_accuracy"] for c in cells_.values()], color=color, ls="--",
             label=f"{label}: after budget")
  axes[1].set_xscale("log")
  axes[1].set(xlabel="hidden units (one hidden layer)", ylabel="validation accuracy",
              title="capacity", ylim=(0, 1.02))
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  return fig


def plot_csr(summary: dict, plt):
  fig, ax = plt.subplots(figsize=(5, 3.6))
  figures = summary["figures"]
  for (kind, _), color in zip(ENDPOINTS, ("C0", "C3", "C1")):
    for i, rows in enumerate(figures["csr_over_training"].get(kind, [])):
      if rows:
        steps, ratios = zip(*rows)
        ax.plot(np.asarray(steps) / figures["steps_per_epoch"], ratios, color=color,
                alpha=1 if i == 0 else 0.4, label=kind.replace("_", " ") if i == 0 else None)
  ax.set(xlabel="epoch", ylabel=f"CSR (first {summary['csr_samples']} training inputs)",
         title="critical sample ratio over training")
  ax.legend(fontsize=8)
  return fig


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  return {"easy_examples.png": plot_easy(summary, plt),
          "loss_sensitivity.png": plot_sensitivity(summary, plt),
          "noise_capacity.png": plot_noise_capacity(summary, plt, errorbar),
          "csr.png": plot_csr(summary, plt)}


def report(config: Config, summary: dict) -> str:
  lines = []
  e = summary["easy_examples"]
  for kind in e:
    lines.append(f"easy examples {kind:14s} never misclassified "
                 f"{e[kind]['never_misclassified']['mean']:.3f}, <=10%: "
                 f"{e[kind]['misclassified_at_most_10pct']['mean']:.3f}")
  for kind, s in summary["loss_sensitivity_gini"].items():
    lines.append(f"loss-sensitivity Gini {kind:14s} {s['mean']}")
  for kind, s in summary["csr"]["final"].items():
    lines.append(f"final CSR {kind:14s} {s['mean']}")
  for kind, cells_ in summary["noise_fraction"].items():
    lines.append(f"val acc vs {kind} noise: " + ", ".join(
        f"{f}: {c['val_accuracy']['mean']:.3f}/{c['best_val_accuracy']['mean']:.3f}"
        for f, c in cells_.items()))
  for label, cells_ in summary["capacity"].items():
    lines.append(f"val acc vs width ({label}): " + ", ".join(
        f"{w}: {c['val_accuracy']['mean']:.3f}/{c['best_val_accuracy']['mean']:.3f}"
        for w, c in cells_.items()))
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="arpit2017_memorization", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
