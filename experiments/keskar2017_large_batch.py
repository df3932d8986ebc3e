"""Keskar et al. 2017: large-batch training finds sharper minima that generalize worse.

Command:

    python experiments/keskar2017_large_batch.py            # mnist5k, MLP 1x512, Adam, 3 seeds
    python experiments/keskar2017_large_batch.py --quick    # smoke test: digits, 1 seed

Runtime: ~10 min of CPU for the default, 603 CPU-s in all (2026-12-04): the two
trainings and the equal-epoch and loss-0.02 measurements (327 CPU-s, per-cell
process CPU from the driver's log, at load ~20), then the resumed run for the
rest (`/usr/bin/time -v`: 5m27s wall, 276 CPU-s, user 236 + sys 41, load
average 3.3 -> 4.3). Each measurement cell (3 seeds, eps-sharpness at 2 eps x
2 forms x 3 starts of 20 L-BFGS-B iterations, plus Lanczos) is ~60-70 CPU-s.
--quick (digits, 1 seed) ~40 CPU-s.

"On large-batch training for deep learning: generalization gap and sharp
minima" (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017). The
paper's finding, in its terms: with the same number of epochs and Adam, a
large batch (LB, 10% of the training set) reaches training accuracy similar to
a small batch (SB, 256) but lower test accuracy (Table 2), and its minimizer is
sharper: a larger epsilon-sharpness (Metric 2.1, Tables 3-4, eps = 1e-3 and
5e-4, in the full space and in a random 100-dimensional subspace). Their
Fig. 3: along the line f(alpha x_LB + (1 - alpha) x_SB), alpha in [-1, 2],
the loss rises more steeply around the large-batch minimizer (alpha = 1) than
around the small-batch one (alpha = 0).

Here (protocol of issue 24 item 1): each seed trains the same model from the
same initialization with Adam lr 1e-3 (constant), SB = 32 for 30 epochs and
LB = 400 (10% of mnist5k's 4,000 training examples) for 200 epochs, no early
stop. Why SB = 32 and not the paper's 256: the paper's SB is 1/20-1/23 of its
LB (256 against 5,000-6,000); here 256 would be 0.64 of the LB, so SB is
scaled with the training set (LB/SB = 12.5). Both are compared
  - at equal epochs (30: the paper's protocol), where LB's training loss is
    ~50x SB's (it is less converged), and
  - at matched training loss: each model at its first evaluation (SB every 25
    steps = 0.2 epoch, LB every epoch) whose whole-training-set loss is at or
    below a level L in {0.02, 0.002, 0.0006}; 0.0006 is the lowest level every
    SB seed reaches in 30 epochs (SB ends at ~4.7e-4), LB reaches it at
    ~150 epochs. The levels were chosen after seeing the first committed run
    (SB's final loss) and a one-seed trajectory probe; the residual mismatch
    (LB's loss over SB's at the matched point) is reported.
Measured at each point: training and test accuracy and loss; eps-sharpness
(memobench.metrics.eps_sharpness: the max over the box of f on the first 1,024
training examples, from the gradient's corner x + eps (|x| + 1) sign(grad),
L-BFGS-B started there and from 2 random points, 20 iterations each; the
corner's value and the first-order term eps sum (|x_i| + 1) |g_i| reported
beside it; full space and a random n x 100 projection; eps 1e-3 and 5e-4);
the top Hessian eigenvalue of the same loss (Lanczos, 20 steps); and Fig. 3's
interpolation (whole training and test sets, per seed pair) at equal epochs
and at the lowest matched level.

Measured (mnist5k, MLP 1x512, Adam 1e-3, SB 32 / LB 400, 3 seeds, means over
seeds; phi = eps-sharpness in the full space at eps 1e-3; summary.json committed
in experiments/results/keskar2017_large_batch_mnist5k/):

  point (epoch SB / LB)       train loss SB / LB  test acc SB / LB  phi SB / LB   top eig SB / LB
  equal epochs (30 / 30)      0.00047 / 0.0237    0.9457 / 0.9373   0.229 / 7.80  0.089 / 3.18
  loss <= 0.02 (7.6 / 32.7)   0.0180 / 0.0194     0.9420 / 0.9363   4.59 / 7.73   1.68 / 2.76
  loss <= 0.002 (17.4 / 87)   0.00193 / 0.00199   0.9443 / 0.9400   1.21 / 1.93   0.31 / 0.45
  loss <= 0.0006 (27.9 / 151) 0.00059 / 0.00059   0.9453 / 0.9400   0.55 / 0.36   0.112 / 0.152

The box corner alone gives phi 0.163 / 4.25, 3.41 / 4.06, 0.72 / 0.55 and
0.30 / 0.20 at these points (the best run raises it 1.3-3.5x; the max came
from the corner's run for every seed at loss 0.0006); the first-order term
eps sum (|x_i| + 1) |g_i| is 0.044 / 0.040 (as phi) at loss 0.0006.

Per seed, LB / SB at the matched loss 0.0006 (LB/SB training loss 1.01, 0.99,
1.01): eps-sharpness full 0.59, 1.00, 0.48 (at eps 5e-4 LB is also lower:
0.049 vs 0.062), projected (100-dim) 1.14, 1.61, 1.15; top eigenvalue 1.45,
1.33, 1.29; SB - LB test accuracy +0.5, +0.7, +0.4 points. At equal epochs
(LB at ~50x SB's training loss) the same ratios are 27-41x (eps-sharpness)
and 35-37x (top eigenvalue), with +1.2, +0.8, +0.5 points: the first protocol's
~1000x (its phi of SB was 0.0074, 22x below the box corner's 0.163) was a
less converged LB against a maximizer that had not maximized.

Fig. 3 at equal epochs: the training loss is at most 4.7e-4 for alpha in
[-1, 0] (0.00047 at alpha = 0, the SB minimizer itself, 4e-5 at alpha = -1)
and rises beyond the LB end: 0.024 at alpha = 1, 0.028 at 1.1, 0.13 at 1.7,
0.44 at 2.0 (train accuracy 0.85, test 0.805); test accuracy 0.946-0.949 for
alpha <= 0 and 0.937 at alpha = 1. At the matched loss 0.0006: a rise of
0.0007-0.0028 from alpha = 0 to -1 against 0.016-0.058 from 1 to 2.

Verdicts (summary.json "verdicts", compared at the matched loss 0.0006):
"sharper": partly (the top eigenvalue is 1.3-1.5x larger for every seed, the
full-space eps-sharpness is not: 0.48-1.00x; the ~36x of equal epochs shrinks
to this once the losses match). The verdict depends on the level: at the
higher matched levels 0.02 and 0.002 both measures are larger for LB for every
seed (eps-sharpness 1.3-2.0x, top eigenvalue 1.4-1.7x: there it would agree);
the rule reads the lowest level every seed reached, the end of SB's training; "generalizes worse": agrees (every seed, 0.4-0.7
points; the paper's gaps are larger, up to ~5 points); Fig. 3: agrees (the rise
beyond LB is 16-22x the rise beyond SB for every seed).

Outputs in the workdir: keskar2017.png, summary.json (per point and batch size:
mean, sample std, Student-t 95% CI, n over seeds, per-seed values; the
verdicts), cells/<size>_b<batch>/ (the training cells: seed<N>.msgpack final
parameters, seed<N>.epoch30.msgpack and seed<N>.loss<L>.msgpack snapshots,
train.log; experiments/programs/trained_models.py), cells/measure_<size>_<point>/
and cells/interpolation_<point>/ (the measurements). A rerun keeps every cell
whose config is unchanged: a changed measurement knob (--eps_iters) re-measures
without retraining, a changed training knob (--lr, --epochs) retrains.
`--print_config` lists the knobs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries, verdicts
from experiments.cells import ComputedCell
from experiments.knobs import KnobError, knob
from experiments.programs import trained_models

EPSILONS = (1e-3, 5e-4)  # memobench.metrics.eps_sharpness.PAPER_EPSILONS (Tables 3-4)
PAPER_DIM = 100          # eps_sharpness.PAPER_DIM
FORMS = ("full", "projected")
SIZES = ("small", "large")
SPLITS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("mnist5k", "catalogue dataset: the spec <dataset>_clean, retrained")
  seeds: int = knob(3, "seeds per batch size, trained together", lo=1)
  epochs: int = knob(30, "the small batch's epochs; both are compared at this epoch",
                     lo=1, hi=100_000)
  large_epochs: int = knob(200, "the large batch's epochs (long enough to reach the loss "
                                "levels)", lo=1, hi=100_000)
  small_batch: int = knob(32, "the small batch", lo=1)
  large_fraction: float = knob(0.1, "the large batch as a fraction of the training set "
                                    "(Keskar: 0.1)", lo=1e-9, hi=1.0)
  lr: float = knob(1e-3, "Adam's learning rate (constant)", lo=1e-12, hi=1e3)
  loss_levels: tuple[float, ...] = knob(
      (0.02, 0.002, 0.0006), "training-loss levels at which the batch sizes are compared "
      "(each model at its first evaluation at or below)", lo=1e-12, hi=1e3)
  small_eval_every: int = knob(25, "steps between the small batch's evaluations", lo=1)
  large_eval_every: int = knob(10, "steps between the large batch's evaluations", lo=1)
  eps_iters: int = knob(20, "L-BFGS-B iterations of eps-sharpness, per start", lo=1,
                        hi=100_000)
  random_starts: int = knob(2, "L-BFGS-B's random starts besides the gradient's corner",
                            lo=0, hi=100)
  examples: int = knob(1024, "training examples of the loss that eps-sharpness and the "
                             "top eigenvalue measure", lo=1)
  dim: int = knob(PAPER_DIM, "dimension of eps-sharpness's random projection", lo=1)
  lanczos_iters: int = knob(20, "Lanczos steps of the top Hessian eigenvalue", lo=2, hi=10_000)
  alphas: int = knob(31, "points of Fig. 3's interpolation over alpha in [-1, 2]", lo=2,
                     hi=10_000)
  quick: bool = False


QUICK = Config(dataset="digits", seeds=1, epochs=2, large_epochs=6, loss_levels=(1.0, 0.8),
               small_eval_every=11, large_eval_every=3, eps_iters=3, random_starts=1,
               examples=256, dim=10, lanczos_iters=5, alphas=7, quick=True)


@dataclasses.dataclass(frozen=True)
class MeasureConfig:
  """What measure_minima reads besides the models: the point and the measurement knobs."""
  snapshot: str
  eps: tuple[float, ...]
  eps_iters: int
  random_starts: int
  examples: int
  dim: int
  lanczos_iters: int


@dataclasses.dataclass(frozen=True)
class InterpolationConfig:
  snapshot: str
  alphas: tuple[float, ...]


def check(config: Config) -> None:
  if config.large_epochs < config.epochs:
    raise KnobError(f"large_epochs={config.large_epochs}: expected >= epochs={config.epochs} "
                    "(both are compared at the same epoch)")


def points(config: Config) -> list[str]:
  """The comparison points: equal epochs, then each loss level (highest first)."""
  return ([trained_models.epoch_snapshot(config.epochs)]
          + [trained_models.loss_snapshot(v) for v in sorted(config.loss_levels, reverse=True)])


def batch_sizes(config: Config) -> dict[str, int]:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  num_train = trained_models.dataset(catalogue.get(f"{config.dataset}_clean")).num_train
  return {"small": config.small_batch,
          "large": max(1, int(round(config.large_fraction * num_train))), "num_train": num_train}


def train_spec(config: Config, batch: int, epochs: int, every: int):
  """Adam at a constant rate, `batch`, `epochs` epochs, an evaluation every `every` steps."""
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_clean"), [
      "optimizer.kind=adam", f"optimizer.lr={config.lr}", "optimizer.lr_decay_per_epoch=1.0",
      f"budget.batch_size={batch}", f"budget.max_epochs={epochs}",
      f"budget.eval_every_steps={every}", "analysis.dynamics=false",
      "analysis.effective_rank=false"])
  return workload.validate(spec)


def train_key(size: str, batch: int) -> str:
  return f"{size}_b{batch}"


def grid(config: Config) -> list[ComputedCell]:
  from memobench import specs  # pylint: disable=import-outside-toplevel
  sizes = batch_sizes(config)
  if max(sizes["small"], sizes["large"]) > sizes["num_train"]:
    raise specs.SpecError(f"a batch of {max(sizes['small'], sizes['large'])} exceeds the "
                          f"{sizes['num_train']} training examples")
  budget = {"small": (config.epochs, config.small_eval_every),
            "large": (config.large_epochs, config.large_eval_every)}
  keys = {size: train_key(size, sizes[size]) for size in SIZES}
  cells = [ComputedCell(keys[size], trained_models.train, trained_models.TrainConfig(
      train_spec(config, sizes[size], *budget[size]), config.seeds, stops_on_fit=False,
      snapshot_epochs=(config.epochs,), snapshot_losses=tuple(sorted(config.loss_levels))))
           for size in SIZES]
  for point in points(config):
    measure = MeasureConfig(point, EPSILONS, config.eps_iters, config.random_starts,
                            config.examples, config.dim, config.lanczos_iters)
    cells += [ComputedCell(f"measure_{size}_{point}", measure_minima, measure,
                           needs=(keys[size],)) for size in SIZES]
  alphas = tuple(float(a) for a in np.linspace(-1.0, 2.0, config.alphas))
  for point in (points(config)[0], points(config)[-1]):
    cells.append(ComputedCell(f"interpolation_{point}", interpolate,
                              InterpolationConfig(point, alphas),
                              needs=(keys["small"], keys["large"])))
  return cells


def measure_minima(config: MeasureConfig, ctx) -> dict:
  """Per seed that reached the point: its evaluation there, eps-sharpness (both forms, each
  eps) and the top Hessian eigenvalue of the training loss on the first `examples` examples."""
  import jax  # pylint: disable=import-outside-toplevel
  from memobench import prng  # pylint: disable=import-outside-toplevel
  from memobench.metrics import batch_hessian, eps_sharpness  # pylint: disable=import-outside-toplevel
  (inp,) = ctx.inputs.values()
  models = trained_models.load(inp, config.snapshot)
  rows = []
  if not models.trained:
    return {"seeds": rows}
  workload = models.workload(ctx.data_dir)
  ds, first = workload.dataset, models.trained[0]
  objective = eps_sharpness.Objective(eps_sharpness.training_loss(
      workload.module, first.model_state, ds.x_train, ds.y_train, config.examples),
      first.params)
  top = batch_hessian.TopEigenvalue(workload.module, first.model_state, config.lanczos_iters)
  for t in models.trained:
    key = prng.run_key(t.seed)
    out = {"seed": t.seed, **{k: t.final[k] for k in (
        "steps", "epochs", "train_loss", "test_loss", "train_accuracy", "test_accuracy")},
           "eps_sharpness": {}}
    for eps in config.eps:
      s = eps_sharpness.section(workload.module, t.params, t.model_state, ds.x_train,
                                ds.y_train, eps=eps, max_iters=config.eps_iters,
                                examples=config.examples, dim=config.dim,
                                key=jax.random.fold_in(key, prng.EPS_SHARPNESS),
                                objective=objective, random_starts=config.random_starts)
      out["eps_sharpness"][f"{eps:g}"] = {form: {k: s[form][k] for k in (
          "sharpness", "corner_sharpness", "first_order_sharpness", "loss", "best_start",
          "iterations")} for form in FORMS}
    out["top_eigenvalue"] = top(t.params, ds.x_train[:config.examples],
                                ds.y_train[:config.examples],
                                jax.random.fold_in(key, prng.SHARPNESS))
    rows.append(out)
    ctx.log(f"seed {t.seed} at {config.snapshot} (epoch {t.final['epochs']:.1f}, train loss "
            f"{t.final['train_loss']:.3g}): eps-sharpness (full) " + ", ".join(
                f"{eps}: {v['full']['sharpness']:.4g}" for eps, v in out["eps_sharpness"].items())
            + f"; top eigenvalue {out['top_eigenvalue']:.4g}")
  return {"seeds": rows}


def interpolate(config: InterpolationConfig, ctx) -> dict:
  """Fig. 3: loss and accuracy on the whole train and test sets along
  alpha x_LB + (1 - alpha) x_SB, per seed pair that reached the point."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from memobench.training import losses  # pylint: disable=import-outside-toplevel
  small, large = (trained_models.load(ctx.inputs[k], config.snapshot) for k in ctx.inputs)
  pairs = [(s, l) for s in small.trained for l in large.trained if s.seed == l.seed]
  curves = []
  if not pairs:
    return {"alpha": list(config.alphas), "curves": curves}
  workload = small.workload(ctx.data_dir)
  ds, module = workload.dataset, workload.module
  state = pairs[0][0].model_state

  @jax.jit
  def evaluate(params, x, y):
    logits = module.apply({"params": params, **state}, x, train=False)
    return losses.mean_cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)

  for s, l in pairs:
    out = {k: [] for k in SPLITS}
    for alpha in config.alphas:
      params = jax.tree.map(lambda a, b, t=float(alpha): t * a + (1 - t) * b,
                            l.params, s.params)
      for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        loss, acc = evaluate(params, jnp.asarray(x), jnp.asarray(y))
        out[f"{split}_loss"].append(float(loss))
        out[f"{split}_accuracy"].append(float(acc))
    curves.append({"seed": s.seed, **out})
  return {"alpha": list(config.alphas), "curves": curves}


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------


