"""Barrett & Dherin 2021: implicit gradient regularization, and the explicit regularizer.

Command:

    python experiments/barrett2021_igr.py            # digits, MLP 1x512, full-batch GD, 3 seeds
    python experiments/barrett2021_igr.py --quick    # smoke test: 1 cell (lr 0.5, lambda 0), 1 seed, 8 steps

Runtime: 37m00s wall for the default (6 cells of 3 vmapped seeds, 18,834 full-batch
steps per seed, two of the cells with double backprop), 166 CPU-s, on the shared
2-core machine at load average 21 -> 24 (2026-12-04); the CPU seconds, not the wall
time, are what an idle machine would need (estimated ~2-3 minutes).

The paper ("Implicit gradient regularization", ICLR 2021): by backward error
analysis, gradient descent with step size h follows, to second order in h,
the gradient flow of the modified loss L + (h/4) ||grad L||^2: it implicitly
penalizes the squared gradient norm with strength lambda = h/4. So larger
learning rates find solutions with smaller gradient norms, in flatter regions,
that generalize better (their Sec. 5, MLPs on MNIST: test accuracy rises and
the gradient norm falls as h grows); and the same term added explicitly,
L + lambda ||grad L||^2 (their Sec. 6, "explicit gradient regularization"),
at a small learning rate, recovers that effect as lambda grows.

What this script does: full-batch gradient descent (plain: no momentum,
constant step size, batch = the whole training set; the setting of their
analysis) of a 1x512 MLP on the first 500 digits training examples, every run
for the same gradient-flow time T = h * steps = 1,000 with NO fit stop (the
first protocol stopped every run at 100% training accuracy, which ended every h
at the same flow time ~94 and loss ~0.049, where GD tracks the flow and the
implicit term is ~0.3% of the loss). Every 1% of T it records the training CE
(evaluation mode, without any penalty), test accuracy and ||grad_theta L_train||^2
(the full training set), and every 10% the top Hessian eigenvalue lambda_max
(Lanczos, 20 steps), which is also measured at initialization (cell `init`).
  by_lr      plain GD at h = 0.2, 0.5, 1.0, 1.2 (implicit lambda = h/4). lambda_max at
             initialization is 7.8 +- 1.3 (2/lambda_max = 0.26), so h >= 0.5 starts
             above the edge of stability and passes an early unstable phase; after
             10% of T the largest h * lambda_max is 0.59 / 1.22 / 1.61 / 1.71 (< 2:
             h <= 1.2 < 2 / lambda_max along the rest of the run; 1.0 * lambda_max
             oscillated around 2 in the first 60 flow-time units of a pilot).
  by_lambda  at h0 = 0.2, the `igr` objective (analysis.objective=igr; objectives.py):
             mean CE + lambda ||grad CE||^2 by double backprop, lambda = 0 (plain GD at
             h0), 0.3 (= h/4 of the largest h) and 1.0, where lambda ||grad L||^2 is
             comparable to L early on (||grad L||^2 ~1.3 at L ~2 in the first steps; a
             pilot measured it).
Compared, seed by seed (the same initialization): the largest h against the
smallest, and the largest lambda against lambda = 0, at equal flow time (the end)
and at equal training loss (each run at its first evaluation with train CE <= the
largest final CE of any run, 0.0027, and at 10x that, 0.027, earlier).

Measured (3 seeds, mean (std); every run fitted its training set):

  at T = 1000       test acc         ||grad L||^2  train CE  | equal loss 0.0027: t  ||grad L||^2
  plain h  0.2      0.9593 (0.0032)  3.35e-6       0.00254   |   960                 3.64e-6
           0.5      0.9602 (0.0042)  3.30e-6       0.00250   |   950                 3.69e-6
           1.0      0.9667 (0.0056)  3.15e-6       0.00240   |   920                 3.81e-6
           1.2      0.9657 (0.0042)  3.13e-6       0.00237   |   909                 3.87e-6
  igr at h0 = 0.2, lambda
           0.3      0.9648 (0.0016)  3.22e-6       0.00246   |   933                 3.74e-6
           1.0      0.9648 (0.0032)  3.70e-6       0.00260   |   973                 3.91e-6

  h = 1.2 against h = 0.2, per seed: test accuracy +1.11, +0.83, +0.00 points;
  ||grad L||^2 x0.94, 0.94, 0.93 at T, but x1.07, 1.07, 1.05 at equal loss (and at
  10x the loss, t ~157: accuracy +0.56, +0.56, -0.28). lambda = 1 against 0: +1.11,
  +0.00, +0.56 points; ||grad L||^2 x1.14, 1.13, 1.05 at T, x1.03-1.11 at equal loss.

Verdicts (summary.json "verdicts", computed by a rule in the code: agrees needs
higher accuracy and a smaller ||grad L||^2 in every seed): partly, all four. At
equal flow time the larger step and the explicit penalty both raise test accuracy
(by 0.6 points on average; 2 of 3 seeds, the third unchanged), as the paper says
-- the first protocol's "does not reproduce" came from its fit stop. But the
gradient norm does not carry the effect: at equal training loss the larger step
and the penalty end with a slightly LARGER ||grad L||^2 (x1.03-1.11), at equal
flow time the larger step's is 6% smaller only because it also reached a lower
loss, and the penalty's is larger. The accuracy gain appears late (at t ~157,
train CE 0.027, it is +0.28 points on average for h and -0.09 for lambda). Departures: 500 digits examples, not MNIST; the
larger steps start above 2 / lambda_max (an early edge-of-stability phase,
outside the backward error analysis); 3 seeds, where a difference of one test
example is 0.28 points. Chosen after pilots (said so): T = 1000 (the issue's
probe), h0 = 0.2 and the lambdas (from the measured ||grad L||^2 and stability of
the penalized run at h0), the h grid's top 1.2.

Outputs in the workdir: igr.png, summary.json, cells/<cell>/record.json (one
computed cell per (h, lambda), its seeds one vmapped program; `init`: lambda_max
at initialization; what a rerun keeps while its config holds). --shard=I/N
splits the cells over workers sharing --workdir (experiments/driver.py); the
last to finish writes the summary.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import numpy as np

from experiments import driver, knobs, verdicts
from experiments.cells import ComputedCell
from experiments.knobs import knob
from memobench import leaderboard

LEARNING_RATES = (0.2, 0.5, 1.0, 1.2)
EVALS = 100             # evaluations per run (each: train CE, accuracies, ||grad L||^2)
SHARPNESS_EVERY = 10    # the top Hessian eigenvalue at every 10th evaluation (and the last)
EARLY = 10.0            # the earlier equal-loss level: EARLY x the largest final training CE
LANCZOS_ITERS = 20


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset (its <dataset>_clean spec)")
  seeds: int = knob(3, "seeds per cell, trained together", lo=1)
  lrs: tuple[float, ...] = knob(LEARNING_RATES, "plain-GD learning rates h", lo=1e-6, hi=100.0)
  small_lr: float = knob(0.2, "learning rate h0 of the explicit-regularizer sweep", lo=1e-6,
                         hi=100.0)
  lambdas: tuple[float, ...] | None = knob(
      (0.0, 0.3, 1.0), "explicit strengths at h0 (0: plain GD at h0; none: 0 and h/4 of each "
                       "learning rate above h0)", lo=0.0, hi=1e6)
  train_size: int = knob(500, "training examples, all in every batch", lo=1)
  flow_time: float = knob(1000.0, "gradient-flow time h * steps of every run (no fit stop): "
                                  "a run's step budget is ceil(flow_time / h)", lo=1e-6, hi=1e7)
  quick: bool = False


# --quick: one cell (lr 0.5, lambda 0), one seed, 8 steps (flow time 4) on 200 examples.
QUICK = Config(seeds=1, lrs=(0.5,), small_lr=0.5, lambdas=(0.0,), train_size=200, flow_time=4.0,
               quick=True)


def implicit_lambda(lr: float) -> float:
  """Barrett & Dherin's implicit strength of plain GD with step h: lambda = h / 4."""
  return lr / 4


