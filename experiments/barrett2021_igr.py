"""Barrett & Dherin 2021: implicit gradient regularization, and the explicit regularizer.

Command:

    python experiments/barrett2021_igr.py            # digits, MLP 1x512, full-batch GD, 3 seeds
    python experiments/barrett2021_igr.py --quick    # smoke test: 1 cell (lr 0.5, lambda 0), 1 seed, 8 steps

Runtime: 4m00s wall, 73 CPU-s (load average 9.6 -> 16.9: the machine was shared)
for the default (7 cells of 3 vmapped seeds), 2026-12-04, after the port to the
experiment driver; 1m54s (185 CPU-s) on the idle machine before it (2026-12-02).

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
analysis) of a 1x512 MLP on the first 500 digits training
examples. Each run trains until it classifies every training example
correctly (budget.fit_threshold = 1.0, checked every few steps) or its step
budget (GRADIENT_FLOW_TIME / h steps: the same gradient-flow time h * steps
for every learning rate) runs out, then reports test accuracy and the
squared norm of the full-training-set gradient ||grad_theta L_train||^2 (mean
CE on the whole training set, evaluation mode) at its final parameters.
  by_lr      plain GD at each learning rate h (implicit lambda = h / 4 reported)
  by_lambda  at the small learning rate h0, the `igr` objective
             (analysis.objective=igr, analysis.igr_lambda=lambda; objectives.py):
             mean CE + lambda ||grad CE||^2 by double backprop; lambda 0 is plain
             GD at h0. Total strength lambda + h0/4 is reported beside each.
The lambdas are the implicit strengths h/4 of the by_lr learning rates above
h0, so each explicit run has a plain-GD counterpart of the same total strength.

Expected result (the paper's, qualitatively): test accuracy up and final
||grad L||^2 down as h grows; the same as lambda grows at h0.
Measured (digits, train 500, flow time 100, 3 seeds; mean (std over seeds);
every run fitted; 2026-12-02):

  plain GD   h     implicit lambda  test acc         ||grad L||^2       train CE  steps
             0.1   0.025            0.9565 (0.0032)  6.10e-4 (2.3e-5)   0.0493    942
             0.2   0.05             0.9565 (0.0032)  5.97e-4 (2.2e-5)   0.0486    476
             0.5   0.125            0.9565 (0.0032)  6.15e-4 (3.2e-5)   0.0490    187
             1.0   0.25             0.9546 (0.0016)  5.98e-4 (6.6e-6)   0.0464     95
  igr at h0 = 0.1, lambda
             0     (total 0.025)    0.9565 (0.0032)  6.10e-4 (2.3e-5)   0.0493    942
             0.05  (total 0.075)    0.9565 (0.0032)  6.09e-4 (2.5e-5)   0.0492    942
             0.125 (total 0.15)     0.9565 (0.0032)  6.05e-4 (2.2e-5)   0.0491    942
             0.25  (total 0.275)    0.9565 (0.0032)  6.01e-4 (2.4e-5)   0.0487    942

Does NOT reproduce here: a 10x range of learning rates, and explicit lambdas
up to 10x the small rate's implicit one, give the same test accuracy (the
same predictions: 0.9528 / 0.9583 / 0.9583 for the three seeds in nearly every
cell) and final gradient norms within 3% of each other with no trend in h.
The explicit term moves the gradient norm in the paper's direction, but by
1.4% at lambda 0.25 (6.10e-4 -> 6.01e-4, paired seeds). Tried: only this
setting (one data size, stopping at 100% training accuracy, h <= 1); what
was not tried and may matter: larger step sizes near the edge of stability
(h ~ 2 / top Hessian eigenvalue), where the h/4 term is large against the
loss; a fixed step budget instead of stopping at interpolation, where every
run here ends at nearly the same training loss (~0.049); larger lambdas; and
MNIST-size data as in the paper.
A probe past h = 1 (2026-12-02, `--lrs=0.1,1,2,4`, 2 min, not committed):
h = 2, beyond 2 / (top Hessian eigenvalue ~1.5-1.7, granziol_batch_spectrum)
~1.2, no longer fits within the same flow time (50 steps; train CE 0.225,
||grad L||^2 0.094, test 0.918) and h = 4 diverges (test 0.15); the
explicit lambdas 0.25 / 0.5 / 1 at h0 = 0.1 leave test accuracy at
0.957 / 0.956 / 0.957 and the gradient norm at 6.0-6.4e-4. Still no gain
from larger h or lambda on this data.

Outputs in the workdir: igr.png, summary.json, cells/<cell>/record.json (one
computed cell per (h, lambda), its seeds one vmapped program; what a rerun
keeps while its config holds). --shard=I/N splits the cells over workers
sharing --workdir (experiments/driver.py); the last to finish writes the summary.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from experiments import driver, knobs
from experiments.cells import ComputedCell
from experiments.knobs import knob
from memobench import leaderboard

LEARNING_RATES = (0.1, 0.2, 0.5, 1.0)
EVALS = 40  # evaluations (stop checks) per run budget


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset (its <dataset>_clean spec)")
  seeds: int = knob(3, "seeds per cell, trained together", lo=1)
  lrs: tuple[float, ...] = knob(LEARNING_RATES, "plain-GD learning rates h", lo=1e-6, hi=100.0)
  small_lr: float = knob(0.1, "learning rate h0 of the explicit-regularizer sweep", lo=1e-6,
                         hi=100.0)
  lambdas: tuple[float, ...] | None = knob(
      None, "explicit strengths at h0 (none: 0 and h/4 of each learning rate above h0)",
      lo=0.0, hi=1e6)
  train_size: int = knob(500, "training examples, all in every batch", lo=1)
  flow_time: float = knob(100.0, "gradient-flow time h * steps: a run's step budget is "
                                 "ceil(flow_time / h)", lo=1e-6, hi=1e7)
  quick: bool = False


# --quick: one cell (lr 0.5, lambda 0), one seed, 8 steps (flow time 4) on 200 examples.
QUICK = Config(seeds=1, lrs=(0.5,), small_lr=0.5, train_size=200, flow_time=4.0, quick=True)


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


def grad_norm_sq(module, params, model_state, x, y) -> float:
  """||grad_theta mean CE(x, y)||^2 over every parameter, evaluation mode."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from memobench.training.losses import mean_cross_entropy  # pylint: disable=import-outside-toplevel

  def loss(p):
    return mean_cross_entropy(module.apply({"params": p, **model_state}, x, train=False), y)
  grads = jax.jit(jax.grad(loss))(params)
  return float(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))


