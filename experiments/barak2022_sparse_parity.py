"""Barak et al. 2022: SGD learns sparse parities after a plateau, with hidden progress.

Command:

    python experiments/barak2022_sparse_parity.py            # k=2: n in 10..50, k=3: n in 10..30, 3 seeds
    python experiments/barak2022_sparse_parity.py --quick    # smoke test: k=2, n=10 and 15, 2 seeds
    python experiments/barak2022_sparse_parity.py --train_data=fixed   # the 10,000-example training set

Runtime: 6m02s wall, 69 CPU-s (user 48 + sys 21; load average 14.4 -> 19.0: the
machine was shared) for the default, 2026-12-04, after the port to the
experiment driver; 2m03s (189 CPU-s) on the idle machine before it (2026-12-02).
--quick: ~25 s of CPU.

"Hidden progress in deep learning: SGD learns parities near the computational
limit" (Barak, Edelman, Goel, Kakade, Malach, Zhang; NeurIPS 2022). The task:
inputs uniform in {-1, +1}^n, label the product of k hidden coordinates
(memobench/data/parity.py). The paper's findings, in its terms: (i) the loss
sits on a plateau, then drops suddenly (a phase transition); (ii) the drop comes
after ~n^O(k) iterations; (iii) the plateau is not "stumbling in the dark": SGD
makes continual, hidden progress, amplifying a Fourier gap in the population
gradient (the relevant coordinates' gradient, hence first-layer weights, grow
relative to the others) while loss and error look flat.

Setup (the paper's kind): a 1-hidden-layer ReLU MLP of width 1000 (the
catalogue's parity_n{n}_k{k} specs: model "mlp", width 1000), online SGD (a
fresh batch of 32 at every step, from the run's own stream), constant learning
rate, the hinge loss on the two-class margin (losses.binary_hinge) -- the
paper's MLP loss, so the plateau sits at hinge loss ~1 as in its curves. The
learning rate is 0.01, not the 0.1 reported for the paper's runs: with flax's
LeCun-normal init at width 1000, 0.1 first blows the outputs up (hinge ~4
falling steadily, no plateau; measured on n=20, k=3), 0.01 gives a flat
plateau. 3 training seeds, vmapped; the dataset's seed (its hidden coordinates
S and its test set) is fixed, so the seeds differ only in initialization and
batches.

The training loop is the named program experiments/programs/parity_online.py
(online fresh batches and the hinge loss, which the library loop lacks): one
jitted, vmapped-over-seeds `lax.scan` per evaluation interval, a function of the
cell's resolved Workload (`--train_data=fixed` draws its batches from the fixed
training set instead).

Measured at every evaluation (every --eval_every steps), per seed:
  loss          hinge loss on the fixed test set (2,000 examples), an estimate of
                the population loss (online training never sees them)
  test_accuracy argmax of the logits (the margin's sign) against the label
  fourier_gap   parity.coordinate_mass_ratio of the first layer's movement
                W_t - W_0: mean row norm over S / mean row norm over the other
                coordinates (~1 for an unstructured random walk; null at step 0)
  weight_ratio  the same ratio of W_t itself (per-cell JSON only): at width 1000
                and lr 0.01 the initial weights dominate it (0.99 -> 1.05 over a
                whole run), so the movement is the readable form
The population gradient's gap (the same ratio of the gradient w.r.t. W) was
probed on the 2,000 test examples (n=20, k=3): noise-dominated, 0.6-1.5 across
the plateau with no trend, so it is not reported; an estimate good enough to
see the ~n^-(k-1) Fourier coefficient needs far more samples per evaluation.
steps_to_drop: the first evaluation step with test accuracy >= 0.9; a seed that
never gets there is right-censored at the budget (reported as a lower bound,
with the number censored). A cell stops early once every seed has test
accuracy >= 0.99.

Measured (default: online, 3 seeds, mean +- std over seeds, none censored;
experiments/results/barak2022_sparse_parity_online/):

  k=3, n                10      15      20      25      30
  steps to drop       2,483   4,033   5,783   8,433  16,683
                       +-161 +-1,314    +-653 +-1,633 +-4,406
  Fourier gap at 0.5 of drop   1.00   1.00   1.02   1.01   1.00
  Fourier gap at 0.75 of drop  1.08   1.96   1.45   1.29   1.02
  test loss at 0.75 of drop    0.93   0.92   1.04   1.04   1.07
  test accuracy at 0.75        0.55   0.57   0.51   0.51   0.50
  Fourier gap at 0.9 of drop   1.35   3.48   3.50   3.53   1.74  (accuracy 0.62-0.73)

  k=2, n                10      20      30      40      50
  steps to drop          67     183     367     583     800

  final test accuracy >= 0.995 in every cell. log-log slope of steps to drop
  on n (per seed, then over seeds): all n: k=2 1.60 +- 0.31, k=3 1.61 +- 0.17
  (95% CI [1.18, 2.04]); two largest n only: k=2 1.43 +- 0.43, k=3 3.70 +- 1.11.

Against the paper: (i) plateau and sudden drop -- agrees for k=3: the test
hinge loss sits at 1.0-1.1 (chance) for ~85% of the steps to the drop, then falls to ~0 within
~10-20% more steps (curves.png); for k=2 at these n there is no plateau (the loss
falls from the first evaluation): k=2 is too easy here to show a transition.
(ii) n^O(k) -- partly: steps grow polynomially in n, but over the whole range the
fitted exponent is the same ~1.6 for k=2 and k=3; only between the two largest
n does k=3's (3.7) exceed k=2's (1.4), with wide intervals (3 seeds, 2 points).
n <= 30 (k=3) is too small a range to pin an exponent, and a k-dependence of it
is not established here. (iii) hidden progress -- partly: the first-layer
gap rises well above 1 before loss and accuracy move (at 0.75 of the drop: gap up
to 1.96 while accuracy is 0.50-0.57), but only in the last ~third of the
plateau; over its first half the gap stays at its noise level (1.00-1.02). The
paper's claim is that progress is continual from the start; this measure (row
norms of the accumulated movement, which also carries the SGD noise of every
row) does not resolve it that early, and the population-gradient form was too
noisy on 2,000 examples to try (see above). Nothing was tuned to these
outcomes beyond the learning rate stated above; the grid, thresholds and
measures were fixed before the default run, except the fractions 0.75/0.9 and
the two-largest-n slope, added after seeing that nothing moved at half the drop
and that the k=3 points curve upward (both reported beside the planned ones).

Outputs in the workdir: curves.png, scaling.png, hidden_progress.png,
summary.json, cells/n<n>_k<k>/record.json (per-seed curves; one computed cell
per (n, k), kept by a rerun while its config holds).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from experiments import driver, knobs
from experiments.cells import ComputedCell
from experiments.knobs import knob
from memobench import leaderboard

DROP_ACCURACY = 0.9    # steps_to_drop: the first evaluation at this test accuracy
SOLVED_ACCURACY = 0.99  # a cell stops once every seed is here
PROGRESS_FRACTIONS = (0.5, 0.75, 0.9)  # hidden progress: where in the plateau to look
CURVE_POINTS = 100      # summary.json curves are subsampled to at most this many points
FIGURE_POINTS = 300     # and the per-seed curves the figures draw to this many


@dataclasses.dataclass(frozen=True)
class Config:
  n_k2: tuple[int, ...] | None = knob((10, 20, 30, 40, 50), "n values for k=2 (none: no k=2 cell)")
  n_k3: tuple[int, ...] | None = knob((10, 15, 20, 25, 30), "n values for k=3 (none: no k=3 cell)")
  seeds: int = knob(3, "training seeds, vmapped", lo=1, hi=64)
  max_steps: int = knob(60000, "step budget per cell", lo=1, hi=10_000_000)
  eval_every: int = knob(50, "steps between evaluations", lo=1, hi=100_000)
  train_data: str = knob("online", "online: a fresh batch every step (the paper); fixed: batches "
                                   "of the dataset's 10,000 training examples",
                         choices=("online", "fixed"))
  quick: bool = False


# --quick: k=2, n=10 and 15, 2 seeds, 1,000 steps evaluated every 20.
QUICK = Config(n_k2=(10, 15), n_k3=None, seeds=2, max_steps=1000, eval_every=20, quick=True)


def cells_of(config: Config) -> list[tuple[int, int]]:
  return [(n, k) for k, ns in ((2, config.n_k2), (3, config.n_k3)) for n in dict.fromkeys(ns or ())]


def check(config: Config) -> None:
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  for n, k in cells_of(config):
    if (n, k) not in parity.REGISTERED:
      raise knobs.KnobError(
          f"n_k{k}: n={n} has no registered spec parity_n{n}_k{k} (registered n for k={k}: "
          f"{', '.join(str(a) for a, b in parity.REGISTERED if b == k)})")
  if not cells_of(config):
    raise knobs.KnobError("no cells: give n values with --n_k2 and/or --n_k3")
  if config.eval_every > config.max_steps:
    raise knobs.KnobError(f"eval_every={config.eval_every} exceeds max_steps={config.max_steps}: "
                          "expected at least one evaluation interval within the budget")


@dataclasses.dataclass(frozen=True)
class ParityCell:
  """One (n, k) cell's settings (its config, hashed for resume)."""
  n: int
  k: int
  seeds: int
  max_steps: int
  eval_every: int
  train_data: str
  solved_accuracy: float


