"""Huh et al. 2023: the low-rank simplicity bias (effective rank vs depth; linear over-parameterization).

Command:

    python experiments/huh2023_low_rank.py                # depth sweep on digits + 3 datasets
    python experiments/huh2023_low_rank.py --dataset=mnist5k
    python experiments/huh2023_low_rank.py --quick        # smoke test: digits, few steps

Runtime: 4m11s wall (374 CPU-s) for the default (4 depths x 2 activations + 9
over-parameterization cells, 3 vmapped seeds each, 51 runs) on the idle 2-core
machine (2026-12-02); that run reproduced the committed summary.json exactly.
--quick: 45 s wall alone (68 s in the test suite beside a second worker).

The paper (Huh, Mobahi, Zhang, Cheung, Agrawal, Isola, "The low-rank simplicity
bias in deep networks", TMLR 2023) finds that (1) "deeper networks are
inductively biased to find solutions with lower effective rank embeddings",
at initialization and after training, for linear and non-linear networks of
the same width (their Fig. 2-4, effective rank of the embedding Gram matrix,
as their released code computes it), and (2) that linearly over-parameterizing
a non-linear network, expanding each linear layer into a product of linear
layers with nothing between them, which leaves the function class unchanged,
improves generalization (their CIFAR and ImageNet CNNs, Sec. 6).

What this script measures:
 1. Effective rank vs depth: model `mlp` (model.depth hidden layers of WIDTH
    units; model.activation linear or relu), depth 1..8, on --dataset (digits),
    the penultimate embedding of the test set, at initialization (the run's own
    initial parameters) and after training (SGD momentum 0.9, lr DEPTH_LR,
    until 0.99 training accuracy or DEPTH_EPOCHS epochs), in every form
    memobench computes (metrics/effective_rank.py): gram_entropy (Huh et al.'s
    code: entropy of the normalized Gram singular values, no exp),
    gram_effective_rank (its exp), effective_rank (Roy & Vetterli: normalized
    singular values, not squared), each raw and column-centered. `trend` gives
    each form's Spearman correlation of the seed-mean with depth (-1: falls
    monotonically).
 2. Linear over-parameterization: mlp1x512 with model.linear_expansion d in
    {1, 2, 4} (every Dense layer a product of d linear layers; models/mlp.py,
    collapsible with mlp.collapse) on mnist5k, mnist1d and digits, each with
    its catalogue optimizer, until 0.99 training accuracy or OVERPARAM_EPOCHS
    epochs; test accuracy and effective rank of the trained embedding.

Measured (digits, width 128, 3 seeds, means over seeds; committed in
experiments/results/huh2023_low_rank_digits/). At initialization (every depth
1..8 for linear, computed as `init_ranks` does; no training):

  linear  d=1    2    3    4    5    6    7    8
  gram_entropy                 1.48 1.46 1.47 1.43 1.41 1.36 1.41 1.37
  gram_effective_rank_centered 18.6 17.0 15.6 14.3 13.0 12.3 11.3 10.7
  effective_rank (R&V)         27.2 25.6 24.3 22.8 21.5 20.2 19.5 18.4
  effective_rank_centered      36.6 34.3 32.5 30.6 28.7 27.2 25.6 24.4
  relu    depth 1, 2, 4, 8: gram_entropy 1.37, 1.14, 0.84, 0.63;
          gram_entropy_centered 3.13, 3.10, 2.98, 2.63; effective_rank 46.7, 42.8, 35.8, 29.0

After training (20 epochs, lr 0.01, test accuracy 0.956-0.962 at every depth):

  linear  depth 1, 2, 4, 8: gram_entropy 1.98, 2.10, 1.85, 1.79;
          gram_entropy_centered 2.46, 2.05, 1.77, 1.74; effective_rank 26.1, 21.6, 14.8, 10.4
  relu    depth 1, 2, 4, 8: gram_entropy 1.19, 1.10, 1.13, 1.20;
          gram_entropy_centered 2.41, 2.01, 1.78, 1.65; effective_rank 28.5, 19.5, 16.5, 13.9

  Spearman rho of the seed mean with depth (-1: falls monotonically):
  form                 linear/init linear/trained relu/init relu/trained
  gram_entropy (Huh)      -1.00       -0.80        -1.00      +0.40
  every centered form     -1.00       -1.00        -1.00      -1.00
  effective_rank (R&V)    -1.00       -1.00        -1.00      -1.00

Agreement, (1): at initialization every form falls with depth, as the paper
finds. After training the centered forms and Roy & Vetterli's fall
monotonically with depth for linear and ReLU MLPs (the paper's trend), while
the form of Huh's released code (uncentered gram_entropy) does not: it rises
from depth 1 to 2 for linear MLPs and is flat-to-rising for trained ReLU
MLPs (rho +0.40). On these small MLPs the paper's trend shows in the centered
and Roy & Vetterli forms, not in the authors' own form.

(2) Linear over-parameterization (mlp1x512, catalogue optimizer, test
accuracy, 3 seeds): mnist5k d=1 0.941, d=2 0.950; digits 0.973, 0.981;
mnist1d 0.577, 0.572; d=4 diverged on all three (test accuracy at chance,
NaN losses) at the catalogue learning rate. Partly agrees: d=2 gains about a
point on mnist5k and digits, not on mnist1d; d=4 would need a smaller
learning rate or an initialization scaled for the product (not tried: the
paper's own setting is CNNs on CIFAR/ImageNet, and tuning d=4 until it
helps was not done).

Outputs in the workdir: huh2023.png, summary.json
(`effective_rank_by_depth.<linear|relu>.<init|trained>.<form>.<depth>`,
`trend.<linear|relu>.<init|trained>.<form>`,
`overparameterization.<dataset>.<d>.{test_accuracy,train_accuracy,steps_to_fit,<form>}`;
cells {mean, std, ci95, n} over seeds), leaderboard.json/.html, runs/<cell>/seed<N>/.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import knob

ACTIVATIONS = ("linear", "relu")
# Every run evaluates once, at the end of its fixed budget (no stop on fitting).
ONE_EVALUATION = "budget.eval_every_steps=1000000"
FORMS = ("gram_entropy", "gram_effective_rank", "effective_rank",
         "gram_entropy_centered", "gram_effective_rank_centered", "effective_rank_centered")


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "dataset of the depth sweep")
  seeds: int = knob(3, "seeds per cell, trained together", lo=1)
  depths: tuple[int, ...] = knob((1, 2, 4, 8), "hidden layers of the depth sweep "
                                 "(1,2,3,4,5,6,7,8 for every depth)", lo=1, hi=64)
  width: int = knob(128, "units per hidden layer of the depth sweep", lo=1)
  depth_lr: float = knob(0.01, "SGD learning rate of the depth sweep", lo=1e-8, hi=10.0)
  depth_epochs: int = knob(20, "fixed epochs of every depth-sweep run", lo=1)
  expansions: tuple[int, ...] = knob((1, 2, 4), "linear expansions d of the "
                                     "over-parameterization sweep", lo=1, hi=16)
  overparam_datasets: tuple[str, ...] = knob(("mnist5k", "mnist1d", "digits"),
                                             "datasets of the over-parameterization sweep")
  overparam_epochs: int = knob(20, "fixed epochs of every over-parameterization run", lo=1)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides of every cell, after the "
                                             "budget (recorded as non-standard)")
  quick: bool = False


QUICK = Config(seeds=1, depths=(1, 3), expansions=(1, 2), overparam_datasets=("digits",),
               spec_overrides=summaries.QUICK_SET[:2], quick=True)


def depth_key(act: str, depth: int) -> str:
  return f"depth_{act}_{depth}"


def init_key(act: str, depth: int) -> str:
  return f"init_{act}_{depth}"


def overparam_key(name: str, d: int) -> str:
  return f"overparam_{name}_d{d}"


def depth_budget(config: Config) -> tuple[str, ...]:
  return (f"budget.max_epochs={config.depth_epochs}", f"optimizer.lr={config.depth_lr}",
          ONE_EVALUATION, *config.spec_overrides)


def depth_overrides(config: Config, act: str, depth: int) -> tuple[str, ...]:
  return ("model.name=mlp", f"model.depth={depth}", f"model.width={config.width}",
          f"model.activation={act}", "analysis.dynamics=false", *depth_budget(config))


@dataclasses.dataclass(frozen=True)
class InitConfig:
  """The effective ranks at initialization of a spec cell's seeds (its spec, overrides applied)."""
  spec: object          # memobench.specs.Spec
  seeds: int