def _size_summary(rows: list[dict], batch: int) -> dict:
  cell = summaries.summarize
  out = {"batch_size": batch, "seeds": [r["seed"] for r in rows]}
  for k in ("epochs", "steps", *SPLITS, "top_eigenvalue"):
    out[k] = cell(r[k] for r in rows)
  out["eps_sharpness"] = {eps: {form: {
      "phi": cell(r["eps_sharpness"][eps][form]["sharpness"] for r in rows),
      "corner": cell(r["eps_sharpness"][eps][form]["corner_sharpness"] for r in rows),
      "first_order": cell(r["eps_sharpness"][eps][form]["first_order_sharpness"] for r in rows),
      "iterations": cell(r["eps_sharpness"][eps][form]["iterations"] for r in rows),
      "best_start": [r["eps_sharpness"][eps][form]["best_start"] for r in rows]}
      for form in FORMS} for eps in (rows[0]["eps_sharpness"] if rows else {})}
  return out


def _paired(small: list[dict], large: list[dict]) -> dict:
  """Per seed reached by both: LB / SB of the sharpness measures and the training loss,
  SB - LB of the test accuracy."""
  by_seed = {r["seed"]: r for r in small}
  pairs = [(by_seed[r["seed"]], r) for r in large if r["seed"] in by_seed]
  phi = lambda r, form: r["eps_sharpness"]["0.001"][form]["sharpness"]  # pylint: disable=unnecessary-lambda-assignment
  per_seed = {
      "seed": [s["seed"] for s, _ in pairs],
      "eps_full_ratio": [phi(l, "full") / phi(s, "full") if phi(s, "full") > 0 else None
                         for s, l in pairs],
      "eps_projected_ratio": [phi(l, "projected") / phi(s, "projected")
                              if phi(s, "projected") > 0 else None for s, l in pairs],
      "top_eigenvalue_ratio": [l["top_eigenvalue"] / s["top_eigenvalue"] for s, l in pairs],
      "train_loss_ratio": [l["train_loss"] / s["train_loss"] for s, l in pairs],
      "test_accuracy_gap": [s["test_accuracy"] - l["test_accuracy"] for s, l in pairs]}
  return {"per_seed": per_seed, **{k: summaries.summarize(v) for k, v in per_seed.items()
                                   if k != "seed"}}