@dataclasses.dataclass(frozen=True)
class IgrCell:
  """One (h, lambda) cell's settings (its config, hashed for resume)."""
  dataset: str
  train_size: int
  lr: float
  lam: float
  max_steps: int
  seeds: int


def cell_key(lr: float, lam: float) -> str:
  return f"lr{lr:g}" + (f"_lambda{lam:g}" if lam else "")


def cell_spec(cell: IgrCell):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  overrides = [
      f"dataset.train_size={cell.train_size}", f"budget.batch_size={cell.train_size}",
      f"optimizer.lr={cell.lr}", "optimizer.momentum=0", "optimizer.lr_decay_per_epoch=1",
      f"budget.max_epochs={cell.max_steps}", f"budget.max_steps={cell.max_steps}",
      f"budget.eval_every_steps={max(1, cell.max_steps // EVALS)}", "budget.fit_threshold=1.0",
      "analysis.dynamics=false", "analysis.effective_rank=false"]
  if cell.lam:
    overrides += ["analysis.objective=igr", f"analysis.igr_lambda={cell.lam}"]
  spec, _ = specs.with_overrides(catalogue.get(f"{cell.dataset}_clean"), overrides)
  return workload.validate(spec)


def compute_igr(cell: IgrCell, ctx) -> dict[str, Any]:
  """One cell's seeds, trained side by side in one vmapped program (library loop)."""
  from memobench import workload  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  spec = cell_spec(cell)
  wl = workload.resolve(spec, ctx.data_dir)
  data = wl.corrupted_data(spec.seed)  # clean data: the same for every seed
  members = [loop.Member(dataclasses.replace(spec, seed=s), data, log=lambda m: None)
             for s in range(cell.seeds)]
  outcomes = loop.train_group(wl, members, vmapped=len(members) > 1)
  runs = []
  for seed, out in enumerate(outcomes):
    runs.append({
        "seed": seed, "status": out.status, "steps": out.final.step,
        "test_accuracy": out.final.test_accuracy, "train_accuracy": out.final.train_accuracy,
        "train_loss": out.final.train_eval_loss,
        "grad_norm_sq": grad_norm_sq(wl.module, out.state.params, out.state.model_state,
                                     data.x_train, data.y_train)})
  record = {"lr": cell.lr, "lambda": cell.lam, "wall_s": time.perf_counter() - t0,
            "max_steps": wl.schedule.total_steps, "runs": runs}
  ctx.log(f"{cell.seeds} seed(s) in {record['wall_s']:.0f} s; test acc "
          + ", ".join(f"{r['test_accuracy']:.4f}" for r in runs))
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
        config.seeds)))
  return list(cells.values())


