"""Barak et al. 2022: SGD learns sparse parities after a plateau, with hidden progress.

Command:

    python experiments/barak2022_sparse_parity.py            # k=2: n in 10..50, k=3: n in 10..30, 3 seeds
    python experiments/barak2022_sparse_parity.py --quick    # smoke test: k=2, n=10 and 15, 2 seeds
    python experiments/barak2022_sparse_parity.py --train_data=fixed   # the 10,000-example training set

Runtime: 2m03s wall (189 CPU-s: user 136 + sys 53) for the default on the
idle 2-core machine (2026-12-02; the run reproduced the committed
summary.json exactly apart from its per-cell seconds, which are now the idle
ones). --quick: ~25 s of CPU.

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

Why a step of its own, not memobench's training loop: the loop trains on a
resident, fixed training set with the cross-entropy, and measures at each
evaluation what its metrics table defines. This experiment needs fresh online
batches at every step (the paper's setting), the hinge loss, and the first
layer's weights and their initial values at every evaluation. It is one
jitted, vmapped-over-seeds `lax.scan` per evaluation interval
(`--train_data=fixed` draws its batches from the fixed training set instead).

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
summary.json, cells/<n>_<k>.json (per-seed curves; reruns reuse them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

import common  # sets the matplotlib backend first
import jax
import jax.numpy as jnp
import numpy as np

from common import dumps, fail, plt, savefig
from memobench import catalogue, cli, leaderboard, models, prng, results, specs, workload
from memobench.data import parity
from memobench.training import losses, optimizers

NAME = "barak2022_sparse_parity"
DROP_ACCURACY = 0.9    # steps_to_drop: the first evaluation at this test accuracy
SOLVED_ACCURACY = 0.99  # a cell stops once every seed is here
PROGRESS_FRACTIONS = (0.5, 0.75, 0.9)  # hidden progress: where in the plateau to look
CURVE_POINTS = 100      # summary.json curves are subsampled to at most this many points


class _Parser(argparse.ArgumentParser):
  def error(self, message):
    fail(message, 2)


def parse_args() -> argparse.Namespace:
  p = _Parser(description=__doc__.split("\n\n")[0])
  p.add_argument("--n_k2", default=None,
                 help="n values for k=2, comma-separated (default 10,20,30,40,50; 10,15 --quick)")
  p.add_argument("--n_k3", default=None,
                 help="n values for k=3, comma-separated (default 10,15,20,25,30; none --quick)")
  p.add_argument("--seeds", type=int, default=None, help="training seeds (default 3; 2 --quick)")
  p.add_argument("--max_steps", type=int, default=None,
                 help="step budget per cell (default 60000; 1000 --quick)")
  p.add_argument("--eval_every", type=int, default=None,
                 help="steps between evaluations (default 50; 20 --quick)")
  p.add_argument("--train_data", choices=("online", "fixed"), default="online",
                 help="online: a fresh batch every step (the paper); fixed: batches of the "
                      "dataset's 10,000 training examples")
  p.add_argument("--workdir", default=None,
                 help=f"default /tmp/memobench/experiments/{NAME}[-quick]")
  p.add_argument("--quick", action="store_true", help="smoke run: k=2, n=10 and 15, 2 seeds")
  p.add_argument("--no_resume", action="store_true", help="recompute cells already saved")
  p.add_argument("--shard", default=None,
                 help="INDEX/COUNT: run every COUNT-th cell from INDEX into a shared --workdir")
  args = p.parse_args()
  def default(value, normal, quick):
    return value if value is not None else (quick if args.quick else normal)
  args.n_k2 = default(args.n_k2, "10,20,30,40,50", "10,15")
  args.n_k3 = default(args.n_k3, "10,15,20,25,30", "")
  args.seeds = default(args.seeds, 3, 2)
  args.max_steps = default(args.max_steps, 60000, 1000)
  args.eval_every = default(args.eval_every, 50, 20)
  if args.seeds < 1:
    fail(f"--seeds must be >= 1, got {args.seeds}", 2)
  if args.max_steps < 1 or args.eval_every < 1:
    fail("--max_steps and --eval_every must be positive", 2)
  try:
    args.shard = cli.parse_shard(args.shard)
  except ValueError as e:
    fail(str(e), 2)
  args.cells = []
  for k, raw in ((2, args.n_k2), (3, args.n_k3)):
    try:
      ns = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError:
      fail(f"--n_k{k} {raw!r}: expected comma-separated integers", 2)
    for n in ns:
      if (n, k) not in parity.REGISTERED:
        fail(f"--n_k{k}: n={n} has no registered spec parity_n{n}_k{k} (registered n for "
             f"k={k}: {', '.join(str(a) for a, b in parity.REGISTERED if b == k)})", 2)
      args.cells.append((n, k))
  if not args.cells:
    fail("no cells: give n values with --n_k2 and/or --n_k3", 2)
  if args.workdir is None:
    args.workdir = os.path.join("/tmp/memobench/experiments", NAME + ("-quick" if args.quick else ""))
  return args


# --------------------------------------------------------------------------
# Training: one jitted program per evaluation interval, vmapped over seeds.
# --------------------------------------------------------------------------


def first_kernel(params):
  """The first Dense layer's kernel (n, width): one row per input coordinate."""
  return params["Dense_0"]["kernel"]