def compute_parity(cell: ParityCell, ctx) -> dict[str, Any]:
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  from memobench import catalogue, workload  # pylint: disable=import-outside-toplevel
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  wl = workload.resolve(catalogue.get(parity.dataset_name(cell.n, cell.k)), ctx.data_dir)
  out = parity_online.train(wl, cell.seeds, max_steps=cell.max_steps,
                            eval_every=cell.eval_every, train_data=cell.train_data,
                            solved_accuracy=cell.solved_accuracy, log=ctx.log)
  return {"n": cell.n, "k": cell.k, "seeds": cell.seeds, **out}


def grid(config: Config) -> list[ComputedCell]:
  return [ComputedCell(f"n{n}_k{k}", compute_parity, ParityCell(
      n, k, config.seeds, config.max_steps, config.eval_every, config.train_data,
      SOLVED_ACCURACY)) for n, k in cells_of(config)]


# --------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------


def steps_to_drop(steps, accuracy) -> int | None:
  """The first evaluation step with accuracy >= DROP_ACCURACY; None: never (censored)."""
  for s, a in zip(steps, accuracy):
    if a >= DROP_ACCURACY:
      return int(s)
  return None


def stat(values, bounds=None) -> dict:
  return leaderboard.summarize(values, bounds)


def censored_stat(values: list[int | None], budget: int) -> dict:
  """Steps to drop over seeds; a censored seed counts at its budget (a lower bound)."""
  censored = sum(v is None for v in values)
  out = stat([budget if v is None else v for v in values])
  out["censored"] = censored
  out["is_lower_bound"] = censored > 0  # then the mean is a lower bound, not an estimate
  out["budget"] = budget
  return out