def _interpolation_summary(record: dict) -> dict:
  alphas = record["alpha"]
  curves = record["curves"]
  out = {"alpha": alphas, "seeds": [c["seed"] for c in curves]}
  for k in SPLITS:
    out[k] = [summaries.summarize(c[k][i] for c in curves) for i in range(len(alphas))]
  # Fig. 3's claim per seed pair: the training loss's rise one unit beyond each minimizer.
  at = lambda a: int(np.argmin(np.abs(np.asarray(alphas) - a)))  # pylint: disable=unnecessary-lambda-assignment
  out["rise_beyond_small"] = [c["train_loss"][at(-1.0)] - c["train_loss"][at(0.0)]
                              for c in curves]
  out["rise_beyond_large"] = [c["train_loss"][at(2.0)] - c["train_loss"][at(1.0)]
                              for c in curves]
  return out


def _describe(point: str) -> str:
  if point.startswith("epoch"):
    return f"equal epochs ({point[len('epoch'):]})"
  return f"training loss <= {point[len('loss'):]} (first evaluation at or below)"


def summarize(config: Config, records: dict) -> dict:
  keys = {size: next(k for k in records if k.startswith(f"{size}_b")) for size in SIZES}
  batches = {size: records[keys[size]]["spec"]["budget"]["batch_size"] for size in SIZES}
  by_point = {}
  for point in points(config):
    rows = {size: records[f"measure_{size}_{point}"]["seeds"] for size in SIZES}
    by_point[point] = {"condition": _describe(point),
                       **{size: _size_summary(rows[size], batches[size]) for size in SIZES},
                       "large_over_small": _paired(rows["small"], rows["large"])}
  final = {size: {k: summaries.summarize(f[k] for f in records[keys[size]]["seeds"])
                  for k in ("epochs", *SPLITS)} for size in SIZES}
  interpolation = {k[len("interpolation_"):]: _interpolation_summary(v)
                   for k, v in records.items() if k.startswith("interpolation_")}
  summary = {
      "experiment": "keskar2017_large_batch", "dataset": config.dataset,
      "seeds": config.seeds, "quick": config.quick,
      "settings": {"epochs": config.epochs, "large_epochs": config.large_epochs,
                   "optimizer": f"adam lr {config.lr} constant",
                   "small_batch": batches["small"], "large_batch": batches["large"],
                   "loss_levels": sorted(config.loss_levels, reverse=True),
                   "eval_every_steps": {"small": config.small_eval_every,
                                        "large": config.large_eval_every},
                   "eps": list(EPSILONS), "eps_sharpness_max_iters": config.eps_iters,
                   "eps_sharpness_random_starts": config.random_starts,
                   "eps_sharpness_examples": config.examples, "projection_dim": config.dim,
                   "lanczos_iters": config.lanczos_iters},
      "final": final, "points": by_point, "interpolation": interpolation}
  summary["verdicts"] = keskar_verdicts(config, summary)
  return summary