def run_cell(n: int, k: int, args) -> dict:
  spec = workload.validate(catalogue.get(parity.dataset_name(n, k)))
  ds = parity.make(n, k)
  coords = parity.hidden_coordinates(n, k)
  module = models.build(spec.model, ds.num_classes)
  batch = spec.budget.batch_size
  tx = optimizers.build(spec.optimizer, steps_per_epoch=max(1, ds.num_train // batch))
  x_test, y_test = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
  x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  online = args.train_data == "online"

  def loss_of(params, x, y):
    return jnp.mean(losses.binary_hinge(module.apply({"params": params}, x, train=False), y))

  def init(seed_key):
    params = module.init(jax.random.fold_in(seed_key, prng.INIT),
                         jnp.zeros((1, *ds.input_shape)), train=False)["params"]
    return params, tx.init(params)

  def draw(data_key, step):
    if online:
      x, y = parity.online_batch(data_key, step, batch, n, coords)
      return x[..., None], y
    pick = jax.random.randint(jax.random.fold_in(data_key, step), (batch,), 0, ds.num_train)
    return x_train[pick], y_train[pick]

  def interval(params, opt_state, data_key, start):
    def body(carry, step):
      params, opt_state = carry
      x, y = draw(data_key, step)
      loss, grads = jax.value_and_grad(loss_of)(params, x, y)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (jax.tree.map(jnp.add, params, updates), opt_state), loss
    (params, opt_state), batch_losses = jax.lax.scan(
        body, (params, opt_state), start + jnp.arange(args.eval_every))
    return params, opt_state, jnp.mean(batch_losses)

  def evaluate(params, initial_kernel):
    logits = module.apply({"params": params}, x_test, train=False)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == y_test).astype(jnp.float32))
    kernel = first_kernel(params)
    return {"loss": jnp.mean(losses.binary_hinge(logits, y_test)), "test_accuracy": accuracy,
            # 0 / 0 at step 0 (no movement yet): NaN, written as null.
            "fourier_gap": parity.coordinate_mass_ratio(kernel - initial_kernel, coords),
            "weight_ratio": parity.coordinate_mass_ratio(kernel, coords)}

  @jax.jit
  def setup(seeds):
    # One program (each eager op would compile one of its own).
    seed_keys = jax.vmap(lambda s: prng.run_key(s))(seeds)
    data_keys = jax.vmap(lambda key: jax.random.fold_in(
        key, prng.PARITY_ONLINE if online else prng.SHUFFLE))(seed_keys)
    params, opt_state = jax.vmap(init)(seed_keys)
    return params, opt_state, data_keys, first_kernel(params)

  params, opt_state, data_keys, initial_kernel = setup(jnp.arange(args.seeds, dtype=jnp.uint32))
  interval_fn = jax.jit(jax.vmap(interval, in_axes=(0, 0, 0, None)))
  evaluate_fn = jax.jit(jax.vmap(evaluate))
  names = ("loss", "test_accuracy", "fourier_gap", "weight_ratio", "train_loss")
  curves = {name: [] for name in names}
  steps = [0]
  first = jax.device_get(evaluate_fn(params, initial_kernel))
  for name in names[:-1]:
    curves[name].append(np.asarray(first[name]).tolist())
  curves["train_loss"].append([None] * args.seeds)
  t0 = time.time()
  step = 0
  while step < args.max_steps:
    params, opt_state, train_loss = interval_fn(params, opt_state, data_keys, step)
    step += args.eval_every
    out = jax.device_get(evaluate_fn(params, initial_kernel))
    for name in names[:-1]:
      curves[name].append(np.asarray(out[name]).tolist())
    curves["train_loss"].append(np.asarray(train_loss).tolist())
    steps.append(step)
    if np.all(np.asarray(out["test_accuracy"]) >= SOLVED_ACCURACY):
      break
  seconds = time.time() - t0
  # Columns per seed: curves[name][seed] is that seed's curve.
  per_seed = {name: [list(col) for col in zip(*rows)] for name, rows in curves.items()}
  print(f"n={n} k={k}: {step} steps x {args.seeds} seeds in {seconds:.0f} s; "
        f"final test accuracy {np.round(per_seed['test_accuracy'][-1][-1:], 3)}... "
        f"(S = {coords.tolist()})", file=sys.stderr)
  return {"n": n, "k": k, "coords": coords.tolist(), "steps": steps, "seeds": args.seeds,
          "settings": settings(spec, args), "seconds": seconds, "curves": per_seed}


def settings(spec: specs.Spec, args) -> dict:
  """What a saved cell must match to be reused."""
  return {"spec_hash": specs.spec_hash(spec), "seeds": args.seeds, "max_steps": args.max_steps,
          "eval_every": args.eval_every, "train_data": args.train_data,
          "drop_accuracy": DROP_ACCURACY, "solved_accuracy": SOLVED_ACCURACY}


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


