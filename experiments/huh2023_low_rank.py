"""Huh et al. 2023: the low-rank simplicity bias (effective rank vs depth; linear over-parameterization).

Command:

    python experiments/huh2023_low_rank.py                # depth sweep on digits + 3 datasets
    python experiments/huh2023_low_rank.py --dataset=mnist5k
    python experiments/huh2023_low_rank.py --quick        # smoke test: digits, few steps

Runtime: 61m07s wall, 492 CPU-s for the default (8 depth cells + 27 over-parameterization
cells, 3 vmapped seeds each, 105 runs, and 8 initialization cells) on 2026-12-04 under load
average 19-24 (the shared 2-core machine); the previous grid (9 over-parameterization cells)
took 186 CPU-s here and 4m11s on the idle machine of 2026-12-02, so about 11 minutes idle is
expected. --quick: ~30 CPU-s.

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
 1. Effective rank vs depth: model `mlp` (depth hidden layers of 128 units;
    activation linear or relu), depths 1, 2, 4, 8 (--depths=1,...,8 for all),
    on --dataset (digits), the penultimate embedding of the test set, at
    initialization (each run's own initial parameters: computed cells, no
    training) and after a fixed 20 epochs (SGD momentum 0.9, lr 0.01, one
    evaluation at the end, so no stop at a fit), in every form memobench
    computes (metrics/effective_rank.py): gram_entropy (Huh et al.'s code:
    entropy of the normalized Gram singular values, no exp; "the authors'
    form"), gram_effective_rank (its exp), effective_rank (Roy & Vetterli:
    normalized singular values, not squared), each raw and column-centered.
    `trend` gives each form's Spearman correlation of the seed mean with
    depth (-1: falls monotonically). A form "falls" when rho <= -0.8 and the
    deepest is below the shallowest beyond 2 standard errors (3 seeds).
 2. Linear over-parameterization: mlp1x512 with model.linear_expansion d in
    {1, 2, 4} (every Dense layer a product of d linear layers; models/mlp.py,
    collapsible with mlp.collapse) on mnist5k, mnist1d and digits, for a fixed
    20 epochs, with the catalogue schedule at each of the learning rates 0.1
    (the catalogue's), 0.03 and 0.01; each (dataset, d), d = 1 included, is
    compared at its own learning rate: the one whose seeds end with the lowest
    mean training loss (training data only; never one with a diverged seed).
    Every factor is initialized by flax's LeCun normal (variance 1/fan_in),
    which preserves the output variance per factor as Huh's released code's
    kaiming_normal(a=1, fan_in) does on its intermediate factors (its last
    factor adds the ReLU gain sqrt(2), which memobench's plain layers lack
    too); the product of d such factors makes the effective step d times
    larger, hence the per-d learning rate.

Measured (digits, width 128, 3 seeds, seed means; 2026-12-04):

  the authors' form, gram_entropy     depth 1     2      4      8     rho
  linear, initialization                    1.48  1.46   1.43   1.37  -1.00 (8 - 1: -0.12 +- 0.13)
  relu, initialization                      1.37  1.14   0.84   0.63  -1.00 (-0.74 +- 0.15)
  linear, trained                           1.98  2.10   1.85   1.79  -0.80 (-0.19 +- 0.04)
  relu, trained                             1.19  1.10   1.13   1.18  -0.20 (-0.01 +- 0.03)
  (every centered form and Roy & Vetterli's: rho -1.00 in all four rows; e.g.
  trained effective_rank, linear 26.1, 21.6, 14.8, 10.4; relu 28.5, 19.5, 16.5, 13.8)
  trained: test accuracy 0.951-0.964, training accuracy 0.965-0.997 over depths.

  over-parameterization   d = 1 (lr)        d = 2 (lr)        d = 4 (lr)        train acc. d = 1/2/4
  mnist5k                 0.940 (0.1)       0.948 (0.1)       0.946 (0.03)      1.000 / 1.000 / 1.000
  mnist1d                 0.573 (0.1)       0.569 (0.03)      0.566 (0.01)      0.916 / 0.817 / 0.791
  digits                  0.973 (0.1)       0.981 (0.1)       0.977 (0.03)      1.000 / 1.000 / 1.000
  d = 4 diverges at lr 0.1 on every dataset (every seed on mnist5k and digits,
  one on mnist1d) and trains at 0.03 and 0.01; summary.json keeps every
  learning rate's outcome (`overparameterization.<dataset>.<d>.grid`).

Verdicts (summary.json "verdicts", computed from these numbers by rules in code):
 (1) in the authors' form, at initialization: PARTLY agrees. ReLU MLPs' gram_entropy
     falls with depth (1.37 -> 0.63, resolved); linear MLPs' falls
     monotonically too, but within seed noise (1.48 -> 1.37, -0.12 +- 0.13).
     After training: PARTLY agrees. Linear MLPs' falls (rho -0.80, -0.19 +- 0.04);
     ReLU MLPs' does not (1.19, 1.10, 1.13, 1.18). Every centered form and Roy
     & Vetterli's fall monotonically with depth in all four cases: on these
     small MLPs the paper's trend shows clearly in those forms, only partly in
     the authors' own uncentered one.
 (2) linear over-parameterization improves generalization: PARTLY agrees. At
     each d's own learning rate and matched fit (every training accuracy
     1.000), d = 2 gains 0.8 points on mnist5k (+0.008 +- 0.002) and digits
     (+0.008 +- 0.001), d = 4 less (+0.006 +- 0.004, +0.004 +- 0.002, not
     resolved); on mnist1d no d gains (-0.004 +- 0.008, -0.007 +- 0.012), and
     there the fit is not matched: at their best rates d = 2 and 4 reach 0.82
     and 0.79 training accuracy in 20 epochs against 0.92 for d = 1. Several
     selected rates sit at the grid's edge (0.1 for d = 1 and 2 everywhere,
     0.01 for d = 4 on mnist1d): a wider grid could move them. The paper's
     mechanism is not seen either: where d = 2 gains, its trained embedding's
     gram_entropy is higher, not lower (mnist5k 2.47 -> 2.96, digits 1.74 ->
     2.68; mnist1d 3.50 -> 3.31).

The previous protocol compared every d at the catalogue lr 0.1 (d = 4 diverged
and was averaged in; on mnist1d d = 2 sat at 0.80 training accuracy against
0.92 for d = 1). The learning-rate grid {0.1, 0.03, 0.01} and the selection rule
were fixed before this run; the rule's rho threshold is inclusive (-0.8 counts),
and a float comparison that first read -0.8 as -0.7999... was fixed after the
run.

Outputs in the workdir: huh2023.png, summary.json
(`effective_rank_by_depth.<linear|relu>.<init|trained>.<form>.<depth>`,
`trend.<linear|relu>.<init|trained>.<form>`, `overparameterization.<dataset>.<d>.{lr,
lr_at_grid_edge,test_accuracy,train_accuracy,train_loss,steps_to_fit,<form>,grid}`,
`verdicts`; cells {mean, std, ci95, n} over seeds, accuracies with per-seed `values`),
leaderboard.json/.html, runs/<cell>/seed<N>/, cells/init_<act>_<depth>/record.json.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries, verdicts
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
  overparam_lrs: tuple[float, ...] = knob((0.1, 0.03, 0.01), "SGD learning rates tried for "
                                          "every (dataset, d); each d is compared at its own, the "
                                          "one of lowest final training loss", lo=1e-6, hi=10.0)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides of every cell, after the "
                                             "budget (recorded as non-standard)")
  quick: bool = False


QUICK = Config(seeds=1, depths=(1, 3), expansions=(1, 2), overparam_datasets=("digits",),
               overparam_lrs=(0.1, 0.01), spec_overrides=summaries.QUICK_SET[:2], quick=True)


def depth_key(act: str, depth: int) -> str:
  return f"depth_{act}_{depth}"


def init_key(act: str, depth: int) -> str:
  return f"init_{act}_{depth}"


def overparam_key(name: str, d: int, lr: float) -> str:
  return f"overparam_{name}_d{d}_lr{lr:g}"


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
      for lr in config.overparam_lrs:
        cells.append(SpecCell(overparam_key(name, d, lr), spec, (
            f"model.linear_expansion={d}", f"optimizer.lr={lr}", "analysis.dynamics=false",
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
  overparam = {name: {str(d): overparam_cell(config, records, name, d) for d in config.expansions}
               for name in config.overparam_datasets}
  summary = {"experiment": "huh2023_low_rank", "dataset": config.dataset, "seeds": config.seeds,
          "quick": config.quick, "width": config.width, "depths": list(depths),
          "depth_budget": list(depth_budget(config)), "expansions": list(config.expansions),
          "effective_rank_by_depth": by_depth, "trend": trend,
          "depth_accuracy": depth_accuracy, "overparam_lrs": list(config.overparam_lrs),
          "overparam_epochs": config.overparam_epochs, "overparameterization": overparam}
  summary["verdicts"] = verdict_records(config, summary)
  return summary


def _stats(runs: list[dict], metric: str) -> dict:
  values = [r["metrics"].get(metric) for r in runs]
  return {**summaries.summarize(values), "values": values}


def overparam_cell(config: Config, records: dict, name: str, d: int) -> dict:
  """Expansion d on `name` at its own learning rate: of `overparam_lrs`, the one whose runs
  end with the lowest mean training loss (training data only; a learning rate with a
  diverged seed is never chosen). Every learning rate's outcome is kept under `grid`."""
  grid_out, best = {}, None
  for lr in config.overparam_lrs:
    runs = records[overparam_key(name, d, lr)]
    diverged = sum(r["run"]["status"] == "diverged" for r in runs)
    loss = summaries.stat(runs, "train_loss")
    grid_out[f"{lr:g}"] = {"train_loss": loss, "train_accuracy": _stats(runs, "train_accuracy"),
                           "test_accuracy": _stats(runs, "test_accuracy"), "diverged": diverged}
    if not diverged and loss["mean"] is not None and (best is None or loss["mean"] < best[1]):
      best = (lr, loss["mean"])
  out: dict = {"lr": None, "lr_at_grid_edge": None, "grid": grid_out,
               "selected_by": "lowest mean final training loss, no diverged seed"}
  if best is None:
    return out
  lr = best[0]
  runs = records[overparam_key(name, d, lr)]
  out.update(lr=lr, lr_at_grid_edge=lr in (min(config.overparam_lrs), max(config.overparam_lrs)),
             test_accuracy=_stats(runs, "test_accuracy"),
             train_accuracy=_stats(runs, "train_accuracy"),
             train_loss=summaries.stat(runs, "train_loss"),
             steps_to_fit=summaries.stat(runs, "steps_to_fit"))
  for form in FORMS:
    out[form] = summaries.summarize(r["memorization"]["effective_rank"][form] for r in runs)
  return out