def init_ranks(config: InitConfig, ctx) -> dict:
  """Every form's effective rank of the test embedding at each seed's initial parameters.

  The parameters a run of the spec with seed s starts from: module.init on the key
  fold_in(run_key(s), prng.INIT), as training/steps.py's init does. No training.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from memobench import models, prng  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  from memobench.metrics import effective_rank  # pylint: disable=import-outside-toplevel
  spec = config.spec
  dataset = datasets.load(spec.dataset, ctx.data_dir)
  module = models.build(spec.model, dataset.num_classes)
  out = []
  for seed in range(spec.seed, spec.seed + config.seeds):
    key = jax.random.fold_in(prng.run_key(seed), prng.INIT)
    variables = module.init(key, jnp.zeros((1, *dataset.input_shape), jnp.float32), train=False)
    h = effective_rank.penultimate_features(module, variables["params"], {}, dataset.x_test)
    out.append({k: float(v) for k, v in effective_rank.spectra(h).items()})
  return {"seeds": list(range(spec.seed, spec.seed + config.seeds)), "ranks": out}


def grid(config: Config) -> list:
  from memobench import catalogue, specs  # pylint: disable=import-outside-toplevel
  base = catalogue.get(f"{config.dataset}_clean")
  cells: list = []
  for act in ACTIVATIONS:
    for depth in config.depths:
      overrides = depth_overrides(config, act, depth)
      cells.append(SpecCell(depth_key(act, depth), base, overrides, config.seeds))
  for name in config.overparam_datasets:
    spec = catalogue.get(f"{name}_clean")
    for d in config.expansions:
      cells.append(SpecCell(overparam_key(name, d), spec, (
          f"model.linear_expansion={d}", "analysis.dynamics=false",
          f"budget.max_epochs={config.overparam_epochs}", ONE_EVALUATION,
          *config.spec_overrides), config.seeds))
  for act in ACTIVATIONS:  # no training: a function of each depth cell's spec and seeds
    for depth in config.depths:
      spec, _ = specs.with_overrides(base, list(depth_overrides(config, act, depth)))
      cells.append(ComputedCell(init_key(act, depth), init_ranks, InitConfig(spec, config.seeds)))
  return cells


# --------------------------------------------------------------------------
# Statistics (pure)
# --------------------------------------------------------------------------


def spearman(xs, ys) -> float | None:
  """Spearman's rank correlation (average ranks for ties); None if undefined."""
  pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
  if len(pairs) < 3:
    return None
  def ranks(v):
    v = np.asarray(v, np.float64)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    for value in np.unique(v):  # ties share their mean rank
      r[v == value] = r[v == value].mean()
    return r
  rx, ry = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
  if rx.std() == 0 or ry.std() == 0:
    return None
  return float(np.corrcoef(rx, ry)[0, 1])