def summarize_cell(cell: dict) -> dict:
  steps, c = cell["steps"], cell["curves"]
  budget = cell["settings"]["max_steps"]
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
  stride = max(1, math.ceil(len(steps) / CURVE_POINTS))
  keep = list(range(0, len(steps), stride))
  if keep[-1] != len(steps) - 1:
    keep.append(len(steps) - 1)

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


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


def arr(values) -> np.ndarray:
  return np.asarray([np.nan if v is None else v for v in values], float)


def plot_curves(cells, args):
  keys = sorted(cells, key=lambda nk: (nk[1], nk[0]))
  cols = max(sum(1 for _, k in keys if k == kk) for kk in (2, 3))
  rows = sorted({k for _, k in keys})
  fig, axes = plt.subplots(len(rows), cols, figsize=(3.2 * cols, 2.8 * len(rows)),
                           squeeze=False)
  for r, k in enumerate(rows):
    for ax in axes[r]:
      ax.axis("off")
    for col, n in enumerate(sorted(n for n, kk in keys if kk == k)):
      cell, ax = cells[n, k], axes[r][col]
      ax.axis("on")
      gap_ax = ax.twinx()
      for seed in range(cell["seeds"]):
        ax.plot(cell["steps"], cell["curves"]["loss"][seed], color="C0", lw=1, alpha=0.8)
        gap_ax.plot(cell["steps"], arr(cell["curves"]["fourier_gap"][seed]), color="C3", lw=1,
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
  savefig(fig, args, "curves.png")


def plot_scaling(cells, scale, args):
  fig, ax = plt.subplots(figsize=(4.8, 3.6))
  for k in sorted({k for _, k in cells}):
    ns = scale[f"k{k}"]["n"]
    color = f"C{k}"
    for n in ns:
      drops = [steps_to_drop(cells[n, k]["steps"], acc)
               for acc in cells[n, k]["curves"]["test_accuracy"]]
      done = [d for d in drops if d is not None]
      ax.scatter([n] * len(done), done, color=color, s=12)
      cens = sum(d is None for d in drops)
      if cens:
        ax.scatter([n] * cens, [cells[n, k]["settings"]["max_steps"]] * cens, marker="^",
                   facecolors="none", edgecolors=color, s=30)
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
  savefig(fig, args, "scaling.png")


def plot_hidden_progress(cells, args):
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  for (n, k), cell in sorted(cells.items()):
    for seed in range(cell["seeds"]):
      drop = steps_to_drop(cell["steps"], cell["curves"]["test_accuracy"][seed])
      if drop is None:
        continue
      t = np.asarray(cell["steps"], float) / drop
      keep = t <= 1.5
      label = f"n={n}, k={k}" if seed == 0 else None
      ns = sorted(nn for nn, kk in cells if kk == k)
      color = plt.cm.viridis(ns.index(n) / max(1, len(ns) - 1) * 0.9)
      style = {"color": color, "lw": 1, "alpha": 0.8, "ls": "-" if k >= 3 else "--"}
      axes[0].plot(t[keep], arr(cell["curves"]["fourier_gap"][seed])[keep], label=label,
                   **style)
      axes[1].plot(t[keep], arr(cell["curves"]["loss"][seed])[keep], **style)
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
  savefig(fig, args, "hidden_progress.png")


# --------------------------------------------------------------------------


def main() -> None:
  args = parse_args()
  plan = []
  for n, k in args.cells:
    spec = catalogue.get(parity.dataset_name(n, k))
    plan.append(common.ScriptCell(
        f"n={n} k={k}", os.path.join(args.workdir, "cells", f"{n}_{k}.json"),
        settings(spec, args), lambda n=n, k=k: run_cell(n, k, args)))
  records = common.script_cells(plan, args, config_key="settings")
  cells = {(n, k): records[f"n={n} k={k}"] for n, k in args.cells}
  scale = scaling(cells, args.seeds)
  spec = catalogue.get(parity.dataset_name(*args.cells[0]))
  summary = {
      "setup": {"train_data": args.train_data, "seeds": args.seeds, "max_steps": args.max_steps,
                "eval_every": args.eval_every, "loss": "hinge (losses.binary_hinge)",
                "drop_accuracy": DROP_ACCURACY, "solved_accuracy": SOLVED_ACCURACY,
                "model": dataclasses.asdict(spec.model),
                "optimizer": dataclasses.asdict(spec.optimizer),
                "batch_size": spec.budget.batch_size,
                "quick": args.quick},
      "parity": {f"{n}_{k}": summarize_cell(cell) for (n, k), cell in sorted(cells.items())},
      "scaling": scale,
  }
  results.write_json_atomic(os.path.join(args.workdir, "summary.json"),
                            json.loads(dumps(summary)))
  print(f"summary -> {os.path.join(args.workdir, 'summary.json')}", file=sys.stderr)
  plot_curves(cells, args)
  plot_scaling(cells, scale, args)
  plot_hidden_progress(cells, args)


if __name__ == "__main__":
  main()
