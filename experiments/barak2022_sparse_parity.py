"""Barak et al. 2022: SGD learns sparse parities after a plateau, with hidden progress.

Command:

    python experiments/barak2022_sparse_parity.py            # k=2: n in 10..50, k=3: n in 10..50, 3 seeds
    python experiments/barak2022_sparse_parity.py --quick    # smoke test: k=2, n=10 and 15, 2 seeds
    python experiments/barak2022_sparse_parity.py --train_data=fixed   # the 10,000-example training set
    python experiments/barak2022_sparse_parity.py --output=margin --init=flax --lr=0.01 --eval_every=50 --eval_every_k2=50
                                                             # the first protocol (its own cells)

Runtime: 34m21s wall for the default, 136 CPU-s (user 95 + sys 40), on the shared
2-core machine at load average 21 -> 25 (2026-12-04); the CPU seconds, not the wall
time, are what an idle machine would need (estimated ~2-3 minutes). --quick: 53 s wall,
16 CPU-s (load ~20).

"Hidden progress in deep learning: SGD learns parities near the computational
limit" (Barak, Edelman, Goel, Kakade, Malach, Zhang; NeurIPS 2022). The task:
inputs uniform in {-1, +1}^n, label the product of k hidden coordinates
(memobench/data/parity.py). The paper's findings, in its terms: (i) the loss
sits on a plateau, then drops suddenly (a phase transition); (ii) the drop comes
after ~n^O(k) iterations; (iii) the plateau is not "stumbling in the dark": SGD
makes continual, hidden progress, amplifying a Fourier gap in the population
gradient (the relevant coordinates' gradient, hence first-layer weights, grow
relative to the others) while loss and error look flat.

Setup (the paper's kind): a 1-hidden-layer ReLU MLP of width 1000 with ONE output
f (the catalogue's parity_n{n}_k{k} model with a scalar head), PyTorch's default
nn.Linear initialization (kernels and biases U(+-1/sqrt(fan_in))), online SGD (a
fresh batch of 32 at every step, from the run's own stream) at the paper's
constant learning rate 0.1, the hinge loss max(0, 1 - t f). 3 training seeds,
vmapped; the dataset's seed (its hidden coordinates S and its 2,000-example test
set) is fixed, so the seeds differ only in initialization and batches. The
training loop is the named program experiments/programs/parity_online.py (online
fresh batches and the hinge loss, which the library loop lacks), a function of
the cell's resolved Workload. The first protocol (lr 0.01, two logits with the
margin f = l1 - l0, which doubles the output scale and the output layer's
effective learning rate, and flax's LeCun init, ~sqrt(3) larger kernels) stays
available through --output, --init and --lr.

Measured at every evaluation -- every step for k=2 (its drop comes after 37-174
steps) and every 10 steps for k=3 (270-2,200) -- per seed: the test hinge loss and
accuracy; the first-layer movement ratio (parity.coordinate_mass_ratio of
W_t - W_0: mean row norm over S / over the other coordinates; ~1 for an
unstructured random walk; called the "Fourier gap" by the first protocol, which
it is not); and for n <= 15 the exact population measures, every one of the 2^n
inputs enumerated: the population hinge loss and accuracy and the
population-gradient gap (the same ratio of the gradient of the population loss
with respect to the first layer: Barak et al.'s Fourier gap). steps_to_drop: the
first evaluation with test accuracy >= 0.9 (right-censored at the budget; none
was); the transition: the last evaluation before the drop with test loss >= 0.9,
as a fraction of the steps to drop. A cell stops once every seed has test
accuracy >= 0.99.

Measured (3 seeds, mean +- std; every seed of every cell dropped, final test
accuracy >= 0.996; experiments/results/barak2022_sparse_parity_online/):

  k=3, n                    10     15     20     25     30     40     50
  steps to drop            270    473    690    880  1,120  1,630  2,203
                           +-35   +-15   +-44   +-62   +-89  +-154  +-199
  test hinge at 0.5 of it  1.06   1.04   1.07   1.03   1.03   1.11   1.03
  drop within the last     0.09   0.13   0.05   0.10   0.19   0.10   0.11  of the steps
  movement ratio at 0.5    1.19   1.15   1.09   1.06   1.05   1.02   1.01
                 at 0.75   1.37   1.55   1.79   1.54   1.58   1.05   1.05

  k=2, n                    10     15     20     30     40     50
  steps to drop             37     58     77    117    148    174
  test hinge at 0.5 of it  0.66   1.07   0.88   0.83   0.87   0.90

  log-log slope of steps to drop on n (per seed): k=2 0.97 +- 0.03, k=3 1.29 +- 0.10.
  Population-gradient gap (exact), n <= 15, at init / 0.25 / 0.5 / 0.75 of the drop:
  k=3: n=10 1.95 / 1.37 / 1.39 / 1.54, n=15 3.70 / 1.04 / 1.08 / 2.00
  (test accuracy at 0.5: 0.56, 0.52); k=2: n=10 8.1 / 2.45 / 1.81 / 1.68,
  n=15 14.0 / 2.15 / 1.76 / 1.84.

Verdicts (summary.json "verdicts", each computed by a rule in the code):
(i) plateau and sudden drop -- agrees: for every k=3 cell the test hinge loss
is still at chance (1.03-1.11) at half the steps to the drop, and the drop
comes within the last 5-19% of the steps. For k=2 the loss already moves at
half the drop (0.66-0.90 at most n).
(ii) n^O(k) -- agrees on the sign: the exponent grows with k (1.29 +- 0.10 for
k=3 against 0.97 +- 0.03 for k=2, resolved beyond 2 SE), but both exponents are
far below k over n <= 50 (the steps are not yet in an n^k regime; the
two-largest-n slope of k=3, 1.35 +- 0.71, is not resolved).
(iii) hidden progress -- partly: the exact population gradient has a Fourier gap
at initialization (1.95 and 3.70 for k=3, larger for k=2), and before the drop
it favours S again (1.5-2.0 at 0.75 of the drop, accuracy still 0.6); but at
n=15, k=3 it is at 1.04-1.08 over the first half of the plateau, so this
measure does not show progress continual from the start there (n=10: 1.37-1.39
throughout). The first-layer movement ratio rises above its random-walk level
only late for n >= 20 (1.01-1.09 at half the drop, 1.5-1.8 at 0.75 up to n=30).
Departures: n <= 50; the initialization is PyTorch's default, not checked
against the authors' code. Chosen after seeing data (said so): the evaluation
intervals and budgets after a pilot of drop times at lr 0.1 (n=20, 30, 50 for
k=3; n=10, 50 for k=2), the k=3 grid extended to n=40, 50 because it was cheap;
the verdict rules after that pilot and a --quick run with k=3 cells (which
moved the plateau test from 0.75 to 0.5 of the drop); the fractions 0.75/0.9 were
added after the first protocol's run, 0.25 with the exact population gradient.

Outputs in the workdir: curves.png, scaling.png, hidden_progress.png,
summary.json, cells/n<n>_k<k>/record.json (per-seed curves; one computed cell
per (n, k), kept by a rerun while its config holds).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from experiments import driver, knobs, verdicts
from experiments.cells import ComputedCell
from experiments.knobs import knob
from memobench import leaderboard

DROP_ACCURACY = 0.9    # steps_to_drop: the first evaluation at this test accuracy
SOLVED_ACCURACY = 0.99  # a cell stops once every seed is here
PLATEAU_LOSS = 0.9      # the test hinge loss of chance is ~1: >= this is on the plateau
# Hidden progress: where in each seed's plateau to look (0.25 added with the exact
# population gradient, to look early; 0.75 and 0.9 were added after seeing the first run).
PROGRESS_FRACTIONS = (0.25, 0.5, 0.75, 0.9)
CURVE_POINTS = 100      # summary.json curves are subsampled to at most this many points
FIGURE_POINTS = 150     # and the per-seed curves the figures draw to this many
MEASURES = ("movement_ratio", "loss", "test_accuracy")
POPULATION = ("population_gradient_gap", "population_loss", "population_accuracy")


@dataclasses.dataclass(frozen=True)
class Config:
  n_k2: tuple[int, ...] | None = knob((10, 15, 20, 30, 40, 50),
                                      "n values for k=2 (none: no k=2 cell)")
  n_k3: tuple[int, ...] | None = knob((10, 15, 20, 25, 30, 40, 50),
                                      "n values for k=3 (none: no k=3 cell)")
  seeds: int = knob(3, "training seeds, vmapped", lo=1, hi=64)
  lr: float = knob(0.1, "SGD learning rate (the paper's 0.1)", lo=1e-6, hi=10.0)
  output: str = knob("scalar", "scalar: one output unit f (the paper's); margin: two logits, "
                               "f = l1 - l0 (the first protocol)", choices=("scalar", "margin"))
  init: str = knob("uniform", "uniform: PyTorch's nn.Linear default U(+-1/sqrt(fan_in)); flax: "
                              "LeCun normal, zero biases (the first protocol)",
                   choices=("uniform", "flax"))
  max_steps: int = knob(60000, "step budget per cell", lo=1, hi=10_000_000)
  eval_every: int = knob(10, "steps between evaluations for k >= 3", lo=1, hi=100_000)
  eval_every_k2: int = knob(1, "steps between evaluations for k = 2 (its drop comes within "
                               "~40-200 steps)", lo=1, hi=100_000)
  train_data: str = knob("online", "online: a fresh batch every step (the paper); fixed: batches "
                                   "of the dataset's 10,000 training examples",
                         choices=("online", "fixed"))
  quick: bool = False


# --quick: k=2, n=10 and 15, 2 seeds, 300 steps evaluated every 5.
QUICK = Config(n_k2=(10, 15), n_k3=None, seeds=2, max_steps=300, eval_every_k2=5, quick=True)


def cells_of(config: Config) -> list[tuple[int, int]]:
  return [(n, k) for k, ns in ((2, config.n_k2), (3, config.n_k3)) for n in dict.fromkeys(ns or ())]


def interval_of(config: Config, k: int) -> int:
  return config.eval_every_k2 if k == 2 else config.eval_every


def check(config: Config) -> None:
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  for n, k in cells_of(config):
    if (n, k) not in parity.REGISTERED:
      raise knobs.KnobError(
          f"n_k{k}: n={n} has no registered spec parity_n{n}_k{k} (registered n for k={k}: "
          f"{', '.join(str(a) for a, b in parity.REGISTERED if b == k)})")
  if not cells_of(config):
    raise knobs.KnobError("no cells: give n values with --n_k2 and/or --n_k3")
  for name in ("eval_every", "eval_every_k2"):
    if getattr(config, name) > config.max_steps:
      raise knobs.KnobError(f"{name}={getattr(config, name)} exceeds max_steps="
                            f"{config.max_steps}: expected at least one evaluation interval "
                            "within the budget")


@dataclasses.dataclass(frozen=True)
class ParityCell:
  """One (n, k) cell's settings (its config, hashed for resume)."""
  n: int
  k: int
  seeds: int
  lr: float
  output: str
  init: str
  max_steps: int
  eval_every: int
  train_data: str
  solved_accuracy: float
  population: bool   # exact population measures (n <= parity_online.POPULATION_MAX_N)