def lambdas(config: Config) -> tuple[float, ...]:
  if config.lambdas is not None:
    return tuple(dict.fromkeys(config.lambdas))
  return (0.0, *dict.fromkeys(implicit_lambda(h) for h in config.lrs if h > config.small_lr))


def check(config: Config) -> None:
  max_steps = max(math.ceil(config.flow_time / h) for h in (*config.lrs, config.small_lr))
  if max_steps > 10_000_000:
    raise knobs.KnobError(f"flow_time={config.flow_time:g}: {max_steps:,} steps at the smallest "
                          "learning rate; expected at most 10,000,000")


def _loss_fn(module, model_state, x, y):
  from memobench.training.losses import mean_cross_entropy  # pylint: disable=import-outside-toplevel
  return lambda p: mean_cross_entropy(module.apply({"params": p, **model_state}, x, train=False), y)


@functools.lru_cache(maxsize=None)
def _programs(module):
  """(||grad L||^2, Lanczos tridiagonal) of the full-batch training CE, jitted once per module."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from jax.flatten_util import ravel_pytree  # pylint: disable=import-outside-toplevel
  from memobench.metrics import sharpness  # pylint: disable=import-outside-toplevel

  def grad_norm_sq(params, model_state, x, y):
    grads = jax.grad(_loss_fn(module, model_state, x, y))(params)
    return sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))

  def tridiagonal(params, model_state, x, y, key):
    flat, unravel = ravel_pytree(params)
    flat_loss = lambda q: _loss_fn(module, model_state, x, y)(unravel(q))  # noqa: E731
    hvp = lambda v: jax.jvp(jax.grad(flat_loss), (flat,), (v,))[1]  # noqa: E731
    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    alphas, betas, _ = sharpness.lanczos_tridiagonal(hvp, v0, LANCZOS_ITERS)
    return alphas, betas
  return jax.jit(grad_norm_sq), jax.jit(tridiagonal)


def grad_norm_sq(module, params, model_state, x, y) -> float:
  """||grad_theta mean CE(x, y)||^2 over every parameter, evaluation mode."""
  return float(_programs(module)[0](params, model_state, x, y))


def top_eigenvalue(module, params, model_state, x, y, seed: int = 0) -> float:
  """The top Hessian eigenvalue of the mean training CE (LANCZOS_ITERS Lanczos steps; the
  largest Ritz value, as metrics/sharpness.py computes it)."""
  import jax  # pylint: disable=import-outside-toplevel
  from memobench.metrics import batch_hessian  # pylint: disable=import-outside-toplevel
  alphas, betas = _programs(module)[1](params, model_state, x, y, jax.random.key(seed))
  return batch_hessian.top_ritz_value(np.asarray(alphas), np.asarray(betas))


class Trajectory:
  """on_eval of one run: per evaluation, the flow time, train CE (evaluation mode, without
  the penalty), accuracies, ||grad L_train||^2, and every SHARPNESS_EVERY-th evaluation (and
  at the end) the top Hessian eigenvalue."""

  def __init__(self, lr: float, x, y, total_steps: int):
    self.lr, self.x, self.y, self.total = lr, x, y, total_steps
    self.rows: list[dict[str, Any]] = []

  def __call__(self, ev) -> None:
    module, params, state = ev.model()
    due = len(self.rows) % SHARPNESS_EVERY == 0 or ev.step >= self.total
    self.rows.append({
        "step": ev.step, "flow_time": ev.step * self.lr, "train_loss": ev.train_eval_loss,
        "train_accuracy": ev.train_accuracy, "test_accuracy": ev.test_accuracy,
        "grad_norm_sq": grad_norm_sq(module, params, state, self.x, self.y),
        "sharpness": top_eigenvalue(module, params, state, self.x, self.y) if due else None})


@dataclasses.dataclass(frozen=True)
class IgrCell:
  """One (h, lambda) cell's settings (its config, hashed for resume)."""
  dataset: str
  train_size: int
  lr: float
  lam: float
  max_steps: int
  seeds: int
  evals: int