# ---------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------


def matched_point(summary: dict) -> str | None:
  """The lowest loss level that every seed of both batch sizes reached."""
  seeds = summary["seeds"]
  reached = [p for p, v in summary["points"].items() if p.startswith("loss")
             and len(v["large_over_small"]["per_seed"]["seed"]) == seeds]
  return reached[-1] if reached else None


def per_seed_sign(values) -> int:
  """+1 / -1 when every seed's paired value is above / below 0 (None: a seed not compared),
  else 0: the paired rule of these verdicts (every seed, as the paper's every network)."""
  values = [v for v in values if v is not None]
  if values and all(v > 0 for v in values):
    return 1
  return -1 if values and all(v < 0 for v in values) else 0


def _ratios(values) -> str:
  return ", ".join("n/a" if v is None else f"{v:.3g}" for v in values)


DEPARTURES = (
    "one MLP 1x512 on mnist5k (4,000 training examples), not the paper's networks and datasets",
    "small batch 32, not 256: the large batch is 10% of 4,000 = 400, and 256 would be 0.64 of it; "
    "32 keeps the batches apart (LB/SB = 12.5; the paper's ~20)",
    "eps-sharpness on the first 1,024 training examples; 20 L-BFGS-B iterations per start (the "
    "gradient's corner and 2 random points), not run to convergence",
    "the loss levels were chosen after seeing the first run's final training losses; the "
    "verdicts read the lowest level every seed of both batch sizes reached (at the higher levels "
    "the measured ratios, shown, can differ)",
)