def compute_parity(cell: ParityCell, ctx) -> dict[str, Any]:
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(parity.dataset_name(cell.n, cell.k)),
                                 [f"optimizer.lr={cell.lr}"])
  wl = workload.resolve(spec, ctx.data_dir)
  out = parity_online.train(wl, cell.seeds, max_steps=cell.max_steps,
                            eval_every=cell.eval_every, train_data=cell.train_data,
                            solved_accuracy=cell.solved_accuracy, output=cell.output,
                            init=cell.init, population=cell.population, log=ctx.log)
  return {"n": cell.n, "k": cell.k, "seeds": cell.seeds, **out}


def grid(config: Config) -> list[ComputedCell]:
  from experiments.programs import parity_online  # pylint: disable=import-outside-toplevel
  return [ComputedCell(f"n{n}_k{k}", compute_parity, ParityCell(
      n, k, config.seeds, config.lr, config.output, config.init, config.max_steps,
      interval_of(config, k), config.train_data, SOLVED_ACCURACY,
      n <= parity_online.POPULATION_MAX_N)) for n, k in cells_of(config)]


# --------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------


def steps_to_drop(steps, accuracy) -> int | None:
  """The first evaluation step with accuracy >= DROP_ACCURACY; None: never (censored)."""
  for s, a in zip(steps, accuracy):
    if a >= DROP_ACCURACY:
      return int(s)
  return None