@dataclasses.dataclass(frozen=True)
class InitCell:
  """The top Hessian eigenvalue at initialization, per seed (the same for every h)."""
  dataset: str
  train_size: int
  seeds: int


def compute_init(cell: InitCell, ctx) -> dict[str, Any]:
  from memobench import prng, workload  # pylint: disable=import-outside-toplevel
  from memobench.training.steps import make_steps  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  spec = cell_spec(IgrCell(cell.dataset, cell.train_size, 1.0, 0.0, 1, cell.seeds, 1))
  wl = workload.resolve(spec, ctx.data_dir)
  data = wl.corrupted_data(spec.seed)
  x, y = np.asarray(data.x_train), np.asarray(data.y_train)
  out = []
  for seed in range(cell.seeds):
    key = prng.run_key(seed)
    state = make_steps(wl, key).init(jax.random.fold_in(key, prng.INIT))
    out.append(top_eigenvalue(wl.module, state.params, state.model_state, x, y))
  return {"sharpness": out}


def cell_key(lr: float, lam: float) -> str:
  return f"lr{lr:g}" + (f"_lambda{lam:g}" if lam else "")


def cell_spec(cell: IgrCell):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  overrides = [
      f"dataset.train_size={cell.train_size}", f"budget.batch_size={cell.train_size}",
      f"optimizer.lr={cell.lr}", "optimizer.momentum=0", "optimizer.lr_decay_per_epoch=1",
      f"budget.max_epochs={cell.max_steps}", f"budget.max_steps={cell.max_steps}",
      f"budget.eval_every_steps={max(1, cell.max_steps // cell.evals)}",
      "analysis.dynamics=false", "analysis.effective_rank=false"]
  if cell.lam:
    overrides += ["analysis.objective=igr", f"analysis.igr_lambda={cell.lam}"]
  spec, _ = specs.with_overrides(catalogue.get(f"{cell.dataset}_clean"), overrides)
  return workload.validate(spec)


