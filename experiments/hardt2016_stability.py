"""Hardt, Recht & Singer 2016: parameter divergence of SGD on neighbouring datasets.

Command:

    python experiments/hardt2016_stability.py            # digits, MLP 1x512, 3 lrs x 3 seeds x 4 i
    python experiments/hardt2016_stability.py --quick    # smoke test: 1 lr, 1 seed, 2 i, 3 epochs

Runtime: 1m11s wall (111 CPU-s) for the default (45 runs of 1,984 steps: 3
vmapped programs of 15 runs) on the idle 2-core machine (2026-12-02; the run
reproduced the committed summary.json exactly). The first committed run took
18.5 min under load 13-25.

The paper ("Train faster, generalize better: stability of stochastic gradient
descent", ICML 2016): SGD is uniformly stable. Run it on S and on S', which
differ in one example (example i replaced by a fresh draw), from the same
initialization with the same sample order; the parameters w_t, w'_t agree
until the step that first visits example i and then drift apart; their
distance, which bounds the difference of the two models' losses on any
example (for a Lipschitz loss), grows with the number of steps and with the
step size (Theorems 3.8, 3.12: the bound grows as alpha*T, or as T^(1-1/(beta c+1))
for non-convex losses with alpha_t <= c/t). The expected generalization gap
is at most the expected loss difference, so training for fewer steps bounds
the gap ("train faster, generalize better"). Their Section 5 plots the
normalized Euclidean distance of such pairs of networks over epochs.

What this script does: plain SGD (no momentum, constant step size, no weight
decay: the paper's setting, here with mini-batches of 32 visited in each
epoch's random order, the same order for both runs of a pair), a 1x512 MLP on
the first 1,000 digits training examples (dataset.train_size). For seed s and
a training position i, S' is S with example i replaced by a fresh example from
the held-out pool: the digits training examples beyond the first 1,000 (same
distribution, never trained on, not the test set). The base run on S and its
neighbours on S' for 4 positions i share the seed's key, so they start from
identical parameters and see the same batch order; all of a learning rate's
runs (3 seeds x (1 + 4)) train side by side in ONE vmapped program of the
training loop (loop.train_group with one data object per run). At every
evaluation (every epoch) it records, per pair:

  distance               ||w_t - w'_t||_2 over all parameters
  normalized distance    ||w_t - w'_t|| / (||w_t|| + ||w'_t||) (their Sec. 5)
  replaced-example loss  CE(w'_t; z_i) - CE(w_t; z_i), z_i the example S has and
  difference             S' lacks: E over i of this is the expected generalization
                         gap of w (Hardt et al. Lemma 2.2's identity), an
                         estimate from 4 i per seed
  test loss difference   mean over the test set of |CE(w_t; z) - CE(w'_t; z)|:
                         the stability the theorems bound, on test examples
and from the base runs the generalization gap (test CE - training CE, and
training accuracy - test accuracy) after 1, 2, 4, ... epochs.

Expected result (the paper's, qualitatively): distance 0 until example i is
first visited, then growing with steps; larger for larger learning rates; the
gap grows with training length. Measured (digits, train 1,000, batch 32, 64
epochs, 3 seeds x 4 positions i; mean over seeds of the mean over i, std over
seeds; 2026-12-02):

  ||w_t - w'_t||    epoch 1          4        16       64
  lr 0.01          0.0024 (0.0001)  0.0067   0.0181   0.0389 (0.0087)
  lr 0.05          0.0082 (0.0005)  0.0217   0.0447   0.0889 (0.0350)
  lr 0.2           0.0269 (0.0035)  0.0525   0.1024   0.1884 (0.0636)

  the gap, test CE - train CE, after epochs   1      2      4      8      16     32     64
  lr 0.01                                     0.025  0.036  0.056  0.065  0.060  0.050  0.046
  lr 0.05 (summary `gap_by_epochs`)           0.051  0.057  0.061  0.047  0.047  0.055  0.075
  lr 0.2                                      0.044  0.038  0.052  0.059  0.080  0.090  0.102

Agrees on the divergence: it grows at every evaluation and is larger at
every epoch for a larger step size (x3-4 per x4 in lr), as the theorems'
bounds say. Partly on the gap: at lr 0.2 it grows with training length
(0.044 -> 0.102), at lr 0.05 it ends highest (0.075) after a dip, at lr 0.01
it rises to 0.065 at epoch 8 and then falls (0.046), so "fewer steps, smaller
gap" holds at the largest step size only. Does NOT follow the distance: the
test loss difference, mean |CE(w;z) - CE(w';z)|, peaks at ~0.003 near epoch 4
and then falls to 0.0012-0.0017 while the parameters keep drifting apart
(larger lr: slightly smaller); and the replaced-example estimate of the gap
(Lemma 2.2) at epoch 64, 0.058 / 0.039 / 0.014 for lr 0.01 / 0.05 / 0.2,
neither matches the measured gap (0.046 / 0.075 / 0.102) nor its trend: with
4 positions per seed it is too noisy (std over seeds up to 0.037) to estimate
a gap of this size.

Outputs in the workdir: stability.png, summary.json, cells/lr<lr>.json (one per
learning rate: what a rerun keeps). --shard=I/N splits the learning rates
over workers sharing --workdir (common.script_cells); the last to finish
writes the summary.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

import numpy as np

import common
from memobench import leaderboard, results, specs, workload
from memobench.data import corruptions
from memobench.training import loop, objectives
from memobench.training.losses import cross_entropy

LEARNING_RATES = (0.01, 0.05, 0.2)
POSITIONS_PER_SEED = 4
TRAIN_SIZE = 1000
BATCH = 32
EPOCHS = 64


def neighbour(data: corruptions.CorruptedData, i: int, x_new: np.ndarray,
              y_new: int) -> corruptions.CorruptedData:
  """S' = S with training example i replaced by (x_new, y_new); everything else shared."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  x, y = np.array(data.x_train), np.array(data.y_train)
  x[i], y[i] = x_new, y_new
  true = np.array(data.y_train_original)
  true[i] = y_new
  return data.replace(x_train=jnp.asarray(x), y_train=jnp.asarray(y),
                      y_train_original=jnp.asarray(true))


