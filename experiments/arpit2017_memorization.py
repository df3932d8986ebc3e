"""Arpit et al. 2017: easy examples, loss sensitivity, noise and capacity, CSR over training.

Command:

    python experiments/arpit2017_memorization.py              # mnist5k, 3 seeds
    python experiments/arpit2017_memorization.py --quick      # smoke test: digits, 2 epochs

Runtime: 1h33m wall, 610 CPU-s for the default (26 sweep cells x 3 seeds, each cell's
seeds one vmapped program; 9 groups of 20 one-epoch runs) on the shared 2-core machine
at load 19-26 (2026-12-04; the old protocol's 940 CPU-s took 11 min idle); --quick
70 s wall, 23 CPU-s at load ~16. Its regularizer sweeps: arpit2017_regularizers.py.

The paper ("A closer look at memorization in deep networks", ICML 2017), in its terms:
(1) real data has "easy examples", classified right after one epoch by almost every
run, noise data has none (Fig. 1); (2) loss sensitivity g_x averaged over training is
spread more unequally on real data: a higher Gini coefficient (Sec. 3.2); (3)
validation accuracy falls as more of the training set is noise (random labels or
random inputs), and with noise more capacity is needed for the best validation
accuracy (Sec. 4); (4) the critical sample ratio (CSR) stays low on real data and
grows as noise is memorized (Sec. 3.4).

Here (MLP 1x512, SGD lr 0.1 x0.95/epoch, batch 128): (1) each training example's
misclassification rate after ONE epoch over 20 runs sharing one dataset (init and
batch order differ; all 4,000 mnist5k training examples; 3 data replicates). (2)-(4)
sweep cells: every run trains exactly 20 epochs (no fit stop: matched epochs) on the
first 3,000 training examples; the last 1,000 (true labels, clean inputs) are a
validation split, evaluated after every epoch with the training and test splits
(experiments/programs/validated_runs.py). "Early-stopped" is the test accuracy at the
epoch of best validation accuracy (issue 24 item 8: the old "best over training" was
the maximum of TEST accuracy, test-set early stopping: up to 1.5 points optimistic here).
g_x = ||d CE(f(x), y) / d x||_1 of the example's own loss (not the paper's loss
through unrolled SGD steps), averaged over the 20 evaluations; CSR on the first 100
training inputs after every epoch.

Measured (mnist5k, 3 seeds, mean; 2026-12-04):
1. Never misclassified after one epoch: real 0.662, random labels 0.000, random
   inputs 0.000 (at most 10% of runs: 0.799 / 0.002 / 0.000). Agrees.
2. Gini of g-bar_x over the same 20 epochs: real 0.758, random labels 0.157, random
   inputs 0.187, and real above both at every epoch (real ~0.73-0.82; random labels
   rising 0.05 -> 0.33 as they are memorized, random inputs peaking at 0.35 at epoch
   6). Agrees.
3. Early-stopped test accuracy / after 20 epochs vs the fraction of noise 0, .2, .4,
   .6, .8, 1: random labels 0.932/0.932, 0.917/0.890, 0.879/0.776, 0.829/0.606,
   0.692/0.342, 0.135/0.095; random inputs 0.932, 0.929/0.927, 0.915/0.914,
   0.899/0.900, 0.866/0.869, 0.111/0.109. Agrees (falls with noise; early stopping
   matters for label noise only).
   Capacity (early-stopped, one hidden layer of 32, 128, 512, 1024, 2048, 4096):
     clean              0.920, 0.928, 0.932, 0.934, 0.932, 0.933
     60% random labels  0.812, 0.830, 0.829, 0.835, 0.837, 0.819
     60% random inputs  0.876, 0.885, 0.899, 0.903, 0.905, 0.908
   Inconclusive: clean data is within 2 se of its best from 1,024 units; beyond it
   (4,096 vs 1,024) neither noisy set gains resolvably (+0.5 and -1.6 points, within
   their seed spread). The rule was revised after seeing these numbers: the first
   one compared each set's own saturation width and said "disagrees", an artefact of
   the noisy cells' larger spread (it called random inputs saturated at 512 units
   while their mean still rises to 4,096). More seeds would decide it.
4. CSR after 20 epochs: real 0.000, random labels 0.027, random inputs 0.000; over
   training random labels 0.06-0.12 for 16 epochs, then falling to 0.03; random
   inputs 0.12 after one epoch, 0 from epoch 8 on. Partly agrees: random labels keep
   more critical samples than real data, but CSR falls, not rises, as noise is
   memorized.

Before this protocol (fit stop at 0.99, test-selected "best", 4,000 training
examples) the verdicts read: 1 agrees, 2 agrees (Gini 0.749 / 0.143 / 0.161 over
unequal numbers of epochs), 3 agrees / capacity partly, 4 partly.

The sweep settings are --set overrides of registered specs (their runs non-standard).
Outputs in the workdir: easy_examples.png, loss_sensitivity.png, noise_capacity.png,
csr.png, summary.json, cells/<cell>/ (record.json; the sweep cells' per-example
loss-sensitivity arrays under seed<N>/; easy_examples.npz). `--print_config` lists
the knobs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries, verdicts
from experiments.cells import ComputedCell
from experiments.knobs import KnobError, knob
from experiments.programs import validated_runs

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
  epochs: int = knob(20, "epochs of every sweep run (no fit stop: each trains exactly this "
                       "many, evaluated after every epoch)", lo=1)
  validation: int = knob(1000, "training examples held out (the last ones of the training "
                               "split; true labels, clean inputs) as the validation split that "
                               "picks each run's early-stopping epoch; runs train on the rest",
                         lo=1)
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
# cell's MLP 1x512 for capacity, 2 epochs of 1,000 digits per run, 4 runs per
# easy-example replicate.
QUICK = Config(dataset="digits", seeds=1, epochs=2, validation=437, easy_runs=4, csr_samples=16,
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
  """The sweep cell of corruption `name` (at `width` hidden units: the noise cell at 512)."""
  if width is None or (width == 512 and name in noise_names(config)):
    return f"noise_{name}"
  return f"width{width}_{name}"


# --- the sweep: runs of a fixed number of epochs, early-stopped on a validation split ---

@dataclasses.dataclass(frozen=True)
class SweepConfig:
  dataset: str
  corruption: str
  seeds: int
  epochs: int
  validation: int
  width: int | None = None    # one hidden layer of this many units (None: the spec's model)
  csr_samples: int = 0        # > 0: loss sensitivity and CSR at every evaluation


def compute_sweep(config: SweepConfig, ctx) -> dict:
  """`seeds` runs of <dataset>_<corruption> on all but the last `validation` training
  examples, `epochs` epochs each (no fit stop), evaluated after every epoch on the
  training, validation and test splits (experiments/programs/validated_runs.py)."""
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  base = catalogue.get(f"{config.dataset}_{config.corruption}")
  num_train = datasets.load(base.dataset, ctx.data_dir).num_train
  train_size = num_train - config.validation
  if train_size < base.budget.batch_size:
    raise specs.SpecError(f"validation={config.validation} leaves {train_size} of the "
                          f"{num_train} training examples of {config.dataset}: fewer than "
                          f"one batch ({base.budget.batch_size})")
  steps_per_epoch = train_size // base.budget.batch_size
  overrides = [f"dataset.train_size={train_size}", f"budget.max_epochs={config.epochs}",
               f"budget.eval_every_steps={steps_per_epoch}", "analysis.effective_rank=false",
               "analysis.dynamics=false"]
  if config.width is not None:
    overrides += ["model.name=mlp", "model.depth=1", f"model.width={config.width}"]
  if config.csr_samples:
    overrides += ["analysis.loss_sensitivity=true", f"analysis.csr_samples={config.csr_samples}",
                  "analysis.csr_split=train", "analysis.csr_every_eval=true"]
  spec, _ = specs.with_overrides(base, overrides)
  w = workload.resolve(spec, ctx.data_dir, stops_on_fit=False)
  runs = validated_runs.train(w, [base.seed + i for i in range(config.seeds)],
                              validated_runs.validation_split(spec, ctx.data_dir),
                              vmap=ctx.vmap, folder=ctx.folder, log=ctx.log)
  return {"spec": spec.name, "overrides": overrides, "runs": runs}


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
  endpoints = {c for _, c in ENDPOINTS}

  def sweep(name: str, width: int | None = None) -> SweepConfig:
    return SweepConfig(config.dataset, name, config.seeds, config.epochs, config.validation,
                       width, config.csr_samples if name in endpoints and width is None else 0)

  out: list = [ComputedCell(f"noise_{name}", compute_sweep, sweep(name))
               for name in noise_names(config)]
  for label in config.capacity_data:
    name = corruption_name(*parse_capacity(label))
    for width in config.widths:
      if cell_key(config, name, width) != f"width{width}_{name}":
        continue  # the default model (one hidden layer of 512) is that noise cell
      out.append(ComputedCell(f"width{width}_{name}", compute_sweep, sweep(name, width)))
  for kind, corruption in EASY_DATA[:2] if config.quick else EASY_DATA:
    out.append(ComputedCell(f"easy_{kind}", compute_easy, EasyConfig(
        config.dataset, corruption, config.easy_runs, config.seeds)))
  return out


# --- summary ---

def memorization(runs, section: str, field: str) -> list:
  return [((r or {}).get("memorization") or {}).get(section, {}).get(field) for r in runs]


def run_stats(runs: list[dict]) -> dict:
  """A sweep cell's accuracies over its seeds: early-stopped on the validation split (the
  headline), after the budget, and the test-selected maximum (optimistic, for the record)."""
  stat = summaries.summarize
  stopped = [validated_runs.early_stopped(r["curve"]) for r in runs]
  tests = [[a for a in r["curve"]["test_accuracy"] if a is not None] for r in runs]
  return {
      "test_accuracy_early_stopped": stat(s and s["test_accuracy"] for s in stopped),
      "validation_accuracy_best": stat(s and s["validation_accuracy"] for s in stopped),
      "early_stopped_epoch": stat(s and s["epoch"] for s in stopped),
      "test_accuracy_final": stat(r["test_accuracy"] for r in runs),
      "train_accuracy_final": stat(r["train_accuracy"] for r in runs),
      "test_accuracy_max_over_training": stat(max(t) if t else None for t in tests),
  }


def by_evaluation(rows_per_run: list[list], spe: int, column: int) -> list[dict]:
  """Per evaluation (the runs share their evaluation steps), its epoch and the
  statistics over the runs of rows[i][column]."""
  longest = max((len(r) for r in rows_per_run), default=0)
  return [{"evaluation": i, "epoch": next(r[i][0] for r in rows_per_run if len(r) > i) / spe,
           "value": summaries.summarize(r[i][column] if len(r) > i else None
                                        for r in rows_per_run)} for i in range(longest)]


def summarize(config: Config, records) -> dict:
  stat = summaries.summarize
  runs_of = {key: records[key]["runs"] for key in records if not key.startswith("easy_")}
  first = runs_of[cell_key(config, "clean")][0]
  spe = first["steps_per_epoch"]
  summary = {"experiment": "arpit2017_memorization", "dataset": config.dataset,
             "seeds": config.seeds, "quick": config.quick, "epochs": config.epochs,
             "train_examples": first["train_examples"],
             "validation_examples": first["validation_examples"],
             "easy_runs": config.easy_runs, "csr_samples": config.csr_samples}
  rates = {kind: np.asarray(records[f"easy_{kind}"]["rates"], np.float64)
           for kind, _ in EASY_DATA if f"easy_{kind}" in records}
  summary["easy_examples"] = easy_summary(rates)
  gini, gini_final, gini_by_epoch, per_class = {}, {}, {}, {}
  csr_final, csr_curves = {}, {}
  for kind, name in ENDPOINTS:
    runs = runs_of.get(f"noise_{name}")
    if not runs:
      continue
    gini[kind] = stat(memorization(runs, "loss_sensitivity", "gini"))
    gini_final[kind] = stat(memorization(runs, "loss_sensitivity", "final_gini"))
    gini_by_epoch[kind] = by_evaluation(
        [rows or [] for rows in memorization(runs, "loss_sensitivity", "over_training")], spe, 1)
    pcs = memorization(runs, "loss_sensitivity", "per_class")
    classes = max((len(pc["mean"]) for pc in pcs if pc), default=0)
    per_class[kind] = {str(c): stat(pc["mean"][c] if pc else None for pc in pcs)
                       for c in range(classes)}
    csr_final[kind] = stat(memorization(runs, "critical_sample_ratio", "critical_sample_ratio"))
    csr_curves[kind] = by_evaluation(
        [rows or [] for rows in memorization(runs, "critical_sample_ratio", "over_training")],
        spe, 1)
  summary["loss_sensitivity_gini"] = gini
  summary["loss_sensitivity_gini_final"] = gini_final
  summary["loss_sensitivity_gini_by_epoch"] = gini_by_epoch
  summary["loss_sensitivity_per_class"] = per_class
  summary["csr"] = {"final": csr_final, "over_training": csr_curves}
  summary["noise_fraction"] = {
      kind: {f"{fraction:g}": run_stats(runs_of[cell_key(config, corruption_name(kind, fraction))])
             for fraction in fs} for kind, fs in fractions(config).items()}
  capacity = {}
  for label in config.capacity_data:
    name = corruption_name(*parse_capacity(label))
    capacity[label] = {str(width): run_stats(runs_of[cell_key(config, name, width)])
                       for width in config.widths}
  summary["capacity"] = capacity
  # What the figures need beyond the statistics above.
  endpoints = [(kind, runs_of[f"noise_{name}"]) for kind, name in ENDPOINTS
               if f"noise_{name}" in runs_of]
  summary["figures"] = {
      "steps_per_epoch": spe,
      "easy_sorted_rates": sorted_curves(rates),
      "loss_sensitivity_over_training": {
          kind: memorization(runs, "loss_sensitivity", "over_training") for kind, runs in endpoints},
      "loss_sensitivity_per_class_mean": {
          kind: [pc["mean"] if pc else None for pc in
                 memorization(runs, "loss_sensitivity", "per_class")] for kind, runs in endpoints},
      "csr_over_training": {
          kind: memorization(runs, "critical_sample_ratio", "over_training")
          for kind, runs in endpoints},
  }
  summary["verdicts"] = judge(summary)
  return summary


# --- verdicts ---

PAPER = "Arpit et al. 2017"
DEPARTURES = ("an MLP 1x512 on mnist5k (4,000 training examples), not the paper's MNIST / "
              "CIFAR-10 models", "3 seeds")


def compare(a: dict, b: dict) -> str:
  """'higher' / 'lower' when a - b is beyond two standard errors, else 'unresolved'."""
  d, se = verdicts.difference(a, b)
  if not verdicts.beyond(d, se):
    return "unresolved"
  return "higher" if d > 0 else "lower"


def word(good: list[bool], bad: list[bool], also: bool = True) -> str:
  """agrees when every resolved comparison holds (and `also`), disagrees when one is resolved
  against, partly when some hold, inconclusive when none is resolved either way."""
  if good and all(good):
    return "agrees" if also else "partly"
  return "disagrees" if any(bad) else "partly" if any(good) else "inconclusive"


def saturation_width(cells_: dict[str, dict]) -> int | None:
  """The smallest width whose early-stopped test accuracy is not resolved below the best
  width's (within two standard errors of the difference)."""
  accs = {int(w): c["test_accuracy_early_stopped"] for w, c in cells_.items()}
  accs = {w: a for w, a in accs.items() if a["mean"] is not None}
  if not accs:
    return None
  best = max(accs, key=lambda w: accs[w]["mean"])
  return min(w for w, a in accs.items() if w == best or compare(accs[best], a) != "higher")