def keskar_verdicts(config: Config, summary: dict) -> list[dict]:
  point = matched_point(summary)
  equal = summary["points"][points(config)[0]]
  eq = equal["large_over_small"]["per_seed"]
  decide = ("more seeds or a longer large-batch budget, so that every seed of both batch sizes "
            "reaches the lowest loss level")
  if point is None:
    return [verdicts.verdict(
        claim, paper="Keskar et al. 2017", matched="training loss (no level reached by every "
        "seed of both batch sizes)", measured="no matched point", verdict="inconclusive",
        departures=DEPARTURES, decide=decide, figure="keskar2017.png")
        for claim in ("large-batch minima are sharper", "large-batch minima generalize worse",
                      "the loss rises more steeply beyond the large-batch minimizer (Fig. 3)")]
  p = summary["points"][point]
  ps = p["large_over_small"]["per_seed"]
  level = point[len("loss"):]
  matched = (f"training loss (whole training set): each model at its first evaluation with loss "
             f"<= {level}; SB at epoch {p['small']['epochs']['mean']:.3g}, LB at epoch "
             f"{p['large']['epochs']['mean']:.3g}; LB/SB loss {_ratios(ps['train_loss_ratio'])} "
             "per seed")
  # Sharper: LB/SB > 1 for every seed, by eps-sharpness and by the top eigenvalue.
  log_ratio = lambda rs: [None if r is None else np.log(r) for r in rs]  # pylint: disable=unnecessary-lambda-assignment
  sharper = verdicts.word([per_seed_sign(log_ratio(ps["eps_full_ratio"])),
                           per_seed_sign(log_ratio(ps["top_eigenvalue_ratio"]))])
  corner = lambda size: verdicts.fmt(p[size]["eps_sharpness"]["0.001"]["full"]["corner"])  # pylint: disable=unnecessary-lambda-assignment
  sharp = [verdicts.verdict(
      "large-batch minima are sharper (eps-sharpness, Metric 2.1; top Hessian eigenvalue)",
      paper="Keskar et al. 2017, Tables 3-4: LB's eps-sharpness exceeds SB's on every network",
      matched=matched,
      measured=(f"at loss <= {level}: eps-sharpness (full, 1e-3) SB "
                f"{verdicts.fmt(p['small']['eps_sharpness']['0.001']['full']['phi'])}, LB "
                f"{verdicts.fmt(p['large']['eps_sharpness']['0.001']['full']['phi'])} (the box "
                f"corner alone: SB {corner('small')}, LB {corner('large')}); LB/SB per "
                f"seed {_ratios(ps['eps_full_ratio'])} (projected: "
                f"{_ratios(ps['eps_projected_ratio'])}); top eigenvalue LB/SB "
                f"{_ratios(ps['top_eigenvalue_ratio'])}. At equal epochs ({config.epochs}; LB/SB "
                f"loss {_ratios(eq['train_loss_ratio'])}): eps-sharpness LB/SB "
                f"{_ratios(eq['eps_full_ratio'])}, top eigenvalue "
                f"{_ratios(eq['top_eigenvalue_ratio'])}" + "".join(
                    f". At loss <= {other[len('loss'):]}: eps-sharpness LB/SB "
                    f"{_ratios(o['eps_full_ratio'])}, top eigenvalue "
                    f"{_ratios(o['top_eigenvalue_ratio'])}" for other, o in (
                        (k, v["large_over_small"]["per_seed"])
                        for k, v in summary["points"].items()
                        if k.startswith("loss") and k != point))),
      verdict=sharper, departures=DEPARTURES,
      decide=decide if sharper == "inconclusive" else None, figure="keskar2017.png")]
  # Worse: SB - LB test accuracy > 0 for every seed, or its mean beyond 2 paired SE.
  gap = p["large_over_small"]["test_accuracy_gap"]
  generalize = verdicts.word([per_seed_sign(ps["test_accuracy_gap"])
                              or verdicts.sign(gap, verdicts.constant(0.0))])
  sharp.append(verdicts.verdict(
      "large-batch minima generalize worse (test accuracy at similar training accuracy)",
      paper="Keskar et al. 2017, Table 2: LB's test accuracy below SB's on every network",
      matched=matched,
      measured=(f"at loss <= {level}: test accuracy SB {verdicts.fmt(p['small']['test_accuracy'])}"
                f", LB {verdicts.fmt(p['large']['test_accuracy'])}; SB - LB per seed "
                f"{_ratios(ps['test_accuracy_gap'])}. At equal epochs: SB - LB "
                f"{_ratios(eq['test_accuracy_gap'])}"),
      verdict=generalize, departures=DEPARTURES,
      decide=("more seeds or a larger test set (a 1,000-example test set resolves 0.1 point)"
              if generalize == "inconclusive" else None), figure="keskar2017.png"))
  inter = summary["interpolation"].get(point)
  if inter and inter["seeds"]:
    fig3 = verdicts.word([per_seed_sign([l - s for l, s in zip(inter["rise_beyond_large"],
                                                                inter["rise_beyond_small"])])])
    measured = (f"at loss <= {level}, training loss rise from alpha = 0 to -1 (beyond SB) per "
                f"seed {_ratios(inter['rise_beyond_small'])}; from alpha = 1 to 2 (beyond LB) "
                f"{_ratios(inter['rise_beyond_large'])}")
  else:
    fig3, measured = "inconclusive", "no seed pair at the matched point"
  sharp.append(verdicts.verdict(
      "the loss rises more steeply beyond the large-batch minimizer (Fig. 3)",
      paper="Keskar et al. 2017, Fig. 3: f(alpha x_LB + (1 - alpha) x_SB) is steep around alpha "
            "= 1, flat around alpha = 0", matched=matched, measured=measured, verdict=fig3,
      departures=DEPARTURES, decide=decide if fig3 == "inconclusive" else None,
      figure="keskar2017.png"))
  return sharp