def nearest_index(steps, target: float) -> int:
  return int(np.argmin(np.abs(np.asarray(steps, float) - target)))


def summarize_cell(cell: dict, budget: int) -> dict:
  steps, c = cell["steps"], cell["curves"]
  drops = [steps_to_drop(steps, acc) for acc in c["test_accuracy"]]
  # Hidden progress: each seed's state at fractions of its own steps to drop,
  # against its first evaluation after step 0 (the movement is 0 / 0 at step 0).
  measures = ("fourier_gap", "loss", "test_accuracy")
  first = min(1, len(steps) - 1)
  at_first = {name: stat([c[name][seed][first] for seed in range(cell["seeds"])],
                         (0.0, 1.0) if name == "test_accuracy" else None) for name in measures}
  at_fraction = {}
  for fraction in PROGRESS_FRACTIONS:
    at = [None if d is None else nearest_index(steps, fraction * d) for d in drops]
    at_fraction[str(fraction)] = {
        name: stat([None if i is None else c[name][seed][i] for seed, i in enumerate(at)],
                   (0.0, 1.0) if name == "test_accuracy" else None) for name in measures}
  keep = subsample(len(steps), CURVE_POINTS)

  def curve_cells(name):
    return [stat([c[name][seed][i] for seed in range(cell["seeds"])]) for i in keep]

  return {
      "steps_to_drop": censored_stat(drops, budget),
      "final_test_accuracy": stat([acc[-1] for acc in c["test_accuracy"]], (0.0, 1.0)),
      "hidden_coordinates": cell["coords"],
      "hidden_progress": {"first_eval_step": steps[first], "at_first_eval": at_first,
                          "at_fraction_of_drop": at_fraction},
      "curves": {"step": [steps[i] for i in keep], "loss": curve_cells("loss"),
                 "fourier_gap": curve_cells("fourier_gap"),
                 "test_accuracy": curve_cells("test_accuracy")},
      "seconds": cell["seconds"],
  }