def early_stopped(cells_: dict[str, dict]) -> str:
  return ", ".join(f"{k}: {c['test_accuracy_early_stopped']['mean']:.3f}"
                   for k, c in cells_.items() if c["test_accuracy_early_stopped"]["mean"]
                   is not None)


def judge(s: dict) -> list[dict]:
  """The paper's claims, each decided from the numbers of summary `s`."""
  out = []
  sweep = (f"every sweep run trains exactly {s['epochs']} epochs (no fit stop) on the first "
           f"{s['train_examples']} training examples, evaluated after every epoch; its "
           f"early-stopping epoch is the one of highest accuracy on the "
           f"{s['validation_examples']} held-out training examples (true labels), and the test "
           "accuracy is read there")
  held_out = ("the paper early-stops on its benchmark's validation set; here the epoch is "
              "chosen on held-out training examples and the test split's accuracy is read there",)
  easy = s["easy_examples"]
  if "real" in easy:
    real = easy["real"]["never_misclassified"]
    noise = {k: v["never_misclassified"] for k, v in easy.items() if k != "real"}
    cmp = [compare(real, v) for v in noise.values()]
    none_easy = all(v["mean"] is not None and v["mean"] <= 0.01 for v in noise.values())
    out.append(verdicts.verdict(
        "real data has easy examples (right after one epoch in every run); noise data has none",
        paper=f"{PAPER}, Sec. 3.1, Fig. 1", matched=(
            f"one epoch on the same data for {s['easy_runs']} runs per replicate (differing in "
            "initialization and batch order), every data kind"),
        measured="fraction of training examples never misclassified after one epoch: " + ", ".join(
            f"{k} {verdicts.fmt(v)}" for k, v in [("real", real), *noise.items()]),
        verdict=word([c == "higher" for c in cmp], [c == "lower" for c in cmp], none_easy),
        departures=DEPARTURES + ("all training examples (nothing is selected: no validation "
                                 "split)", "'none' read as at most 1% of the examples"),
        decide="more dataset replicates (seeds)", figure="easy_examples.png"))
  gini, by_epoch = s["loss_sensitivity_gini"], s["loss_sensitivity_gini_by_epoch"]
  if "real" in gini and len(gini) > 1:
    cmp = [compare(gini["real"], gini[k]) for k in gini if k != "real"]
    every_epoch = all(
        r["value"]["mean"] is not None and o["value"]["mean"] is not None
        and r["value"]["mean"] > o["value"]["mean"]
        for k in gini if k != "real" for r, o in zip(by_epoch["real"], by_epoch[k]))
    out.append(verdicts.verdict(
        "loss sensitivity (g-bar_x) is spread more unequally over real data than over noise "
        "data: a higher Gini coefficient", paper=f"{PAPER}, Sec. 3.2",
        matched=(f"matched epochs: g_x averaged over the same {s['epochs']} evaluations (one per "
                 f"epoch, no fit stop) on the same {s['train_examples']} training examples"),
        measured="Gini of g-bar_x: " + ", ".join(f"{k} {verdicts.fmt(v)}" for k, v in gini.items())
        + f"; real above both at every one of the {len(by_epoch['real'])} epochs: {every_epoch}",
        verdict=word([c == "higher" for c in cmp], [c == "lower" for c in cmp], every_epoch),
        departures=DEPARTURES + (
            "g_x is the input gradient of the example's own loss, not of a later loss through "
            "unrolled SGD steps",),
        decide="more seeds", figure="loss_sensitivity.png"))
  trend = {}
  for kind, cells_ in s["noise_fraction"].items():
    accs = [c["test_accuracy_early_stopped"] for c in cells_.values()]
    if len(accs) > 1:
      rises = any(compare(b, a) == "higher" for a, b in zip(accs, accs[1:]))
      trend[kind] = ("rises" if rises else "falls" if compare(accs[0], accs[-1]) == "higher"
                     else "unresolved")
  if trend:
    out.append(verdicts.verdict(
        "validation accuracy falls as a larger fraction of the training set is noise (random "
        "labels or random inputs)", paper=f"{PAPER}, Sec. 4", matched=sweep,
        measured="; ".join(f"random {kind}: early-stopped test accuracy by noise fraction "
                           f"{early_stopped(s['noise_fraction'][kind])} ({v})"
                           for kind, v in trend.items()),
        verdict=word([v == "falls" for v in trend.values()],
                     [v == "rises" for v in trend.values()]),
        departures=DEPARTURES + held_out + ("a fall allows no resolved rise between "
                                            "neighbouring fractions",),
        decide="more seeds", figure="noise_capacity.png"))
  capacity = s["capacity"]
  if "clean" in capacity and len(capacity) > 1 and len(capacity["clean"]) > 1:
    # Where clean data saturates, and whether noisy data still gains from the largest width
    # beyond it (a fixed pair of widths: the best of several would be selected on the test).
    sat = saturation_width(capacity["clean"])
    top = str(max(int(w) for w in capacity["clean"]))
    gains = {label: compare(cells_[top]["test_accuracy_early_stopped"],
                            cells_[str(sat)]["test_accuracy_early_stopped"])
             for label, cells_ in capacity.items() if label != "clean" and sat is not None
             and int(top) > sat}
    out.append(verdicts.verdict(
        "with noise in the training set, more capacity (hidden units) is needed for the best "
        "validation accuracy", paper=f"{PAPER}, Sec. 4", matched=sweep,
        measured="; ".join(f"{label}: early-stopped test accuracy by width "
                           f"{early_stopped(cells_)}" for label, cells_ in capacity.items())
        + f"; clean data within 2 se of its best from {sat} units; {top} vs {sat} units: "
        + ", ".join(f"{label} {gain}" for label, gain in gains.items()),
        verdict=word([g == "higher" for g in gains.values()],
                     [g == "lower" for g in gains.values()]),
        departures=DEPARTURES + held_out + (
            "widths 32-4,096 of one hidden layer; 'more capacity needed' read as: the noisy "
            "data's accuracy at the largest width is resolved above its accuracy at the width "
            "where clean data saturates (the smallest width within 2 se of clean's best)",
            "rule revised after seeing the data: the first rule (each dataset's own saturation "
            "width, compared) said 'disagrees' because the noisy cells' larger spread let it "
            "call 60% random inputs saturated at 512 units while their mean still rises to "
            "4,096"),
        decide=("more seeds: the widths beyond clean data's saturation differ by about half a "
                "point, within the seed spread of the noisy cells"),
        figure="noise_capacity.png"))
  final, curves = s["csr"]["final"], s["csr"]["over_training"]
  if "real" in final and len(final) > 1:
    above = [compare(final[k], final["real"]) for k in final if k != "real"]
    rises = [compare(c[-1]["value"], c[0]["value"]) for k, c in curves.items()
             if k != "real" and len(c) > 1]
    out.append(verdicts.verdict(
        "the critical sample ratio stays low on real data and is higher on noise data, rising "
        "as the noise is memorized", paper=f"{PAPER}, Sec. 3.4", matched=(
            f"matched epochs: every run {s['epochs']} epochs (no fit stop); CSR of the same first "
            f"{s['csr_samples']} training inputs after every epoch"),
        measured=f"CSR after {s['epochs']} epochs: " + ", ".join(
            f"{k} {verdicts.fmt(v)}" for k, v in final.items()) + "; first -> last evaluation: "
        + ", ".join(f"{k} {c[0]['value']['mean']:.3f} -> {c[-1]['value']['mean']:.3f}"
                    for k, c in curves.items() if c and c[0]["value"]["mean"] is not None
                    and c[-1]["value"]["mean"] is not None),
        verdict=word([c == "higher" for c in above + rises], [c == "lower" for c in above]),
        departures=DEPARTURES + (f"CSR on {s['csr_samples']} training inputs",),
        decide="more CSR inputs (csr_samples) and seeds", figure="csr.png"))
  return out


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
    errorbar(axes[0], xs, [c["test_accuracy_early_stopped"] for c in cells_.values()],
             color=color, label=f"random {kind}: early-stopped")
    errorbar(axes[0], xs, [c["test_accuracy_final"] for c in cells_.values()], color=color,
             ls="--", label=f"random {kind}: after {summary['epochs']} epochs")
  axes[0].set(xlabel="fraction of training set that is noise", ylabel="test accuracy",
              title="noise fraction (MLP 1x512)", ylim=(0, 1.02))
  axes[0].legend(fontsize=7)
  for (label, cells_), color in zip(summary["capacity"].items(), ("C0", "C3", "C1")):
    ws = [int(w) for w in cells_]
    errorbar(axes[1], ws, [c["test_accuracy_early_stopped"] for c in cells_.values()],
             color=color, label=f"{label}: early-stopped")
    errorbar(axes[1], ws, [c["test_accuracy_final"] for c in cells_.values()], color=color,
             ls="--", label=f"{label}: after {summary['epochs']} epochs")
  axes[1].set_xscale("log")
  axes[1].set(xlabel="hidden units (one hidden layer)", ylabel="test accuracy",
              title="capacity", ylim=(0, 1.02))
  axes[1].legend(fontsize=7)
  fig.suptitle("early-stopped: at the epoch of best accuracy on "
               f"{summary['validation_examples']} held-out training examples", fontsize=8)
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

  def cells(row: dict) -> str:
    return ", ".join(f"{k}: {c['test_accuracy_early_stopped']['mean']:.3f}/"
                     f"{c['test_accuracy_final']['mean']:.3f}" for k, c in row.items())
  lines.append("test accuracy early-stopped (validation) / after the budget:")
  for kind, row in summary["noise_fraction"].items():
    lines.append(f"  vs {kind} noise fraction: {cells(row)}")
  for label, row in summary["capacity"].items():
    lines.append(f"  vs width ({label}): {cells(row)}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="arpit2017_memorization", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