# ---------------------------------------------------------------------------
# Figure and report
# ---------------------------------------------------------------------------


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  settings, by_point = summary["settings"], summary["points"]
  names = list(by_point)
  labels = [n.replace("epoch", "epoch ").replace("loss", "loss<=") for n in names]
  fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
  ax = axes[0]
  for j, size in enumerate(SIZES):
    xs = np.arange(len(names)) + 0.1 * j
    errorbar(ax, xs, [by_point[n][size]["test_accuracy"] for n in names], linestyle="none",
             label=f"{size} batch ({settings[f'{size}_batch']})")
  ax.set(xticks=range(len(names)), ylabel="test accuracy", title="test accuracy at each point")
  ax.set_xticklabels(labels, rotation=20, fontsize=7)
  ax.legend(fontsize=7)
  for ax, (field, title) in zip(axes[1:3], (("phi", "eps-sharpness (full, eps=1e-3)"),
                                             ("top_eigenvalue", "top Hessian eigenvalue"))):
    for j, size in enumerate(SIZES):
      stats = [by_point[n][size]["eps_sharpness"].get("0.001", {}).get("full", {}).get(field)
               if field == "phi" else by_point[n][size][field] for n in names]
      errorbar(ax, np.arange(len(names)) + 0.1 * j,
               [s or {"mean": None, "std": None} for s in stats], linestyle="none",
               label=f"{size} batch")
      if field == "phi":
        corner = [by_point[n][size]["eps_sharpness"].get("0.001", {}).get("full", {}).get(
            "corner", {"mean": None}).get("mean") for n in names]
        ax.plot(np.arange(len(names)) + 0.1 * j, [c if c else np.nan for c in corner],
                "x", color=f"C{j}", label=f"{size}: corner alone")
    ax.set(xticks=range(len(names)), yscale="log", title=title)
    ax.set_xticklabels(labels, rotation=20, fontsize=7)
    ax.legend(fontsize=7)
  ax = axes[3]
  for style, (point, inter) in zip(("-", "--"), summary["interpolation"].items()):
    if not inter["seeds"]:
      continue
    ax.plot(inter["alpha"], [c["mean"] for c in inter["train_loss"]], f"C0{style}",
            label=f"train loss, {point}")
    ax.plot(inter["alpha"], [c["mean"] for c in inter["test_loss"]], f"C3{style}",
            label=f"test loss, {point}")
  ax.set(xlabel="alpha  (0: small-batch minimizer, 1: large-batch)", ylabel="cross-entropy",
         yscale="log", title="Fig. 3: f(alpha x_LB + (1 - alpha) x_SB)")
  ax.legend(fontsize=7)
  fig.suptitle(f"Keskar et al. 2017 on {summary['dataset']}: Adam, SB {settings['small_batch']} "
               f"vs LB {settings['large_batch']}, {summary['seeds']} seed(s)"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"keskar2017.png": fig}


def report(config: Config, summary: dict) -> str:
  lines = ["point                 batch  epoch   train loss  test acc  eps-sharp(full,1e-3)  "
           "corner      top eig"]
  for point, p in summary["points"].items():
    for size in SIZES:
      s = p[size]
      e = s["eps_sharpness"].get("0.001", {}).get("full")
      mean = lambda st: "n/a" if st is None or st["mean"] is None else f"{st['mean']:.4g}"  # pylint: disable=unnecessary-lambda-assignment
      lines.append(f"{point:20s}  {s['batch_size']:5d}  {mean(s['epochs']):6s}  "
                   f"{mean(s['train_loss']):10s}  {mean(s['test_accuracy']):8s}  "
                   f"{mean(e and e['phi']):20s}  {mean(e and e['corner']):10s}  "
                   f"{mean(s['top_eigenvalue'])}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="keskar2017_large_batch", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