def fit_slope(ns, values) -> float | None:
  """Least-squares slope of log(values) on log(ns); None with fewer than 2 points."""
  pts = [(math.log(n), math.log(v)) for n, v in zip(ns, values) if v is not None and v > 0]
  if len(pts) < 2:
    return None
  x, y = np.array(pts).T
  return float(np.polyfit(x, y, 1)[0])


def scaling(cells: dict[tuple[int, int], dict], seeds: int) -> dict:
  """Per k: the log-log slope of steps to drop against n, one fit per seed."""
  out = {}
  for k in sorted({k for _, k in cells}):
    ns = sorted(n for n, kk in cells if kk == k)
    drops = {n: [steps_to_drop(cells[n, k]["steps"], acc)
                 for acc in cells[n, k]["curves"]["test_accuracy"]] for n in ns}
    censored = sum(v is None for n in ns for v in drops[n])
    per_seed = [fit_slope(ns, [drops[n][s] for n in ns]) for s in range(seeds)]
    # The same fit over the two largest n only: the exponent where n is largest.
    top = ns[-2:]
    per_seed_top = [fit_slope(top, [drops[n][s] for n in top]) if len(top) == 2 else None
                    for s in range(seeds)]
    means = [None if any(v is None for v in drops[n]) else float(np.mean(drops[n])) for n in ns]
    out[f"k{k}"] = {"n": ns, "slope": stat(per_seed), "slope_of_means": fit_slope(ns, means),
                    "slope_two_largest_n": stat(per_seed_top),
                    "censored_runs": censored,
                    "note": "censored runs are left out of their seed's fit"}
  return out


def summarize(config: Config, records: dict[str, Any]) -> dict[str, Any]:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  cells = {(n, k): records[f"n{n}_k{k}"] for n, k in cells_of(config)}
  spec = catalogue.get(parity.dataset_name(*cells_of(config)[0]))
  return {
      "setup": {"train_data": config.train_data, "seeds": config.seeds,
                "max_steps": config.max_steps, "eval_every": config.eval_every,
                "loss": "hinge (losses.binary_hinge)", "drop_accuracy": DROP_ACCURACY,
                "solved_accuracy": SOLVED_ACCURACY, "model": dataclasses.asdict(spec.model),
                "optimizer": dataclasses.asdict(spec.optimizer),
                "batch_size": spec.budget.batch_size, "quick": config.quick},
      "parity": {f"{n}_{k}": summarize_cell(cell, config.max_steps)
                 for (n, k), cell in sorted(cells.items())},
      "scaling": scaling(cells, config.seeds),
      "figure_curves": figure_curves(cells),
  }


def subsample(n_points: int, limit: int) -> list[int]:
  """At most ~`limit` evenly strided indices of n_points, the last one included."""
  keep = list(range(0, n_points, max(1, math.ceil(n_points / limit))))
  if keep[-1] != n_points - 1:
    keep.append(n_points - 1)
  return keep


def figure_curves(cells) -> dict[str, Any]:
  """What the figures draw: per cell, each seed's test loss and Fourier gap (subsampled to
  FIGURE_POINTS evaluations) and its steps to drop."""
  out = {}
  for (n, k), cell in sorted(cells.items()):
    keep = subsample(len(cell["steps"]), FIGURE_POINTS)
    out[f"{n}_{k}"] = {
        "n": n, "k": k, "steps": [cell["steps"][i] for i in keep],
        **{name: [[curve[i] for i in keep] for curve in cell["curves"][name]]
           for name in ("loss", "fourier_gap")},
        "drops": [steps_to_drop(cell["steps"], acc) for acc in cell["curves"]["test_accuracy"]]}
  return out


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


def arr(values) -> np.ndarray:
  return np.asarray([np.nan if v is None else v for v in values], float)


def plot_curves(fc, plt):
  keys = sorted(((c["n"], c["k"]) for c in fc.values()), key=lambda nk: (nk[1], nk[0]))
  cols = max(sum(1 for _, k in keys if k == kk) for kk in (2, 3))
  rows = sorted({k for _, k in keys})
  fig, axes = plt.subplots(len(rows), cols, figsize=(3.2 * cols, 2.8 * len(rows)),
                           squeeze=False)
  for r, k in enumerate(rows):
    for ax in axes[r]:
      ax.axis("off")
    for col, n in enumerate(sorted(n for n, kk in keys if kk == k)):
      cell, ax = fc[f"{n}_{k}"], axes[r][col]
      ax.axis("on")
      gap_ax = ax.twinx()
      for seed in range(len(cell["loss"])):
        ax.plot(cell["steps"], arr(cell["loss"][seed]), color="C0", lw=1, alpha=0.8)
        gap_ax.plot(cell["steps"], arr(cell["fourier_gap"][seed]), color="C3", lw=1,
                    alpha=0.8)
      ax.set_title(f"n={n}, k={k}")
      ax.set_xlabel("step")
      ax.set_ylim(-0.05, max(1.3, ax.get_ylim()[1]))
      if col == 0:
        ax.set_ylabel("test hinge loss", color="C0")
      gap_ax.set_yscale("log")
      gap_ax.tick_params(axis="y", colors="C3")
  fig.suptitle("Sparse parity: loss plateau then drop (blue); first-layer Fourier gap "
               "(red, right, log)")
  fig.tight_layout()
  return fig