def compute_igr(cell: IgrCell, ctx) -> dict[str, Any]:
  """One cell's seeds side by side in one vmapped program of the library loop, for the
  whole flow time (no fit stop); each run's trajectory recorded by its tracker."""
  from memobench import workload  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec = cell_spec(cell)
  wl = workload.resolve(spec, ctx.data_dir, stops_on_fit=False)
  data = wl.corrupted_data(spec.seed)  # clean data: the same for every seed
  x, y = np.asarray(data.x_train), np.asarray(data.y_train)
  trackers = [Trajectory(cell.lr, x, y, wl.schedule.total_steps) for _ in range(cell.seeds)]
  members = [loop.Member(dataclasses.replace(spec, seed=s), data, on_eval=trackers[s],
                         log=ctx.log if s == 0 else lambda m: None) for s in range(cell.seeds)]
  outcomes = loop.train_group(wl, members, vmapped=len(members) > 1)
  runs = [{"seed": seed, "status": out.status, "steps": out.final.step,
           "trajectory": trackers[seed].rows} for seed, out in enumerate(outcomes)]
  record = {"lr": cell.lr, "lambda": cell.lam, "wall_s": time.perf_counter() - t0,
            "max_steps": wl.schedule.total_steps, "runs": runs}
  ctx.log(f"{cell.seeds} seed(s) in {record['wall_s']:.0f} s; final test acc "
          + ", ".join(f"{r['trajectory'][-1]['test_accuracy']:.4f}" for r in runs))
  return record


def grid(config: Config) -> list[ComputedCell]:
  """One cell per plain-GD h, then per explicit lambda at h0; lambda 0 at h0 is plain GD
  at h0: the same cell as h0's where h0 is among the lrs."""
  cells: dict[str, ComputedCell] = {}
  plan = [*((h, 0.0) for h in config.lrs), *((config.small_lr, lam) for lam in lambdas(config))]
  for lr, lam in plan:
    key = cell_key(lr, lam)
    cells.setdefault(key, ComputedCell(key, compute_igr, IgrCell(
        config.dataset, config.train_size, lr, lam, math.ceil(config.flow_time / lr),
        config.seeds, EVALS)))
  return [ComputedCell("init", compute_init, InitCell(config.dataset, config.train_size,
                                                       config.seeds)), *cells.values()]


# ---------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------