# --------------------------------------------------------------------------
# Verdicts (computed from the summary's numbers)
# --------------------------------------------------------------------------

AUTHORS_FORM = "gram_entropy"  # Huh et al.'s released code: entropy of the Gram spectrum


def _falls(by_form: dict, depths: list, form: str) -> int:
  """+1: the form falls with depth (Spearman rho <= -0.8 and deepest below shallowest beyond
  2 se), -1: it rises likewise, 0: neither."""
  cells_ = [by_form[form][str(d)] for d in depths]
  rho = spearman(depths, [c["mean"] for c in cells_])
  fell = verdicts.sign(cells_[0], cells_[-1])  # +1: the deepest below the shallowest
  if rho is None or fell == 0:
    return 0
  rho = round(rho, 9)  # a correlation of exactly -0.8 comes out as -0.7999999999999999
  return 1 if rho <= -0.8 and fell == 1 else -1 if rho >= 0.8 and fell == -1 else 0


def _rho(trend: dict, act: str, stage: str, form: str) -> str:
  rho = trend[act][stage][form]["spearman_rho_vs_depth"]
  return "n/a" if rho is None else f"{rho:+.2f}"


def verdict_records(config: Config, summary: dict) -> list[dict]:
  out = []
  depths = summary["depths"]
  by_depth, trend = summary["effective_rank_by_depth"], summary["trend"]
  acc = summary["depth_accuracy"]
  train_accs = [acc[a][str(d)]["train_accuracy"]["mean"] for a in ACTIVATIONS for d in depths]
  train_accs = [v for v in train_accs if v is not None]
  fit = (f"; training accuracy {min(train_accs):.3f}-{max(train_accs):.3f} over depths"
         if train_accs else "")
  for stage, when in (("init", "at initialization"), ("trained", "after training")):
    word = verdicts.word([_falls(by_depth[a][stage], depths, AUTHORS_FORM) for a in ACTIVATIONS])
    rows = []
    for a in ACTIVATIONS:
      cells_ = by_depth[a][stage][AUTHORS_FORM]
      d, se = verdicts.difference(cells_[str(depths[-1])], cells_[str(depths[0])])
      rows.append(f"{a} " + ", ".join(f"{cells_[str(x)]['mean']:.2f}" for x in depths)
                  + f" (rho {_rho(trend, a, stage, AUTHORS_FORM)}; deepest - shallowest "
                  + ("n/a" if d is None else f"{d:+.2f}" + ("" if se is None else f" +- {se:.2f}"))
                  + ")")
    others = ", ".join(f"{form} {_rho(trend, 'linear', stage, form)}/"
                       f"{_rho(trend, 'relu', stage, form)}"
                       for form in ("gram_entropy_centered", "effective_rank",
                                    "effective_rank_centered"))
    out.append(verdicts.verdict(
        f"deeper networks have lower effective-rank embeddings {when}",
        paper="Huh et al. 2023, Fig. 2-4 (the entropy of the embedding Gram matrix's normalized "
              "singular values, as their released code computes it)",
        matched=(f"width {summary['width']}; the test embedding at each run's own initial "
                 "parameters" if stage == "init" else
                 f"width {summary['width']}; every depth trained the same fixed budget "
                 f"({', '.join(summary['depth_budget'])})" + fit),
        measured=(f"the authors' form ({AUTHORS_FORM}) at depth {', '.join(map(str, depths))}: "
                  + "; ".join(rows) + f". Other forms' rho with depth (linear/relu): {others}"),
        verdict=word, decide=("more seeds or depths" if word == "inconclusive" else None),
        figure="huh2023.png",
        departures=(f"MLPs of width {summary['width']} on {summary['dataset']} (the paper: "
                    "wider MLPs and CNNs); 'falls' = Spearman rho <= -0.8 and the deepest "
                    "below the shallowest by 2 se",)))
  # Linear over-parameterization, each d at its own learning rate.
  signs, rows = [], []
  for name, by_d in summary["overparameterization"].items():
    base = by_d.get("1")
    if base is None or base["lr"] is None:
      continue
    ds, parts = [], []
    for d, cell in by_d.items():
      if d == "1" or cell["lr"] is None:
        continue
      diff, se = verdicts.difference(cell["test_accuracy"], base["test_accuracy"])
      ds.append(verdicts.sign(cell["test_accuracy"], base["test_accuracy"]))
      parts.append(f"d={d} {cell['test_accuracy']['mean']:.3f} at lr {cell['lr']:g} ({diff:+.3f}"
                   + (f" +- {se:.3f}" if se is not None else "")
                   + f"; train {cell['train_accuracy']['mean']:.3f})")
    signs.append(1 if 1 in ds else -1 if -1 in ds else 0)  # one d > 1 that gains is enough
    gap = max(abs(c["train_accuracy"]["mean"] - base["train_accuracy"]["mean"])
              for c in by_d.values() if c["lr"] is not None)
    edges = [f"d={d} {c['lr']:g}" for d, c in by_d.items() if c["lr_at_grid_edge"]]
    rows.append(f"{name}: d=1 {base['test_accuracy']['mean']:.3f} at lr {base['lr']:g} (train "
                f"{base['train_accuracy']['mean']:.3f}), " + ", ".join(parts)
                + (" - fit matched (training accuracies within 0.01)" if gap <= 0.01 else
                   f" - fit NOT matched (training accuracies differ by up to {gap:.3f})")
                + (f"; at the grid's edge: {', '.join(edges)}" if edges else ""))
  word = verdicts.word(signs)
  lrs = ", ".join(f"{lr:g}" for lr in summary["overparam_lrs"])
  out.append(verdicts.verdict(
      "linear over-parameterization of a non-linear network (each layer a product of d linear "
      "layers) improves generalization", paper="Huh et al. 2023, Sec. 6",
      matched=(f"a fixed {summary['overparam_epochs']} epochs; every d, d = 1 included, at its "
               f"own SGD learning rate of {{{lrs}}} (catalogue schedule otherwise): the one with "
               "the lowest mean final training loss (training data only; never one with a "
               "diverged seed)"),
      measured="test accuracy (difference to d=1 +- se): " + "; ".join(rows),
      verdict=word, decide=("more seeds (no difference to d=1 beyond 2 se)"
                            if word == "inconclusive" else None),
      figure="huh2023.png",
      departures=("an MLP 1x512 on small datasets for a fixed budget; the paper: CNNs on "
                  "CIFAR and ImageNet",
                  "factor initialization: flax's LeCun normal on every factor (variance "
                  "1/fan_in: each factor preserves the output variance, as Huh's code's "
                  "kaiming_normal(a=1, fan_in) does on its intermediate factors; Huh's last "
                  "factor adds the ReLU gain sqrt(2), which memobench's plain layers lack too)")))
  return out


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
  lines.append("over-parameterization: test accuracy (gram_entropy) by expansion d, each at the "
               "learning rate of its lowest training loss")
  for name, by_d in summary["overparameterization"].items():
    lines.append(f"  {name:8s} " + "  ".join(
        f"d={d}: every lr diverged" if c["lr"] is None else
        f"d={d}: {_m(c['test_accuracy'])} ({_m(c['gram_entropy'])}) at lr {c['lr']:g}"
        for d, c in by_d.items()))
  return "\n".join(lines)


_NONE = {"mean": None, "std": None}  # a cell without a learning rate that trained (all diverged)


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
      errorbar(ax, list(expansions), [overparam[name][str(d)].get(field, _NONE)
                                      for d in expansions], color=f"C{k}", label=name)
    ax.set(xlabel="linear expansion d (each at its own lr)", ylabel=field, xscale="log",
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