def plot_scaling(fc, scale, budget, plt):
  fig, ax = plt.subplots(figsize=(4.8, 3.6))
  for k in sorted({c["k"] for c in fc.values()}):
    color = f"C{k}"
    for n in scale[f"k{k}"]["n"]:
      drops = fc[f"{n}_{k}"]["drops"]
      done = [d for d in drops if d is not None]
      ax.scatter([n] * len(done), done, color=color, s=12)
      cens = sum(d is None for d in drops)
      if cens:
        ax.scatter([n] * cens, [budget] * cens, marker="^", facecolors="none", edgecolors=color,
                   s=30)
    slope = scale[f"k{k}"]["slope"]["mean"]
    ax.plot([], [], color=color, marker="o", ls="",
            label=f"k={k}: slope {slope:.2f}" if slope is not None else f"k={k}")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("n (input bits)")
  ax.set_ylabel(f"steps to test accuracy {DROP_ACCURACY}")
  ax.set_title("Steps to the drop vs n (triangles: censored)")
  ax.legend()
  fig.tight_layout()
  return fig


def plot_hidden_progress(fc, plt):
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for cell in sorted(fc.values(), key=lambda c: (c["n"], c["k"])):
    n, k = cell["n"], cell["k"]
    ns = sorted(c["n"] for c in fc.values() if c["k"] == k)
    for seed, drop in enumerate(cell["drops"]):
      if drop is None:
        continue
      t = np.asarray(cell["steps"], float) / drop
      keep = t <= 1.5
      color = plt.cm.viridis(ns.index(n) / max(1, len(ns) - 1) * 0.9)
      style = {"color": color, "lw": 1, "alpha": 0.8, "ls": "-" if k >= 3 else "--"}
      axes[0].plot(t[keep], arr(cell["fourier_gap"][seed])[keep],
                   label=f"n={n}, k={k}" if seed == 0 else None, **style)
      axes[1].plot(t[keep], arr(cell["loss"][seed])[keep], **style)
  axes[0].set_yscale("log")
  axes[0].set_ylabel("Fourier gap (weights, S vs rest)")
  axes[1].set_ylabel("test hinge loss")
  for ax in axes:
    ax.axvline(1.0, color="k", lw=0.5, ls=":")
    ax.set_xlabel("step / steps to drop")
  axes[0].legend(fontsize=6, ncol=2)
  fig.suptitle("Fourier gap (left) and test loss (right) against step / that seed's steps "
               "to drop (k=2 dashed, k=3 solid)")
  fig.tight_layout()
  return fig


def plot(config: Config, summary: dict[str, Any]) -> dict[str, Any]:
  from experiments.figures import plt  # pylint: disable=import-outside-toplevel
  fc = summary["figure_curves"]
  return {"curves.png": plot_curves(fc, plt),
          "scaling.png": plot_scaling(fc, summary["scaling"], summary["setup"]["max_steps"], plt),
          "hidden_progress.png": plot_hidden_progress(fc, plt)}


def report(config: Config, summary: dict[str, Any]) -> str:
  lines = ["cell   steps to drop (mean +- std, censored)  final test accuracy"]
  for key, cell in summary["parity"].items():
    d = cell["steps_to_drop"]
    lines.append(f"{key:6s} {d['mean']:9.0f} +- {d['std'] or 0:7.0f} ({d['censored']})"
                 f"           {cell['final_test_accuracy']['mean']:.3f}")
  for k, s in summary["scaling"].items():
    slope = s["slope"]["mean"]
    lines.append(f"{k}: log-log slope of steps to drop on n "
                 + ("n/a" if slope is None else f"{slope:.2f}"))
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="barak2022_sparse_parity", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