def at_loss(trajectory: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
  """The first evaluation at which the training CE is <= target (None: never)."""
  return next((r for r in trajectory if r["train_loss"] <= target), None)


def cell_summary(cell: dict[str, Any], target: float, skip_flow: float) -> dict[str, Any]:
  """At the end (equal flow time), at the first evaluation with train CE <= target (equal
  loss) and <= 10 x target (equal loss, earlier), over seeds; the sharpness at the first
  evaluation and at the end, and its largest h * lambda_max after flow time `skip_flow`
  (the first evaluations' transient left out)."""
  runs = [r["trajectory"] for r in cell["runs"]]
  h = cell["lr"]

  def stat(rows, name):
    return leaderboard.summarize(None if r is None else r[name] for r in rows)
  final = [t[-1] for t in runs]
  hit = [at_loss(t, target) for t in runs]
  early = [at_loss(t, EARLY * target) for t in runs]
  edge = [max((h * r["sharpness"] for r in t if r["sharpness"] is not None
               and r["flow_time"] >= skip_flow), default=None) for t in runs]
  return {
      "lr": h, "max_steps": cell["max_steps"],
      "statuses": [r["status"] for r in cell["runs"]],
      "fitted": sum(r["train_accuracy"] >= 1.0 for r in final),
      "at_flow_time": {name: stat(final, name) for name in (
          "test_accuracy", "grad_norm_sq", "train_loss", "train_accuracy", "sharpness")},
      "at_loss": {"reached": sum(r is not None for r in hit),
                  **{name: stat(hit, name) for name in (
                      "flow_time", "train_loss", "test_accuracy", "grad_norm_sq")}},
      "at_loss_early": {"reached": sum(r is not None for r in early),
                        **{name: stat(early, name) for name in (
                            "flow_time", "train_loss", "test_accuracy", "grad_norm_sq")}},
      "sharpness_at_first_eval": stat([t[0] for t in runs], "sharpness"),
      "max_edge": leaderboard.summarize(edge),   # max h * lambda_max: 2 is the edge of stability
      "per_seed": {"test_accuracy": [r["test_accuracy"] for r in final],
                   "grad_norm_sq": [r["grad_norm_sq"] for r in final],
                   "test_accuracy_at_loss": [None if r is None else r["test_accuracy"] for r in hit],
                   "grad_norm_sq_at_loss": [None if r is None else r["grad_norm_sq"] for r in hit],
                   "test_accuracy_at_loss_early": [None if r is None else r["test_accuracy"]
                                                   for r in early],
                   "grad_norm_sq_at_loss_early": [None if r is None else r["grad_norm_sq"]
                                                  for r in early]},
      "curves": {name: [[r[name] for r in t] for t in runs]
                 for name in ("flow_time", "train_loss", "test_accuracy", "grad_norm_sq")},
  }


def paired(a: dict[str, Any], b: dict[str, Any], where: str) -> dict[str, Any]:
  """b against a, seed by seed (same initialization): test accuracy difference and the
  ratio of ||grad L||^2, at the end ("") or at equal loss ("_at_loss")."""
  acc = [None if x is None or y is None else y - x for x, y in zip(
      a["per_seed"]["test_accuracy" + where], b["per_seed"]["test_accuracy" + where])]
  ratio = [None if x is None or y is None else y / x for x, y in zip(
      a["per_seed"]["grad_norm_sq" + where], b["per_seed"]["grad_norm_sq" + where])]
  return {"accuracy_difference": acc, "grad_norm_sq_ratio": ratio}


def rule(pair: dict[str, Any]) -> str:
  """agrees: higher test accuracy and a smaller ||grad L||^2 in every seed; disagrees: lower
  accuracy in every seed; partly: either in every seed, or accuracy up on average."""
  acc, ratio = pair["accuracy_difference"], pair["grad_norm_sq_ratio"]
  if None in acc or None in ratio or not acc:
    return "inconclusive"
  up, flatter = all(d > 0 for d in acc), all(r < 1 for r in ratio)
  if up and flatter:
    return "agrees"
  if all(d < 0 for d in acc):
    return "disagrees"
  if up or flatter or np.mean(acc) > 0:
    return "partly"
  return "inconclusive"


def summarize(config: Config, records: dict[str, Any]) -> dict[str, Any]:
  h0 = config.small_lr
  all_runs = [r["trajectory"] for key, rec in records.items() if key != "init"
              for r in rec["runs"]]
  # Equal loss: the largest final training CE of any run, so every run reaches it.
  target = max(t[-1]["train_loss"] for t in all_runs)
  skip = 0.1 * config.flow_time
  by_lr = {f"{h:g}": {**cell_summary(records[cell_key(h, 0.0)], target, skip),
                      "implicit_lambda": implicit_lambda(h)} for h in config.lrs}
  by_lambda = {f"{lam:g}": {**cell_summary(records[cell_key(h0, lam)], target, skip),
                            "lambda": lam, "total_lambda": lam + implicit_lambda(h0)}
               for lam in lambdas(config)}
  comparisons = {}
  lrs = sorted(config.lrs)
  if len(lrs) > 1:
    small, large = by_lr[f"{lrs[0]:g}"], by_lr[f"{lrs[-1]:g}"]
    comparisons["implicit"] = {"a": f"h={lrs[0]:g}", "b": f"h={lrs[-1]:g}",
                               "at_flow_time": paired(small, large, ""),
                               "at_loss": paired(small, large, "_at_loss"),
                               "at_loss_early": paired(small, large, "_at_loss_early")}
  lams = sorted(lambdas(config))
  if len(lams) > 1 and lams[0] == 0:
    plain, strong = by_lambda["0"], by_lambda[f"{lams[-1]:g}"]
    comparisons["explicit"] = {"a": f"lambda=0 at h0={h0:g}", "b": f"lambda={lams[-1]:g}",
                               "at_flow_time": paired(plain, strong, ""),
                               "at_loss": paired(plain, strong, "_at_loss"),
                               "at_loss_early": paired(plain, strong, "_at_loss_early")}
  summary = {
      "experiment": "barrett2021_igr", "dataset": config.dataset, "seeds": config.seeds,
      "quick": config.quick, "optimizer": "full-batch GD (momentum 0, constant lr)",
      "train_size": config.train_size, "flow_time": config.flow_time,
      "equal_loss_target": target,
      "initial_sharpness": leaderboard.summarize(records["init"]["sharpness"]),
      "igr": {"by_lr": by_lr, "by_lambda": by_lambda, "small_lr": h0,
              "small_lr_implicit_lambda": implicit_lambda(h0), "comparisons": comparisons}}
  summary["verdicts"] = verdicts_of(config, summary)
  return summary


def verdicts_of(config: Config, summary: dict[str, Any]) -> list[dict[str, Any]]:
  igr, out = summary["igr"], []
  target = summary["equal_loss_target"]
  sharp0 = summary["initial_sharpness"]["mean"]
  edges = {k: v["max_edge"]["mean"] for k, v in igr["by_lr"].items()}
  departures = (
      f"digits, {config.train_size} training examples (the paper: MNIST-size data)",
      f"lambda_max at initialization {sharp0:.3g}: h > {2 / sharp0:.2g} starts above the edge of "
      "stability 2 / lambda_max and passes an early unstable phase, outside the backward "
      "error analysis; after 10% of the flow time the largest h * lambda_max is "
      + ", ".join(f"{v:.2f} (h={k})" for k, v in edges.items() if v is not None),
      f"{config.seeds} seeds; the explicit penalty on the full-batch gradient "
      "(memobench's lambda = the paper's mu / m)")

  def text(name, comparison, where):  # pylint: disable=unused-argument
    c = comparison[where]
    return (f"{comparison['b']} vs {comparison['a']}, per seed: test accuracy "
            + ", ".join("n/a" if d is None else f"{100 * d:+.2f}" for d in c["accuracy_difference"])
            + " points, ||grad L||^2 x"
            + ", ".join("n/a" if r is None else f"{r:.2f}" for r in c["grad_norm_sq_ratio"]))

  for name, claim in (("implicit", "gradient descent with a larger step h generalizes better and "
                                   "ends flatter (smaller ||grad L||^2): the implicit penalty "
                                   "(h/4) ||grad L||^2"),
                      ("explicit", "the explicit penalty lambda ||grad L||^2 added at a small step "
                                   "h0 improves test accuracy and lowers ||grad L||^2")):
    comparison = igr["comparisons"].get(name)
    if comparison is None:
      continue
    for where, matched in (("at_flow_time", f"equal gradient-flow time h * steps = "
                                            f"{config.flow_time:g}, no fit stop"),
                           ("at_loss", f"equal training loss: each run at its first evaluation "
                                       f"with train CE <= {target:.3g} (the largest final loss "
                                       f"of any run; also at {EARLY:g} x it, earlier)")):
      verdict = rule(comparison[where])
      measured = text(name, comparison, where)
      if where == "at_loss":
        measured += f"; at train CE <= {EARLY * target:.3g}: " + text(name, comparison,
                                                                      "at_loss_early")
      out.append(verdicts.verdict(
          claim + f" ({'equal flow time' if where == 'at_flow_time' else 'equal loss'})",
          paper="Barrett & Dherin 2021, Sec. 3 and 5" if name == "implicit"
          else "Barrett & Dherin 2021, Sec. 6",
          matched=matched + "; the same initialization per seed", measured=measured,
          verdict=verdict, departures=departures,
          decide=None if verdict != "inconclusive" else
          "more seeds (the differences are a few test examples)", figure="igr.png"))
  return out


# ---------------------------------------------------------------------------
# Figures and report
# ---------------------------------------------------------------------------


def plot(config: Config, summary: dict[str, Any]) -> dict[str, Any]:
  """Per row (plain GD by h; the explicit penalty by lambda at h0): training CE, ||grad L||^2
  and test accuracy against gradient-flow time (the seed mean; the dotted line: the
  equal-loss target)."""
  from experiments.figures import plt  # pylint: disable=import-outside-toplevel
  igr = summary["igr"]
  fig, axes = plt.subplots(2, 3, figsize=(14, 7.2), squeeze=False)
  rows = (("plain full-batch GD", {f"h={k}": v for k, v in igr["by_lr"].items()}),
          (f"igr objective at h0={igr['small_lr']:g}",
           {f"lambda={k}": v for k, v in igr["by_lambda"].items()}))
  for r, (title, cells) in enumerate(rows):
    for n, (label, cell) in enumerate(cells.items()):
      c = cell["curves"]
      t = np.mean(np.asarray(c["flow_time"], float), axis=0)
      for col, name in enumerate(("train_loss", "grad_norm_sq", "test_accuracy")):
        values = np.mean(np.asarray(c[name], float), axis=0)
        axes[r][col].plot(t, values, color=f"C{n}", lw=1.2, label=label)
    axes[r][0].axhline(summary["equal_loss_target"], color="gray", ls=":", lw=1,
                       label="equal-loss target")
    axes[r][0].set(ylabel=f"{title}\ntrain CE", yscale="log")
    axes[r][1].set(ylabel="||grad L_train||^2", yscale="log")
    axes[r][2].set(ylabel="test accuracy")
    for ax in axes[r]:
      ax.set(xlabel="gradient-flow time h * steps", xscale="log")
      ax.legend(fontsize=7)
  fig.suptitle(f"Barrett & Dherin 2021 on {summary['dataset']} (train {summary['train_size']}, "
               f"full-batch GD, flow time {summary['flow_time']:g}, no fit stop; "
               f"{summary['seeds']} seed(s), means)" + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"igr.png": fig}


def report(config: Config, summary: dict[str, Any]) -> str:
  lines = [f"equal-loss target (train CE): {summary['equal_loss_target']:.4g}"]
  for name, table in (("h", summary["igr"]["by_lr"]), ("lambda", summary["igr"]["by_lambda"])):
    for key, v in table.items():
      end, hit = v["at_flow_time"], v["at_loss"]
      lines.append(f"{name} {key}: at T test acc {end['test_accuracy']['mean']:.4f}, ||grad||^2 "
                   f"{end['grad_norm_sq']['mean']:.3g}, train CE {end['train_loss']['mean']:.4g}; "
                   f"at equal loss (t={hit['flow_time']['mean'] or 0:.0f}) test acc "
                   f"{hit['test_accuracy']['mean'] or 0:.4f}, ||grad||^2 "
                   f"{hit['grad_norm_sq']['mean'] or 0:.3g}; max h*lambda_max "
                   f"{v['max_edge']['mean'] or 0:.2f}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="barrett2021_igr", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