def cell_summary(cell: dict[str, Any]) -> dict[str, Any]:
  def stat(name):
    return leaderboard.summarize(r[name] for r in cell["runs"])
  return {"test_accuracy": stat("test_accuracy"), "grad_norm_sq": stat("grad_norm_sq"),
          "train_loss": stat("train_loss"), "train_accuracy": stat("train_accuracy"),
          "steps": stat("steps"), "max_steps": cell["max_steps"],
          "fitted": sum(r["status"] == "completed" for r in cell["runs"]), "lr": cell["lr"]}


def summarize(config: Config, records: dict[str, Any]) -> dict[str, Any]:
  h0 = config.small_lr
  by_lr = {f"{h:g}": {**cell_summary(records[cell_key(h, 0.0)]),
                      "implicit_lambda": implicit_lambda(h)} for h in config.lrs}
  by_lambda = {f"{lam:g}": {**cell_summary(records[cell_key(h0, lam)]), "lambda": lam,
                            "total_lambda": lam + implicit_lambda(h0)}
               for lam in lambdas(config)}
  return {"experiment": "barrett2021_igr", "dataset": config.dataset, "seeds": config.seeds,
          "quick": config.quick, "optimizer": "full-batch GD (momentum 0, constant lr)",
          "train_size": config.train_size, "flow_time": config.flow_time,
          "igr": {"by_lr": by_lr, "by_lambda": by_lambda, "small_lr": h0,
                  "small_lr_implicit_lambda": implicit_lambda(h0)}}


def plot(config: Config, summary: dict[str, Any]) -> dict[str, Any]:
  """Test accuracy and final ||grad L||^2 against h (plain GD), and against the total
  gradient-penalty strength: h/4 for plain GD, lambda + h0/4 for the explicit runs."""
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  igr = summary["igr"]
  by_lr, by_lambda = igr["by_lr"], igr["by_lambda"]
  fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
  lrs = [v["lr"] for v in by_lr.values()]
  total = [v["total_lambda"] for v in by_lambda.values()]
  for col, metric, label in ((0, "test_accuracy", "test accuracy"),
                             (1, "grad_norm_sq", "final ||grad L_train||^2")):
    errorbar(axes[col], lrs, [v[metric] for v in by_lr.values()], color="C0",
             label="plain full-batch GD")
    axes[col].set(xlabel="learning rate h", ylabel=label, xscale="log")
    ax = axes[col + 2]
    errorbar(ax, [implicit_lambda(h) for h in lrs], [v[metric] for v in by_lr.values()],
             color="C0", label="plain GD at h: lambda = h/4 (implicit)")
    errorbar(ax, total, [v[metric] for v in by_lambda.values()], color="C3",
             label=f"igr objective at h0={igr['small_lr']:g}: lambda + h0/4")
    ax.set(xlabel="gradient-penalty strength", ylabel=label, xscale="log")
  for col in (1, 3):
    axes[col].set_yscale("log")
  for a in axes:
    a.legend(fontsize=7)
  fig.suptitle(f"Barrett & Dherin 2021 on {summary['dataset']} (train {summary['train_size']}, "
               f"full-batch GD to 100% train accuracy; {summary['seeds']} seed(s))"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"igr.png": fig}


def report(config: Config, summary: dict[str, Any]) -> str:
  lines = []
  for name, table in (("lr", summary["igr"]["by_lr"]), ("lambda", summary["igr"]["by_lambda"])):
    for key, v in table.items():
      lines.append(f"{name} {key}: test acc {v['test_accuracy']['mean']:.4f}, ||grad||^2 "
                   f"{v['grad_norm_sq']['mean']:.3g}, train loss {v['train_loss']['mean']:.4f}, "
                   f"steps {v['steps']['mean']:.0f}/{v['max_steps']}, fitted {v['fitted']}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="barrett2021_igr", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
