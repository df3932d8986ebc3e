"""Hardt, Recht & Singer 2016: parameter divergence of SGD on neighbouring datasets.

Command:

    python experiments/hardt2016_stability.py            # digits, MLP 1x512, 3 lrs x 3 seeds x 4 i
    python experiments/hardt2016_stability.py --quick    # smoke test: 1 lr, 1 seed, 2 i, 2 epochs

Runtime: 1m51s wall, 62 CPU-s (load average 3.9 -> 9.0: the machine was shared)
for the default (45 runs of 1,984 steps: 3 vmapped programs of 15 runs), 2026-12-04,
after the port to the experiment driver; 1m11s (111 CPU-s) on the idle machine
before it (2026-12-02).

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

Outputs in the workdir: stability.png, summary.json, cells/lr<lr>/record.json
(one computed cell per learning rate: what a rerun keeps while its config
holds). --shard=I/N splits the learning rates over workers sharing --workdir
(experiments/driver.py); the last to finish writes the summary.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from experiments import driver, knobs
from experiments.cells import ComputedCell
from experiments.knobs import knob
from memobench import leaderboard

LEARNING_RATES = (0.01, 0.05, 0.2)
BATCH = 32


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset (its <dataset>_clean spec)")
  seeds: int = knob(3, "seeds per learning rate (each: a base run and its neighbours)", lo=1)
  lrs: tuple[float, ...] = knob(LEARNING_RATES, "plain-SGD learning rates", lo=1e-6, hi=100.0)
  epochs: int = knob(64, "epochs of every run", lo=1, hi=100_000)
  positions: int = knob(4, "replaced examples i per seed", lo=1, hi=10_000)
  train_size: int = knob(1000, "training examples; the rest of the training split is the pool "
                               "of fresh examples", lo=BATCH)
  eval_every: int = knob(0, "steps between evaluations (0: once per epoch)", lo=0, hi=1_000_000)
  quick: bool = False


# --quick: one lr, one seed, 2 positions, 2 epochs of 256 examples evaluated every 2 steps.
QUICK = Config(seeds=1, lrs=(0.05,), epochs=2, positions=2, train_size=256, eval_every=2,
               quick=True)


def check(config: Config) -> None:
  """The pool (training examples beyond train_size) must hold `positions` fresh examples."""
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  if config.dataset not in datasets.OFFLINE:
    return  # a TFDS dataset: its size is known once loaded (a one-line DataError then)
  total = datasets.load(specs.DatasetSpec(config.dataset)).num_train
  if config.train_size + config.positions > total:
    raise knobs.KnobError(
        f"train_size={config.train_size}, positions={config.positions}: {config.dataset} has "
        f"{total} training examples, and the {total - config.train_size} beyond train_size "
        f"(the pool of fresh examples) must hold positions={config.positions}; "
        f"expected train_size <= {total - config.positions}")


def eval_interval(config) -> int:
  return config.eval_every or max(1, config.train_size // BATCH)  # 0: one evaluation per epoch


def neighbour(data, i: int, x_new: np.ndarray, y_new: int):
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
    from memobench.training.losses import cross_entropy  # pylint: disable=import-outside-toplevel
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


@dataclasses.dataclass(frozen=True)
class LrCell:
  """Every setting one learning rate's runs depend on (the cell's config, hashed for resume)."""
  dataset: str
  lr: float
  seeds: int
  positions: int
  train_size: int
  epochs: int
  eval_every: int


def build_spec(cell: LrCell):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(f"{cell.dataset}_clean"), [
      f"dataset.train_size={cell.train_size}", f"budget.batch_size={BATCH}",
      f"optimizer.lr={cell.lr}", "optimizer.momentum=0", "optimizer.lr_decay_per_epoch=1",
      "analysis.dynamics=false", "analysis.effective_rank=false",
      f"budget.max_epochs={cell.epochs}", f"budget.eval_every_steps={cell.eval_every}"])
  return workload.validate(spec)


def members_for(spec, seeds: int, positions: int, data_dir=None, log=lambda m: None):
  """(workload, members, tracker per seed, plan): every run of one learning rate.

  Per seed: the base run on S, then one run per (i, j) of its plan on S with
  example i replaced by pool example j, all with the seed's key. `log` gets the
  first base run's progress lines.
  """
  from memobench import workload  # pylint: disable=import-outside-toplevel
  from memobench.training import loop, objectives  # pylint: disable=import-outside-toplevel
  wl = workload.resolve(spec, data_dir, stops_on_fit=False)
  x_pool, y_pool, _ = objectives.heldout_pool(spec, data_dir)
  data = wl.corrupted_data(spec.seed)  # clean: the same for every seed
  members, trackers, plan = [], {}, {}
  for seed in range(seeds):
    s_spec = dataclasses.replace(spec, seed=seed)
    tracker = trackers[seed] = PairTracker(data.x_test, data.y_test)
    members.append(loop.Member(s_spec, data, log=log if seed == 0 else lambda m: None,
                               on_eval=tracker.base_hook()))
    plan[seed] = pair_plan(seed, wl.dataset.num_train, len(x_pool), positions)
    for k, (i, j) in enumerate(plan[seed]):
      members.append(loop.Member(s_spec, neighbour(data, i, x_pool[j], int(y_pool[j])),
                                 log=lambda m: None,
                                 on_eval=tracker.neighbour_hook(k, data.x_train[i],
                                                                int(data.y_train[i]))))
  return wl, members, trackers, plan


def compute_lr(cell: LrCell, ctx) -> dict[str, Any]:
  """Every run of one learning rate, trained in one vmapped program; its per-seed records."""
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  wl, members, trackers, plan = members_for(build_spec(cell), cell.seeds, cell.positions,
                                            ctx.data_dir, ctx.log)
  outcomes = loop.train_group(wl, members, vmapped=len(members) > 1)
  seeds_out, k = [], 0
  for seed in range(cell.seeds):
    base = outcomes[k]
    k += 1 + len(plan[seed])
    seeds_out.append({
        "seed": seed, "plan": plan[seed],
        "pairs": [trackers[seed].rows[p] for p in range(len(plan[seed]))],
        "curve": [{"epoch": e.epoch, "step": e.step, "train_loss": e.train_eval_loss,
                   "test_loss": e.test_loss, "train_accuracy": e.train_accuracy,
                   "test_accuracy": e.test_accuracy} for e in base.curve]})
  record = {"lr": cell.lr, "wall_s": time.perf_counter() - t0,
            "steps_per_epoch": wl.schedule.steps_per_epoch, "status": outcomes[0].status,
            "seeds": seeds_out}
  ctx.log(f"{len(members)} runs in one vmapped program, {record['wall_s']:.0f} s")
  return record


def grid(config: Config) -> list[ComputedCell]:
  return [ComputedCell(f"lr{lr:g}", compute_lr, LrCell(
      config.dataset, lr, config.seeds, config.positions, config.train_size, config.epochs,
      eval_interval(config))) for lr in dict.fromkeys(config.lrs)]


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


def summarize(config: Config, records: dict[str, Any]) -> dict[str, Any]:
  lrs = list(dict.fromkeys(config.lrs))
  cells = {f"{lr:g}": records[f"lr{lr:g}"] for lr in lrs}
  div = {key: summarize_lr(cell) for key, cell in cells.items()}
  gaps = {key: gap_by_epochs(cell) for key, cell in cells.items()}
  reference = f"{lrs[len(lrs) // 2]:g}"
  return {
      "experiment": "hardt2016_stability", "dataset": config.dataset, "seeds": config.seeds,
      "quick": config.quick, "optimizer": "plain SGD (momentum 0, constant lr)",
      "batch_size": BATCH, "train_size": config.train_size,
      "positions_per_seed": config.positions,
      "hardt": {
          "divergence": div,
          "gap_by_epochs": gaps[reference]["loss"],
          "gap_by_epochs_lr": reference,
          "accuracy_gap_by_epochs": gaps[reference]["accuracy"],
          "gap_by_epochs_by_lr": gaps,
      }}


def plot(config: Config, summary: dict[str, Any]) -> dict[str, Any]:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  h = summary["hardt"]
  div, gaps = h["divergence"], h["gap_by_epochs_by_lr"]
  fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
  for n, key in enumerate(div):
    d = div[key]
    for ax, name in ((axes[0], "distance"), (axes[1], "test_loss_difference")):
      means = [c["mean"] for c in d[name]]
      std = [c["std"] or 0.0 for c in d[name]]
      ax.plot(d["epoch"], means, color=f"C{n}", label=f"lr {key}")
      ax.fill_between(d["epoch"], np.subtract(means, std), np.add(means, std),
                      color=f"C{n}", alpha=0.2)
    g = gaps[key]["loss"]
    errorbar(axes[2], [int(e) for e in g], list(g.values()), color=f"C{n}", label=f"lr {key}")
  axes[0].set(xlabel="epoch", ylabel="||w_t - w'_t||", title="parameter divergence (S vs S')")
  axes[1].set(xlabel="epoch", ylabel="mean |CE(w;z) - CE(w';z)|, test z",
              title="loss difference on the test set")
  axes[2].set(xlabel="epochs trained", ylabel="test CE - train CE", xscale="log", xticks=[],
              title="generalization gap vs training length")
  ticks = [int(e) for e in gaps[next(iter(gaps))]["loss"]]
  axes[2].set_xticks(ticks, [str(t) for t in ticks])
  for ax in axes:
    ax.legend(fontsize=7)
  fig.suptitle(f"Hardt et al. 2016 on {summary['dataset']} (train {summary['train_size']}, "
               f"plain SGD, batch {BATCH}; {summary['seeds']} seed(s) x "
               f"{summary['positions_per_seed']} replaced example(s))"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"stability.png": fig}


def report(config: Config, summary: dict[str, Any]) -> str:
  h = summary["hardt"]
  lines = []
  for key, d in h["divergence"].items():
    lines.append(
        f"lr {key}: distance after epoch 1 / last: {d['distance'][0]['mean']:.4g} / "
        f"{d['distance'][-1]['mean']:.4g}; test |dCE| last {d['test_loss_difference'][-1]['mean']:.4g}; "
        f"replaced-example dCE last {d['replaced_loss_difference'][-1]['mean']:.4g}; gap by epochs "
        + ", ".join(f"{e}: {c['mean']:.4f}" for e, c in h["gap_by_epochs_by_lr"][key]["loss"].items()))
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="hardt2016_stability", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