def summarize(config: Config, records: dict) -> dict:
  depths = config.depths
  by_depth: dict = {}
  trend: dict = {}
  for act in ACTIVATIONS:
    for stage in ("init", "trained"):
      for form in FORMS:
        by_depth.setdefault(act, {}).setdefault(stage, {})[form] = {}
    for depth in depths:
      init = records[init_key(act, depth)]["ranks"]
      trained = [r["memorization"]["effective_rank"] for r in records[depth_key(act, depth)]]
      for form in FORMS:
        by_depth[act]["init"][form][str(depth)] = summaries.summarize(v[form] for v in init)
        by_depth[act]["trained"][form][str(depth)] = summaries.summarize(
            v[form] for v in trained)
    for stage in ("init", "trained"):
      trend.setdefault(act, {})[stage] = {
          form: {"spearman_rho_vs_depth": spearman(
                     depths, [by_depth[act][stage][form][str(d)]["mean"] for d in depths]),
                 "depth_1": by_depth[act][stage][form][str(depths[0])]["mean"],
                 f"depth_{depths[-1]}": by_depth[act][stage][form][str(depths[-1])]["mean"]}
          for form in FORMS}
  depth_accuracy = {act: {str(d): {
      "test_accuracy": summaries.stat(records[depth_key(act, d)], "test_accuracy"),
      "train_accuracy": summaries.stat(records[depth_key(act, d)], "train_accuracy")}
      for d in depths} for act in ACTIVATIONS}
  overparam: dict = {}
  for name in config.overparam_datasets:
    for d in config.expansions:
      runs = records[overparam_key(name, d)]
      cell = {"test_accuracy": summaries.stat(runs, "test_accuracy"),
              "train_accuracy": summaries.stat(runs, "train_accuracy"),
              "steps_to_fit": summaries.stat(runs, "steps_to_fit")}
      for form in FORMS:
        cell[form] = summaries.summarize(r["memorization"]["effective_rank"][form] for r in runs)
      overparam.setdefault(name, {})[str(d)] = cell
  return {"experiment": "huh2023_low_rank", "dataset": config.dataset, "seeds": config.seeds,
          "quick": config.quick, "width": config.width, "depths": list(depths),
          "depth_budget": list(depth_budget(config)), "expansions": list(config.expansions),
          "effective_rank_by_depth": by_depth, "trend": trend,
          "depth_accuracy": depth_accuracy, "overparameterization": overparam}