def pair_plan(seed: int, n_train: int, n_pool: int, positions: int) -> list[tuple[int, int]]:
  """(training position i, pool index j) pairs of one seed: distinct i, distinct j."""
  rng = np.random.default_rng([seed, 2016])
  return list(zip(rng.choice(n_train, positions, replace=False).tolist(),
                  rng.choice(n_pool, positions, replace=False).tolist()))


def flat_params(params) -> np.ndarray:
  import jax  # pylint: disable=import-outside-toplevel
  return np.concatenate([np.asarray(p, np.float64).ravel() for p in jax.tree.leaves(params)])


class PairTracker:
  """on_eval of the runs of one seed: the base run's parameters, the pairs' divergence.

  The loop calls the members of a group in order at each evaluation, so the
  base run (first of its seed) is recorded before its neighbours compare to it.
  """

  def __init__(self, x_test, y_test):
    self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
    self.base: dict[int, tuple[np.ndarray, np.ndarray, Any]] = {}  # step -> params, test losses
    self.rows: dict[int, list[dict[str, float]]] = {}  # neighbour id -> one row per eval

  _jitted: dict[Any, Any] = {}

  @classmethod
  def _losses(cls, model, x, y):
    """Per-example CE of `model` = (module, params, model_state), evaluation mode (jitted)."""
    import jax  # pylint: disable=import-outside-toplevel
    module, params, model_state = model
    if module not in cls._jitted:
      cls._jitted[module] = jax.jit(lambda p, s, x, y: cross_entropy(
          module.apply({"params": p, **s}, x, train=False), y))
    return np.asarray(cls._jitted[module](params, model_state, x, y), np.float64)

  def base_hook(self):
    def on_eval(ev):
      module, params, state = ev.model()
      self.base = {ev.step: (flat_params(params), self._losses((module, params, state),
                                                              self.x_test, self.y_test),
                             (module, params, state))}
    return on_eval

  def neighbour_hook(self, key: int, x_i, y_i):
    self.rows[key] = []
    x_i, y_i = np.asarray(x_i)[None], np.asarray([y_i])

    def on_eval(ev):
      if ev.step not in self.base:
        raise RuntimeError(f"pair {key}: the base run has no evaluation at step {ev.step}")
      w, test_base, base_model = self.base[ev.step]
      model = ev.model()
      w2 = flat_params(model[1])
      test_other = self._losses(model, self.x_test, self.y_test)
      self.rows[key].append({
          "step": ev.step, "epoch": ev.epoch,
          "distance": float(np.linalg.norm(w - w2)),
          "normalized_distance": float(np.linalg.norm(w - w2)
                                       / (np.linalg.norm(w) + np.linalg.norm(w2))),
          # CE on z_i of the run without it minus the run with it (Lemma 2.2's gap estimate).
          "replaced_loss_difference": float(self._losses(model, x_i, y_i)[0]
                                            - self._losses(base_model, x_i, y_i)[0]),
          "test_loss_difference": float(np.mean(np.abs(test_other - test_base))),
      })
    return on_eval