def plateau_end(steps, loss, drop: int | None) -> int | None:
  """The last evaluation step before the drop with test loss >= PLATEAU_LOSS (None: none)."""
  if drop is None:
    return None
  on = [int(s) for s, v in zip(steps, loss) if s < drop and v is not None and v >= PLATEAU_LOSS]
  return on[-1] if on else None


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
  seeds = range(cell["seeds"])
  measures = MEASURES + tuple(m for m in POPULATION if m in c)
  bounded = ("test_accuracy", "population_accuracy")
  drops = [steps_to_drop(steps, acc) for acc in c["test_accuracy"]]
  ends = [plateau_end(steps, loss, d) for loss, d in zip(c["loss"], drops)]
  # Hidden progress: each seed's state at fractions of its own steps to drop, at its
  # first evaluation after step 0 (the movement is 0 / 0 at step 0), and at step 0
  # (the population measures: exact at initialization).
  first = min(1, len(steps) - 1)

  def at(index_of_seed, names):
    return {name: stat([None if index_of_seed[seed] is None else c[name][seed][index_of_seed[seed]]
                        for seed in seeds], (0.0, 1.0) if name in bounded else None)
            for name in names}

  hidden = {"first_eval_step": steps[first], "at_first_eval": at([first] * len(seeds), measures),
            "at_init": at([0] * len(seeds), [m for m in measures if m != "movement_ratio"]),
            "at_fraction_of_drop": {
                str(fraction): at([None if d is None else max(1, nearest_index(steps, fraction * d))
                                   for d in drops], measures)
                for fraction in PROGRESS_FRACTIONS}}
  keep = subsample(len(steps), CURVE_POINTS)

  def curve_cells(name):  # mean and sample std over seeds (n = the seeds present)
    return [{k: v for k, v in stat([c[name][seed][i] for seed in seeds]).items()
             if k in ("mean", "std")} for i in keep]

  return {
      "steps_to_drop": censored_stat(drops, budget),
      # The drop's width: from the last evaluation on the plateau (test loss >= PLATEAU_LOSS)
      # to the drop, as a fraction of the steps to drop.
      "plateau_end": stat(ends),
      "transition_fraction": stat(None if d is None or e is None else (d - e) / d
                                  for d, e in zip(drops, ends)),
      "final_test_accuracy": stat([acc[-1] for acc in c["test_accuracy"]], (0.0, 1.0)),
      "hidden_coordinates": cell["coords"],
      "eval_every": steps[1] - steps[0] if len(steps) > 1 else None,
      "hidden_progress": hidden,
      "curves": {"step": [steps[i] for i in keep],
                 **{name: curve_cells(name) for name in measures
                    if name not in ("population_loss", "population_accuracy")}},
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


def verdicts_of(config: Config, parity_cells: dict, scale: dict) -> list[dict]:
  """The three claims' verdicts, by rules stated here. Written after a pilot at lr 0.1 (drop
  times of n=20, 30, 50 for k=3 and n=10, 50 for k=2; the population gradient on n=15, k=3)
  and a --quick run with k=3 cells, which moved the plateau test from 0.75 to 0.5 of the
  drop (the test loss of n <= 15 leaves the plateau before 0.75)."""
  setup = (f"{config.output} output, {config.init} init, SGD lr {config.lr:g}, batch 32, "
           f"online fresh batches, hinge loss, width 1000, {config.seeds} seeds")
  departures = ("n <= 50 (the paper's MLP runs go to larger n)",
                "init: PyTorch's nn.Linear default (not checked against the authors' code)")
  k3 = {key: c for key, c in parity_cells.items() if key.endswith("_3")}
  out = []
  # (i) Plateau, then a sudden drop (k = 3): the test loss still >= PLATEAU_LOSS at half the
  # drop, and the last plateau evaluation within the last quarter of the steps to drop.
  if k3:
    at50 = {key: c["hidden_progress"]["at_fraction_of_drop"]["0.5"]["loss"]["mean"]
            for key, c in k3.items()}
    width = {key: c["transition_fraction"]["mean"] for key, c in k3.items()}
    ok = [at50[k] is not None and at50[k] >= PLATEAU_LOSS and width[k] is not None
          and width[k] <= 0.25 for k in k3]
    out.append(verdicts.verdict(
        "the loss sits on a plateau, then drops suddenly (a phase transition)",
        paper="Barak et al. 2022, Sec. 3, Fig. 1",
        matched=f"each seed against its own steps to the drop (test accuracy {DROP_ACCURACY}); "
                + setup,
        measured="; ".join(
            f"n={key.split('_')[0]}: test hinge at 0.5 of the drop {fmt(at50[key])}, "
            f"drop within the last {fmt(width[key])} of the steps" for key in k3),
        verdict="agrees" if all(ok) else "partly" if any(ok) else "disagrees",
        departures=departures, figure="curves.png"))
  # (ii) n^O(k): the log-log slope of steps to drop on n, larger for k = 3 than for k = 2.
  if "k2" in scale and "k3" in scale:
    s2, s3 = scale["k2"]["slope"], scale["k3"]["slope"]
    resolved = verdicts.sign(s3, s2) == 1
    positive = None not in (s2["mean"], s3["mean"]) and s2["mean"] > 0 and s3["mean"] > 0
    out.append(verdicts.verdict(
        "SGD needs n^O(k) steps: the steps to the drop grow polynomially in n, with an "
        "exponent that grows with k",
        paper="Barak et al. 2022, Sec. 3 (Fig. 3)",
        matched=f"the same protocol for every (n, k), each seed run until test accuracy "
                f"{SOLVED_ACCURACY} or {config.max_steps} steps (censored: a lower bound); "
                + setup,
        measured=(f"log-log slope on n: k=2 {verdicts.fmt(s2)} over n={scale['k2']['n']}, "
                  f"k=3 {verdicts.fmt(s3)} over n={scale['k3']['n']}; censored runs "
                  f"{scale['k2']['censored_runs']} + {scale['k3']['censored_runs']}"),
        verdict="agrees" if resolved and positive else "partly" if positive else "inconclusive",
        departures=(*departures, *(
            [f"the fitted exponents ({s2['mean']:.2f}, {s3['mean']:.2f}) are below k (2, 3) over "
             f"n <= {max(scale['k3']['n'])}: the paper's n^O(k) is asymptotic, only its growth "
             "with k is tested here"] if positive else [])),
        decide=None if positive else "cells that drop within the budget for every n",
        figure="scaling.png"))
  # (iii) Hidden progress: the exact population gradient (n <= 15) favours S from the start,
  # while loss and accuracy are flat. Agrees: its gap > 1.1 in every seed at 0.25 and 0.5 of
  # the drop with test accuracy < 0.6 there; partly: a gap > 1.1 at initialization or a
  # first-layer movement ratio > 1.05 at 0.5 of the drop in every seed, but not the former.
  exact = {key: c for key, c in k3.items() if "population_gradient_gap" in c["curves"]}
  if exact:
    def values(c, fraction, name):
      return c["hidden_progress"]["at_fraction_of_drop"][fraction][name]
    mid = [values(c, f, "population_gradient_gap")["mean"] for c in exact.values()
           for f in ("0.25", "0.5")]
    mid_all = all(v is not None and v > 1.1 for v in mid)
    flat = all(values(c, f, "test_accuracy")["mean"] < 0.6 for c in exact.values()
               for f in ("0.25", "0.5"))
    init_gap = [c["hidden_progress"]["at_init"]["population_gradient_gap"]["mean"]
                for c in exact.values()]
    moved = [values(c, "0.5", "movement_ratio")["mean"] for c in exact.values()]
    verdict = ("agrees" if mid_all and flat else
               "partly" if all(v > 1.1 for v in init_gap) or all(v > 1.05 for v in moved)
               else "inconclusive")
    out.append(verdicts.verdict(
        "hidden progress: SGD amplifies a Fourier gap in the population gradient (the relevant "
        "coordinates' first-layer gradient exceeds the others') continually, while loss and "
        "error look flat",
        paper="Barak et al. 2022, Sec. 4",
        matched="each seed at fractions of its own steps to the drop; the population gradient "
                "exact (all 2^n inputs enumerated) for n <= 15; " + setup,
        measured="; ".join(
            f"n={key.split('_')[0]}: population-gradient gap at init "
            f"{fmt(c['hidden_progress']['at_init']['population_gradient_gap']['mean'])}, at "
            + ", ".join(f"{f} of the drop {fmt(values(c, f, 'population_gradient_gap')['mean'])}"
                        for f in ("0.25", "0.5", "0.75"))
            + f" (test accuracy at 0.5: {fmt(values(c, '0.5', 'test_accuracy')['mean'])}); "
            f"first-layer movement ratio at 0.5 of the drop "
            f"{fmt(values(c, '0.5', 'movement_ratio')['mean'])}" for key, c in exact.items()),
        verdict=verdict, departures=departures,
        decide=None if verdict != "inconclusive" else
        "the population gradient at larger n (sampled with enough inputs to resolve it)",
        figure="hidden_progress.png"))
  return out


def fmt(value, digits: int = 3) -> str:
  return "n/a" if value is None else f"{value:.{digits}g}"


def summarize(config: Config, records: dict[str, Any]) -> dict[str, Any]:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  from memobench.data import parity  # pylint: disable=import-outside-toplevel
  cells = {(n, k): records[f"n{n}_k{k}"] for n, k in cells_of(config)}
  spec = catalogue.get(parity.dataset_name(*cells_of(config)[0]))
  parity_cells = {f"{n}_{k}": summarize_cell(cell, config.max_steps)
                  for (n, k), cell in sorted(cells.items())}
  scale = scaling(cells, config.seeds)
  return {
      "setup": {"train_data": config.train_data, "seeds": config.seeds,
                "max_steps": config.max_steps, "eval_every": config.eval_every,
                "eval_every_k2": config.eval_every_k2, "output": config.output,
                "init": config.init, "loss": "hinge max(0, 1 - t f)",
                "drop_accuracy": DROP_ACCURACY, "solved_accuracy": SOLVED_ACCURACY,
                "plateau_loss": PLATEAU_LOSS, "model": dataclasses.asdict(spec.model),
                "optimizer": {**dataclasses.asdict(spec.optimizer), "lr": config.lr},
                "batch_size": spec.budget.batch_size, "quick": config.quick},
      "parity": parity_cells,
      "scaling": scale,
      "figure_curves": figure_curves(cells),
      "verdicts": verdicts_of(config, parity_cells, scale),
  }


def subsample(n_points: int, limit: int) -> list[int]:
  """At most ~`limit` evenly strided indices of n_points, the last one included."""
  keep = list(range(0, n_points, max(1, math.ceil(n_points / limit))))
  if keep[-1] != n_points - 1:
    keep.append(n_points - 1)
  return keep


def rounded(value: float | None) -> float | None:
  """4 significant digits: what a figure can show (the records keep every digit)."""
  return None if value is None else float(f"{value:.4g}")


def figure_curves(cells) -> dict[str, Any]:
  """What the figures draw: per cell, each seed's test loss, movement ratio and (n <= 15)
  population-gradient gap, subsampled to FIGURE_POINTS evaluations, and its steps to drop."""
  out = {}
  for (n, k), cell in sorted(cells.items()):
    keep = subsample(len(cell["steps"]), FIGURE_POINTS)
    names = [m for m in ("loss", "movement_ratio", "population_gradient_gap")
             if m in cell["curves"]]
    out[f"{n}_{k}"] = {
        "n": n, "k": k, "steps": [cell["steps"][i] for i in keep],
        **{name: [[rounded(curve[i]) for i in keep] for curve in cell["curves"][name]]
           for name in names},
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
        gap_ax.plot(cell["steps"], arr(cell["movement_ratio"][seed]), color="C3", lw=1,
                    alpha=0.8)
        if "population_gradient_gap" in cell:
          gap_ax.plot(cell["steps"], arr(cell["population_gradient_gap"][seed]), color="C2",
                      lw=0.8, alpha=0.8)
      ax.set_title(f"n={n}, k={k}")
      ax.set_xlabel("step")
      ax.set_ylim(-0.05, max(1.3, ax.get_ylim()[1]))
      if col == 0:
        ax.set_ylabel("test hinge loss", color="C0")
      gap_ax.set_yscale("log")
      gap_ax.tick_params(axis="y", colors="C3")
  fig.suptitle("Sparse parity: test loss (blue); first-layer movement ratio S vs rest (red, "
               "right, log); exact population-gradient gap, n <= 15 (green)")
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
  fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.4))
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
      label = f"n={n}, k={k}" if seed == 0 else None
      axes[0].plot(t[keep], arr(cell["movement_ratio"][seed])[keep], label=label, **style)
      if "population_gradient_gap" in cell:
        axes[1].plot(t[keep], arr(cell["population_gradient_gap"][seed])[keep], label=label,
                     **style)
      axes[2].plot(t[keep], arr(cell["loss"][seed])[keep], **style)
  axes[0].set_yscale("log")
  axes[0].set_ylabel("first-layer movement ratio (S vs rest)")
  axes[1].set_yscale("log")
  axes[1].set_ylabel("population-gradient gap (exact, n <= 15)")
  axes[1].axhline(1.0, color="gray", lw=0.5)
  axes[2].set_ylabel("test hinge loss")
  for ax in axes:
    ax.axvline(1.0, color="k", lw=0.5, ls=":")
    ax.set_xlabel("step / steps to drop")
  axes[0].legend(fontsize=6, ncol=2)
  axes[1].legend(fontsize=6)
  fig.suptitle("Hidden progress against step / that seed's steps to drop (k=2 dashed, k=3 "
               "solid)")
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