# --------------------------------------------------------------------------
# Report and figure (from the summary only)
# --------------------------------------------------------------------------


def _m(cell) -> str:
  return "n/a" if cell["mean"] is None else f"{cell['mean']:.3f}"


def report(config: Config, summary: dict) -> str:
  trend = summary["trend"]
  lines = ["Spearman rho of the seed-mean effective rank with depth (-1: falls monotonically)",
           f"{'form':30s} " + " ".join(f"{a}/{s}".rjust(14) for a in ACTIVATIONS
                                       for s in ("init", "trained"))]
  for form in FORMS:
    vals = [trend[a][s][form]["spearman_rho_vs_depth"] for a in ACTIVATIONS
            for s in ("init", "trained")]
    lines.append(f"{form:30s} " + " ".join(("n/a" if v is None else f"{v:+.2f}").rjust(14)
                                           for v in vals))
  lines.append("over-parameterization: test accuracy (gram_entropy) by expansion d")
  for name, by_d in summary["overparameterization"].items():
    lines.append(f"  {name:8s} " + "  ".join(
        f"d={d}: {_m(c['test_accuracy'])} ({_m(c['gram_entropy'])})" for d, c in by_d.items()))
  return "\n".join(lines)


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  depths, expansions = summary["depths"], summary["expansions"]
  by_depth, overparam = summary["effective_rank_by_depth"], summary["overparameterization"]
  fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
  panels = [("gram_entropy", "gram_entropy (Huh et al.'s code)"),
            ("gram_effective_rank_centered", "gram_effective_rank, centered"),
            ("effective_rank", "effective_rank (Roy & Vetterli)")]
  for col, (form, title) in enumerate(panels):
    for row, stage in enumerate(("init", "trained")):
      ax = axes[row, col]
      for act, color in zip(ACTIVATIONS, ("C0", "C3")):
        errorbar(ax, list(depths), [by_depth[act][stage][form][str(d)] for d in depths],
                 color=color, label=act)
      ax.set(xlabel="depth (hidden layers)", ylabel=form, title=f"{title}: {stage}")
      ax.legend(fontsize=7)
  for row, (field, title) in enumerate((("test_accuracy", "test accuracy"),
                                        ("gram_entropy", "embedding gram_entropy"))):
    ax = axes[row, 3]
    for k, name in enumerate(overparam):
      errorbar(ax, list(expansions), [overparam[name][str(d)][field] for d in expansions],
               color=f"C{k}", label=name)
    ax.set(xlabel="linear expansion d", ylabel=field, xscale="log",
           title=f"over-parameterized mlp1x512: {title}")
    ax.legend(fontsize=7)
  fig.suptitle(f"Huh et al. 2023 low-rank simplicity bias: depth sweep on {summary['dataset']} "
               f"(width {summary['width']}), {summary['seeds']} seed(s)"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"huh2023.png": fig}


EXPERIMENT = driver.Experiment(
    name="huh2023_low_rank", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
