"""Granziol et al.: the mini-batch Hessian's top eigenvalue, and the largest stable learning rate vs batch size.

Command:

    python experiments/granziol_batch_spectrum.py            # digits, MLP 1x512, 3 seeds
    python experiments/granziol_batch_spectrum.py --quick    # smoke test: two batch sizes, 1 seed

Runtime: 3m25s wall (333 CPU-s) for the default on the idle 2-core machine
(2026-12-02, nothing cached: --no_resume; 3m12s with the earlier Adam grid,
which reproduced the first committed summary.json exactly). --quick (digits,
1 seed) used ~50 CPU seconds.

Granziol, Zohren & Roberts, "Learning rates as a function of batch size: a
random matrix theory approach to neural network training" (JMLR 2022). The
paper's findings, in its terms: (1) the Hessian of a mini-batch loss H_B is
the empirical (full-data) Hessian plus a fluctuation matrix, so its extreme
eigenvalues exceed the empirical Hessian's and shrink toward them as the batch
size B grows; (2) hence the largest stable learning rate grows with B:
linearly for SGD and as sqrt(B) for adaptive methods (Adam), until B is large
enough that the empirical Hessian's own extremes dominate.

Here, on the dataset's clean spec trained to its fit threshold (SGD,
memobench's defaults), for each seed:
  (1) the top eigenvalue of H_B (mean cross-entropy of B training examples,
      evaluation mode; Lanczos, 20 steps; memobench.metrics.batch_hessian) for
      B = 16, 32, ..., 1024 averaged over 4 disjoint random batches, and of the
      full-data Hessian (B = n, the whole training set);
  (2) for B = 16 ... 1024 and each learning rate of a factor-2 grid, a short
      run (100 steps, a fresh random batch each step, from the seed's
      initialization) of plain SGD (no momentum) and of Adam; a run is stable
      when every batch loss is finite and its final training loss (whole
      training set) is below the initial one; the largest stable rate is the
      largest grid rate below the grid's first unstable one. The runs are one
      jitted program per (optimizer, B), vmapped over seeds x learning rates
      (experiments/programs/lr_stability.py: the training loop vmaps seeds
      only, and ~150 separate runs of 100 steps would cost more in
      compilation than in training).
  The predicted scalings are drawn through the measured B = 16 value; the
  fitted slope of log2(max lr) against log2(B) is reported per seed (1 for
  linear, 0.5 for square root).

Measured (digits_clean fitted by SGD, seeds 0, 1, 2; committed in
experiments/results/granziol_batch_spectrum_digits/):

  full Hessian top eigenvalue   1.723, 1.554, 1.272
  H_B top (mean of 4 batches)   B=16: 2.07, 5.60, 4.53   B=32: 2.82, 4.37, 2.25
                                B=64: 2.07, 2.47, 1.80   B=128: 1.78, 1.80, 1.68
                                B=256: 1.88, 1.70, 1.44  B=512: 1.81, 1.67, 1.39
                                B=1024 (one batch): 1.70, 1.71, 1.20
  largest stable lr (seed mean) B = 16, 32, 64, 128, 256, 512, 1024:
    SGD   1.67, 2.33, 5.33, 6.0, 9.33, 7.33, 7.33   slope 0.30 +- 0.21 (predicted 1)
    Adam  0.42, 1.17, 2.67, 8.67, 9.33, 8.67, 12.0  slope 0.75 +- 0.18 (predicted 0.5)
          (grid 2^-12 .. 2^4; still stable at its top, 16, for 1 of 3 seeds at
          B = 128, 256, 512 and 2 of 3 at B = 1024: censored there)

(1) Agrees: the batch Hessian's top eigenvalue exceeds the full one at small
B (up to 3.6x at B = 16) and falls toward it as B grows (within ~10% from
B = 128 on; B = 1024 is a single batch, which can fall below it).
(2) Partly for SGD, not confirmed for Adam. SGD's largest stable rate grows
with B, roughly linearly from 16 to 64 and flat from 256 on (the full
Hessian's own extremes dominate there, as the paper expects for large B), so
the fitted slope over all B (0.30) is far below 1; per seed it is noisy (one
factor-2 grid step is the resolution). Adam: the first run's grid stopped at
2^0 = 1.0, where every B >= 64 was censored (slope 0.17, a lower bound); the
grid now reaches 2^4 (its extension was the next run named then, made before
looking further). Adam's largest stable rate grows FASTER than sqrt(B): 0.42
-> 8.67 from B = 16 to 128 (21x for 8x the batch; sqrt(B) predicts 2.8x,
linear 8x), then flattens (8.7-12 from 128 to 1024, partly censored by the
grid's top, 16). Fitted slope 0.75 +- 0.18 against the predicted 0.5: the
sqrt(B) scaling is not confirmed. Caveat: the stability rule (finite losses
and a final loss below the initial one after 100 steps) is weak for Adam,
whose step size does not shrink with the gradient: a run at lr 16 that lowers
the loss counts as stable.

Outputs in the workdir: granziol.png, summary.json (cells: mean, sample std,
Student-t 95% CI, n over seeds), cells/clean/ (the training cell: seed<N>.msgpack
parameters, train.log; experiments/programs/trained_models.py), cells/hessian/,
cells/<optimizer>_b<B>/ (each the raw finite/initial/final losses of one
vmapped grid of short runs: experiments/programs/lr_stability.py). A rerun keeps
every cell whose config is unchanged. `--print_config` lists the knobs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from experiments import driver, summaries
from experiments.cells import ComputedCell
from experiments.knobs import knob
from experiments.programs import lr_stability, trained_models

HESSIAN_BATCHES = (16, 32, 64, 128, 256, 512, 1024)
LR_BATCHES = (16, 32, 64, 128, 256, 512, 1024)
LR_GRIDS = {"sgd": tuple(2.0 ** k for k in range(-5, 8)),
            "adam": tuple(2.0 ** k for k in range(-12, 5))}
PREDICTED_EXPONENT = {"sgd": 1.0, "adam": 0.5}
STABLE_RULE = "all batch losses finite and final full training loss < initial"


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset: the spec <dataset>_clean, trained to fit")
  seeds: int = knob(3, "seeds, trained together", lo=1)
  steps: int = knob(100, "steps of each stability run", lo=1, hi=1_000_000)
  hessian_batches: tuple[int, ...] = knob(HESSIAN_BATCHES, "batch sizes B of H_B", lo=1)
  per_batch: int = knob(4, "random disjoint batches per B whose top eigenvalues are averaged",
                        lo=1)
  lanczos_iters: int = knob(20, "Lanczos steps of each top eigenvalue", lo=2, hi=10_000)
  lr_batches: tuple[int, ...] = knob(LR_BATCHES, "batch sizes of the stability runs", lo=1)
  lr_grid_stride: int = knob(1, "every k-th rate of the factor-2 grids (--quick: 3)", lo=1)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides of the training")
  quick: bool = False


QUICK = Config(seeds=1, steps=10, hessian_batches=(16,), per_batch=2, lanczos_iters=5,
               lr_batches=(16, 64), lr_grid_stride=3,
               spec_overrides=("budget.max_steps=20", "budget.eval_every_steps=10"), quick=True)


@dataclasses.dataclass(frozen=True)
class HessianConfig:
  """What batch_spectrum reads besides the models."""
  batches: tuple[int, ...]
  per_batch: int
  lanczos_iters: int


@dataclasses.dataclass(frozen=True)
class StabilityConfig:
  """One vmapped grid of short runs: everything stability_grid reads."""
  spec: Any               # memobench.specs.Spec: the dataset and model (hashed)
  seeds: tuple[int, ...]
  kind: str
  batch: int
  steps: int
  lrs: tuple[float, ...]


def lr_grids(config: Config) -> dict[str, tuple[float, ...]]:
  return {k: v[::config.lr_grid_stride] for k, v in LR_GRIDS.items()}


def train_spec(config: Config):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_clean"), [
      "analysis.dynamics=false", "analysis.effective_rank=false", *config.spec_overrides])
  return workload.validate(spec)


def grid(config: Config) -> list[ComputedCell]:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  spec = train_spec(config)
  n = trained_models.dataset(spec).num_train
  cells = [
      ComputedCell("clean", trained_models.train, trained_models.TrainConfig(spec, config.seeds)),
      ComputedCell("hessian", batch_spectrum, HessianConfig(
          tuple(b for b in config.hessian_batches if b < n), config.per_batch,
          config.lanczos_iters), needs=("clean",))]
  # The stability runs start from each seed's initialization: they read the dataset and
  # the model only, not the trained models (nor the training budget).
  base = catalogue.get(f"{config.dataset}_clean")
  seeds = tuple(base.seed + i for i in range(config.seeds))
  for kind, lrs in lr_grids(config).items():
    for b in (b for b in config.lr_batches if b <= n):
      cells.append(ComputedCell(f"{kind}_b{b}", stability_grid, StabilityConfig(
          base, seeds, kind, b, config.steps, lrs)))
  return cells


def batch_spectrum(config: HessianConfig, ctx) -> dict:
  """Per seed: the top eigenvalue of H_B (mean over `per_batch` batches) for each B, and of
  the full-data Hessian."""
  import jax  # pylint: disable=import-outside-toplevel
  from memobench import prng  # pylint: disable=import-outside-toplevel
  from memobench.metrics import batch_hessian  # pylint: disable=import-outside-toplevel
  models = trained_models.load(ctx.inputs["clean"])
  wl = models.workload(ctx.data_dir)
  ds, module = wl.dataset, wl.module
  n = ds.num_train
  top = batch_hessian.TopEigenvalue(module, models.trained[0].model_state, config.lanczos_iters)
  rows = []
  for t in models.trained:
    key = jax.random.fold_in(prng.run_key(t.seed), prng.SHARPNESS)
    batch_top = {}
    for b in config.batches:
      values = batch_hessian.batch_top_eigenvalues(top, t.params, ds.x_train, ds.y_train, b,
                                                   config.per_batch, jax.random.fold_in(key, b))
      batch_top[str(b)] = float(np.mean(values))
    full = batch_hessian.batch_top_eigenvalues(top, t.params, ds.x_train, ds.y_train, n, 1,
                                               key)[0]
    rows.append({"seed": t.seed, "full": full, "batch": batch_top})
    ctx.log(f"seed {t.seed}: full Hessian top {full:.4g}; batches " + ", ".join(
        f"B={b}: {v:.4g}" for b, v in batch_top.items()))
  return {"num_train": n, "seeds": rows}


def stability_grid(config: StabilityConfig, ctx) -> dict:
  """The grid's short runs (experiments/programs/lr_stability.py), raw: the rule is summarize's."""
  from memobench import workload  # pylint: disable=import-outside-toplevel
  wl = workload.resolve(config.spec, ctx.data_dir)
  out = lr_stability.run_grid(wl, list(config.seeds), list(config.lrs), config.batch,
                              config.steps, config.kind)
  return {"seeds": list(config.seeds), "lrs": list(config.lrs), **out}


def is_stable(finite, initial, final) -> bool:
  """The rule of this protocol: every batch loss finite and a final loss below the initial."""
  return bool(finite) and final is not None and initial is not None and final < initial


def max_stable_lr(stable, grid) -> float | None:
  """The largest grid rate below the first unstable one (None: the smallest is unstable)."""
  best = None
  for ok, lr in zip(stable, grid):
    if not ok:
      break
    best = lr
  return best


def slope(batches, lrs) -> float | None:
  pts = [(np.log2(b), np.log2(v)) for b, v in zip(batches, lrs) if v is not None]
  if len(pts) < 2:
    return None
  xs, ys = np.array(pts).T
  return float(np.polyfit(xs, ys, 1)[0])


def summarize(config: Config, records: dict) -> dict:
  cell = summaries.summarize
  hessian = records["hessian"]
  n = hessian["num_train"]
  hessian_batches = [b for b in config.hessian_batches if b < n]
  lr_batches = [b for b in config.lr_batches if b <= n]
  grids = lr_grids(config)
  seeds = len(hessian["seeds"])
  max_lr = {kind: {} for kind in grids}
  stable_table = {kind: {} for kind in grids}
  for kind, lrs in grids.items():
    for b in lr_batches:
      r = records[f"{kind}_b{b}"]
      stable = [[is_stable(f, i, e) for f, i, e in zip(*rows)]
                for rows in zip(r["finite"], r["initial"], r["final"])]
      stable_table[kind][str(b)] = [[int(v) for v in row] for row in stable]
      max_lr[kind][b] = [max_stable_lr(row, lrs) for row in stable]
  granziol = {
      "batch_top_eigenvalue": {str(b): cell(s["batch"][str(b)] for s in hessian["seeds"])
                               for b in hessian_batches},
      "full_top_eigenvalue": cell(s["full"] for s in hessian["seeds"]),
      "max_lr": {kind: {str(b): cell(max_lr[kind][b]) for b in lr_batches} for kind in grids},
      "max_lr_slope": {kind: cell(slope(lr_batches, [max_lr[kind][b][s] for b in lr_batches])
                                  for s in range(seeds)) for kind in grids},
      "predicted_slope": PREDICTED_EXPONENT,
      "stable": stable_table,
  }
  return {"experiment": "granziol_batch_spectrum", "dataset": config.dataset,
          "seeds": config.seeds, "quick": config.quick,
          "settings": {"spec": records["clean"]["spec"]["name"], "num_train": n,
                       "hessian_batches_per_size": config.per_batch,
                       "lanczos_iters": config.lanczos_iters, "stability_steps": config.steps,
                       "lr_grids": {k: list(v) for k, v in grids.items()},
                       "stable_rule": STABLE_RULE},
          "trained": {k: cell(f[k] for f in records["clean"]["seeds"])
                      for k in ("train_accuracy", "test_accuracy", "steps")},
          "granziol": granziol}


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  granziol, settings = summary["granziol"], summary["settings"]
  hessian_batches = [int(b) for b in granziol["batch_top_eigenvalue"]]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  ax = axes[0]
  errorbar(ax, hessian_batches, [granziol["batch_top_eigenvalue"][str(b)]
                                 for b in hessian_batches], color="C0",
           label="top eigenvalue of H_B (mean over batches)")
  ax.axhline(granziol["full_top_eigenvalue"]["mean"], color="k", linestyle="--",
             label=f"full Hessian (n = {settings['num_train']})")
  ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="top eigenvalue",
         title="mini-batch Hessian")
  ax.legend(fontsize=7)
  for ax, kind in zip(axes[1:], settings["lr_grids"]):
    lr_batches = [int(b) for b in granziol["max_lr"][kind]]
    stats = [granziol["max_lr"][kind][str(b)] for b in lr_batches]
    errorbar(ax, lr_batches, stats, color="C1", label="measured max stable lr")
    anchor = stats[0]["mean"] if stats else None
    if anchor is not None:
      bs = np.array(lr_batches, float)
      ax.plot(bs, anchor * bs / bs[0], "k--", label="linear in B")
      ax.plot(bs, anchor * np.sqrt(bs / bs[0]), "k:", label="sqrt(B)")
    sl = granziol["max_lr_slope"][kind]["mean"]
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="learning rate",
           title=f"{kind}: max stable lr ({settings['stability_steps']} steps)"
                 + (f", slope {sl:.2f}" if sl is not None else ""))
    ax.legend(fontsize=7)
  fig.suptitle(f"Granziol et al. on {summary['dataset']} ({summary['seeds']} seed(s))"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"granziol.png": fig}


def report(config: Config, summary: dict) -> str:
  granziol = summary["granziol"]
  lines = [f"full Hessian top eigenvalue {granziol['full_top_eigenvalue']['mean']:.4g}"]
  for b, s in granziol["batch_top_eigenvalue"].items():
    lines.append(f"B={int(b):5d}: H_B top {s['mean']:.4g}")
  for kind, by_b in granziol["max_lr"].items():
    lines.append(f"{kind}: max stable lr " + ", ".join(
        f"B={b}: {s['mean']}" for b, s in by_b.items())
        + f"; slope {granziol['max_lr_slope'][kind]['mean']}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="granziol_batch_spectrum", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