def build_spec(args, lr: float) -> specs.Spec:
  budget = ((f"budget.max_epochs={args.epochs}", f"budget.eval_every_steps={args.eval_every}")
            if not args.quick else ("budget.max_epochs=2", "budget.eval_every_steps=2"))
  spec, _ = common.get_spec(f"{args.dataset}_clean", (
      f"dataset.train_size={args.train_size}", f"budget.batch_size={BATCH}",
      f"optimizer.lr={lr}", "optimizer.momentum=0", "optimizer.lr_decay_per_epoch=1",
      "analysis.dynamics=false", "analysis.effective_rank=false", *budget))
  return spec


def members_for(spec: specs.Spec, seeds: int, positions: int, data_dir=None):
  """(workload, members, tracker per seed, plan): every run of one learning rate.

  Per seed: the base run on S, then one run per (i, j) of its plan on S with
  example i replaced by pool example j, all with the seed's key.
  """
  wl = workload.resolve(spec, data_dir, stops_on_fit=False)
  x_pool, y_pool, _ = objectives.heldout_pool(spec, data_dir)
  data = wl.corrupted_data(spec.seed)  # clean: the same for every seed
  members, trackers, plan = [], {}, {}
  for seed in range(seeds):
    s_spec = dataclasses.replace(spec, seed=seed)
    tracker = trackers[seed] = PairTracker(data.x_test, data.y_test)
    members.append(loop.Member(s_spec, data, log=lambda m: None, on_eval=tracker.base_hook()))
    plan[seed] = pair_plan(seed, wl.dataset.num_train, len(x_pool), positions)
    for k, (i, j) in enumerate(plan[seed]):
      members.append(loop.Member(s_spec, neighbour(data, i, x_pool[j], int(y_pool[j])),
                                 log=lambda m: None,
                                 on_eval=tracker.neighbour_hook(k, data.x_train[i],
                                                                int(data.y_train[i]))))
  return wl, members, trackers, plan


def lr_cell(args, lr: float) -> common.ScriptCell:
  """Every run of one learning rate, trained in one vmapped program; its per-seed records."""
  spec = build_spec(args, lr)
  config = {"spec_hash": specs.spec_hash(spec), "seeds": args.seeds,
            "positions": args.positions}

  def compute() -> dict[str, Any]:
    t0 = time.perf_counter()
    wl, members, trackers, plan = members_for(spec, args.seeds, args.positions, args.data_dir)
    outcomes = loop.train_group(wl, members, vmapped=len(members) > 1)
    seeds_out, k = [], 0
    for seed in range(args.seeds):
      base = outcomes[k]
      k += 1 + len(plan[seed])
      seeds_out.append({
          "seed": seed, "plan": plan[seed],
          "pairs": [trackers[seed].rows[p] for p in range(len(plan[seed]))],
          "curve": [{"epoch": e.epoch, "step": e.step, "train_loss": e.train_eval_loss,
                     "test_loss": e.test_loss, "train_accuracy": e.train_accuracy,
                     "test_accuracy": e.test_accuracy} for e in base.curve]})
    cell = {"config": config, "lr": lr, "wall_s": time.perf_counter() - t0,
            "steps_per_epoch": wl.schedule.steps_per_epoch, "seeds": seeds_out}
    print(f"lr {lr:g}: {len(members)} runs in one vmapped program, {cell['wall_s']:.0f} s",
          file=sys.stderr)
    return cell

  return common.ScriptCell(f"{lr:g}", os.path.join(args.workdir, "cells", f"lr{lr:g}.json"),
                           config, compute)


def summarize_lr(cell: dict[str, Any]) -> dict[str, Any]:
  """Per evaluation step, each pair measurement averaged over a seed's pairs, then over seeds."""
  steps = [row["step"] for row in cell["seeds"][0]["pairs"][0]]
  out: dict[str, Any] = {"step": steps, "epoch": [r["epoch"] for r in cell["seeds"][0]["pairs"][0]]}
  for name in ("distance", "normalized_distance", "replaced_loss_difference",
               "test_loss_difference"):
    out[name] = [leaderboard.summarize(
        float(np.mean([pair[t][name] for pair in s["pairs"]])) for s in cell["seeds"])
        for t in range(len(steps))]
  return out


def gap_by_epochs(cell: dict[str, Any]) -> dict[str, Any]:
  """The base runs' gaps (test - train CE, train - test accuracy) at epochs 1, 2, 4, ..."""
  curves = [s["curve"] for s in cell["seeds"]]
  epochs = sorted({round(r["epoch"]) for r in curves[0]})
  powers = [e for e in epochs if e >= 1 and (e & (e - 1)) == 0] or epochs[-1:]
  loss, acc = {}, {}
  for e in powers:
    rows = [min(c, key=lambda r: abs(r["epoch"] - e)) for c in curves]
    loss[str(e)] = leaderboard.summarize(r["test_loss"] - r["train_loss"] for r in rows)
    acc[str(e)] = leaderboard.summarize(r["train_accuracy"] - r["test_accuracy"] for r in rows)
  return {"loss": loss, "accuracy": acc}


def plot(args, lrs, div, gaps) -> None:
  plt = common.plt
  fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
  for n, lr in enumerate(lrs):
    d = div[f"{lr:g}"]
    for ax, name in ((axes[0], "distance"), (axes[1], "test_loss_difference")):
      means = [c["mean"] for c in d[name]]
      std = [c["std"] or 0.0 for c in d[name]]
      ax.plot(d["epoch"], means, color=f"C{n}", label=f"lr {lr:g}")
      ax.fill_between(d["epoch"], np.subtract(means, std), np.add(means, std),
                      color=f"C{n}", alpha=0.2)
    g = gaps[f"{lr:g}"]["loss"]
    common.errorbar(axes[2], [int(e) for e in g], list(g.values()), color=f"C{n}",
                    label=f"lr {lr:g}")
  axes[0].set(xlabel="epoch", ylabel="||w_t - w'_t||", title="parameter divergence (S vs S')")
  axes[1].set(xlabel="epoch", ylabel="mean |CE(w;z) - CE(w';z)|, test z",
              title="loss difference on the test set")
  axes[2].set(xlabel="epochs trained", ylabel="test CE - train CE", xscale="log", xticks=[],
              title="generalization gap vs training length")
  ticks = [int(e) for e in gaps[f"{lrs[0]:g}"]["loss"]]
  axes[2].set_xticks(ticks, [str(t) for t in ticks])
  for ax in axes:
    ax.legend(fontsize=7)
  fig.suptitle(f"Hardt et al. 2016 on {args.dataset} (train {args.train_size}, plain SGD, batch "
               f"{BATCH}; {args.seeds} seed(s) x {args.positions} replaced example(s))"
               + (" [--quick]" if args.quick else ""))
  fig.tight_layout()
  common.savefig(fig, args, "stability.png")


def main() -> None:
  p = common.parser(__doc__, "hardt2016_stability", "digits")
  p.add_argument("--lrs", default=None, help="comma-separated learning rates "
                 f"(default {','.join(map(str, LEARNING_RATES))}; 0.05 with --quick)")
  p.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of every run")
  p.add_argument("--positions", type=int, default=None,
                 help=f"replaced examples i per seed (default {POSITIONS_PER_SEED}; 2 with --quick)")
  p.add_argument("--train_size", type=int, default=None,
                 help=f"training examples (default {TRAIN_SIZE}; 256 with --quick); the rest "
                      "of the training split is the pool of fresh examples")
  args = common.finish_args(p.parse_args())
  try:
    lrs = ((0.05,) if args.quick else LEARNING_RATES) if args.lrs is None else tuple(
        float(v) for v in args.lrs.split(","))
  except ValueError:
    common.fail(f"--lrs={args.lrs}: expected comma-separated numbers", 2)
  if args.epochs < 1 or any(not 0 < lr < float("inf") for lr in lrs):
    common.fail("--epochs must be >= 1 and every learning rate positive", 2)
  args.positions = args.positions or (2 if args.quick else POSITIONS_PER_SEED)
  args.train_size = args.train_size or (256 if args.quick else TRAIN_SIZE)
  args.eval_every = max(1, args.train_size // BATCH)  # one evaluation per epoch
  try:
    cells = common.script_cells([lr_cell(args, lr) for lr in lrs], args)
  except specs.SpecError as e:
    common.fail(str(e), 2)
  div = {key: summarize_lr(cell) for key, cell in cells.items()}
  gaps = {key: gap_by_epochs(cell) for key, cell in cells.items()}
  reference = f"{lrs[len(lrs) // 2]:g}"
  summary = {
      "experiment": "hardt2016_stability", "dataset": args.dataset, "seeds": args.seeds,
      "quick": args.quick, "optimizer": "plain SGD (momentum 0, constant lr)",
      "batch_size": BATCH, "train_size": args.train_size, "positions_per_seed": args.positions,
      "hardt": {
          "divergence": div,
          "gap_by_epochs": gaps[reference]["loss"],
          "gap_by_epochs_lr": reference,
          "accuracy_gap_by_epochs": gaps[reference]["accuracy"],
          "gap_by_epochs_by_lr": gaps,
      }}
  plot(args, lrs, div, gaps)
  results.write_json_atomic(os.path.join(args.workdir, "summary.json"), summary)
  print(f"summary -> {os.path.join(args.workdir, 'summary.json')}", file=sys.stderr)
  for key in div:
    d = div[key]
    print(f"lr {key}: distance after epoch 1 / last: {d['distance'][0]['mean']:.4g} / "
          f"{d['distance'][-1]['mean']:.4g}; test |dCE| last {d['test_loss_difference'][-1]['mean']:.4g}; "
          f"replaced-example dCE last {d['replaced_loss_difference'][-1]['mean']:.4g}; gap by epochs "
          + ", ".join(f"{e}: {c['mean']:.4f}" for e, c in gaps[key]["loss"].items()))


if __name__ == "__main__":
  sys.exit(main())
