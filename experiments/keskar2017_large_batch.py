"""Keskar et al. 2017: large-batch training finds sharper minima that generalize worse.

Command:

    python experiments/keskar2017_large_batch.py            # mnist5k, MLP 1x512, Adam, 3 seeds
    python experiments/keskar2017_large_batch.py --quick    # smoke test: digits, 2 epochs, 1 seed

Runtime: 2m45s wall (251 CPU-s) for the default on the idle 2-core machine
(2026-12-02; the run reproduced the committed summary.json exactly). The
first committed run took 45 min under load 25-32 with the same CPU time.

"On large-batch training for deep learning: generalization gap and sharp
minima" (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017). The
paper's finding, in its terms: with the same number of epochs and Adam, a
large batch (10% of the training set) reaches training accuracy similar to a
small batch (256) but lower test accuracy (Table 2), and its minimizer is
sharper: a larger epsilon-sharpness (Metric 2.1, Tables 3-4, eps = 1e-3 and
5e-4, in the full space and in a random 100-dimensional subspace). Their
Fig. 3: along the line f(alpha x_LB + (1 - alpha) x_SB), alpha in [-1, 2],
the loss rises more steeply around the large-batch minimizer (alpha = 1) than
around the small-batch one (alpha = 0).

Here: the same model trained twice per seed from the same initialization,
batch SMALL (default 32) and LARGE (10% of the training set: 400 on mnist5k),
Adam lr 1e-3 constant, the same number of epochs (default 30), no early
stop. Measured at the final parameters: training and test accuracy; eps-
sharpness (memobench.metrics.eps_sharpness: L-BFGS-B under the box, at most
--eps_iters iterations, on the training loss of the first 1,024 training
examples; full space and a random n x 100 projection, eps 1e-3 and 5e-4); the
top Hessian eigenvalue of the same loss (Lanczos, memobench.metrics.sharpness);
and Fig. 3's interpolation (whole training and test sets, per seed pair).

Expected result (the paper's, qualitatively). Measured (mnist5k, MLP 1x512,
Adam 1e-3, 30 epochs, 3 seeds, mean +- sample std; L-BFGS-B at most 20
iterations):

                          small batch 32        large batch 400
  train accuracy          1.0000 +- 0           0.9989 +- 0.0004
  test accuracy           0.9453 +- 0.0025      0.9370 +- 0.0010
  train loss (whole set)  0.00047 +- 0.00002    0.0237 +- 0.0012
  eps-sharpness full 1e-3      0.0074 +- 0.0018      7.78 +- 0.35
  eps-sharpness proj 1e-3      0.061 +- 0.015        1.75 +- 0.69
  eps-sharpness full 5e-4      0.0055 +- 0.0011      1.80 +- 0.14
  eps-sharpness proj 5e-4      0.0128 +- 0.0008      0.51 +- 0.19
  top Hessian eigenvalue  0.089 +- 0.006        3.19 +- 0.11

Fig. 3 (means over the 3 seed pairs): the training loss stays below 3e-4 on
the small-batch side (alpha from -1 to 0) and rises on the large-batch side,
0.028 at alpha = 1.1, 0.13 at 1.7, 0.45 at 2.0 (train accuracy 0.85, test
0.80); test accuracy is 0.946-0.948 for alpha <= 0 and 0.937 around alpha = 1.

Agrees with the paper: at similar training accuracy (1.000 vs 0.999) the large
batch generalizes worse (0.8 points of test accuracy, about 3x the seed
spread) and its minimizer is far sharper by every measure (eps-sharpness
~100-1000x in the full space, ~30x projected; top eigenvalue 36x), and the
interpolation is steep only beyond the large-batch end. Caveats: the large
batch's minimizer has a 50x higher training loss (300 steps against 3,750),
so part of its sharpness is that it is less converged; L-BFGS-B ran its 20
iterations in the full space but stopped after 5-9 (a failed line search) in
the projected form, so those phi are lower bounds of the box maximum. The
paper's gaps are larger (e.g. 5 points on its networks and datasets); this is
one small MLP on 4,000 examples.

Outputs in the workdir: keskar2017.png, summary.json (cells: mean, sample
std, Student-t 95% CI, n over seeds), cells/<size>_b<batch>/ (the training
cells: seed<N>.msgpack parameters, train.log; experiments/programs/
trained_models.py), cells/measure_<size>_b<batch>/ and cells/interpolation/
(the measurements). A rerun keeps every cell whose config is unchanged: a
changed measurement knob (--eps_iters) re-measures without retraining, a
changed training knob (--lr, --epochs) retrains. `--print_config` lists the knobs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries
from experiments.cells import ComputedCell
from experiments.knobs import knob
from experiments.programs import trained_models

EPSILONS = (1e-3, 5e-4)  # memobench.metrics.eps_sharpness.PAPER_EPSILONS (Tables 3-4)
PAPER_DIM = 100          # eps_sharpness.PAPER_DIM
FIELDS = ("train_accuracy", "test_accuracy", "eps_sharpness_full", "eps_sharpness_projected",
          "top_eigenvalue")
SIZES = ("small", "large")


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("mnist5k", "catalogue dataset: the spec <dataset>_clean, retrained")
  seeds: int = knob(3, "seeds per batch size, trained together", lo=1)
  epochs: int = knob(30, "epochs of both batch sizes", lo=1, hi=100_000)
  small_batch: int = knob(32, "the small batch", lo=1)
  large_fraction: float = knob(0.1, "the large batch as a fraction of the training set "
                                    "(Keskar: 0.1)", lo=1e-9, hi=1.0)
  lr: float = knob(1e-3, "Adam's learning rate (constant)", lo=1e-12, hi=1e3)
  eps_iters: int = knob(20, "L-BFGS-B iterations of eps-sharpness", lo=1, hi=100_000)
  examples: int = knob(1024, "training examples of the loss that eps-sharpness and the "
                             "top eigenvalue measure", lo=1)
  dim: int = knob(PAPER_DIM, "dimension of eps-sharpness's random projection", lo=1)
  lanczos_iters: int = knob(20, "Lanczos steps of the top Hessian eigenvalue", lo=2, hi=10_000)
  alphas: int = knob(31, "points of Fig. 3's interpolation over alpha in [-1, 2]", lo=2,
                     hi=10_000)
  quick: bool = False


QUICK = Config(dataset="digits", seeds=1, epochs=2, eps_iters=3, examples=256, dim=10,
               lanczos_iters=5, alphas=7, quick=True)


@dataclasses.dataclass(frozen=True)
class MeasureConfig:
  """What measure_minima reads besides the models: the measurement knobs."""
  eps: tuple[float, ...]
  eps_iters: int
  examples: int
  dim: int
  lanczos_iters: int


@dataclasses.dataclass(frozen=True)
class InterpolationConfig:
  alphas: tuple[float, ...]


def batch_sizes(config: Config) -> dict[str, int]:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  num_train = trained_models.dataset(catalogue.get(f"{config.dataset}_clean")).num_train
  return {"small": config.small_batch,
          "large": max(1, int(round(config.large_fraction * num_train))), "num_train": num_train}


def train_spec(config: Config, batch: int, num_train: int):
  """Adam at a constant rate, `batch`, config.epochs epochs, six evaluations, no analyses."""
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  every = max(1, (num_train // batch) * config.epochs // 6)
  spec, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_clean"), [
      "optimizer.kind=adam", f"optimizer.lr={config.lr}", "optimizer.lr_decay_per_epoch=1.0",
      f"budget.batch_size={batch}", f"budget.max_epochs={config.epochs}",
      f"budget.eval_every_steps={every}", "analysis.dynamics=false",
      "analysis.effective_rank=false"])
  return workload.validate(spec)


def cell_key(size: str, batch: int) -> str:
  return f"{size}_b{batch}"


def grid(config: Config) -> list[ComputedCell]:
  sizes = batch_sizes(config)
  if max(sizes["small"], sizes["large"]) > sizes["num_train"]:
    from memobench import specs  # pylint: disable=import-outside-toplevel
    raise specs.SpecError(f"a batch of {max(sizes['small'], sizes['large'])} exceeds the "
                          f"{sizes['num_train']} training examples")
  measure = MeasureConfig(EPSILONS, config.eps_iters, config.examples, config.dim,
                          config.lanczos_iters)
  cells = []
  for size in SIZES:
    key = cell_key(size, sizes[size])
    spec = train_spec(config, sizes[size], sizes["num_train"])
    cells.append(ComputedCell(key, trained_models.train, trained_models.TrainConfig(
        spec, config.seeds, stops_on_fit=False)))
    cells.append(ComputedCell(f"measure_{key}", measure_minima, measure, needs=(key,)))
  alphas = tuple(float(a) for a in np.linspace(-1.0, 2.0, config.alphas))
  cells.append(ComputedCell("interpolation", interpolate, InterpolationConfig(alphas),
                            needs=tuple(cell_key(s, sizes[s]) for s in SIZES)))
  return cells


def measure_minima(config: MeasureConfig, ctx) -> dict:
  """Per seed: eps-sharpness (full and projected, each eps) and the top Hessian eigenvalue
  of the training loss on the first `examples` training examples."""
  import jax  # pylint: disable=import-outside-toplevel
  from memobench import prng  # pylint: disable=import-outside-toplevel
  from memobench.metrics import batch_hessian, eps_sharpness  # pylint: disable=import-outside-toplevel
  (inp,) = ctx.inputs.values()
  models = trained_models.load(inp)
  workload = models.workload(ctx.data_dir)
  ds, first = workload.dataset, models.trained[0]
  objective = eps_sharpness.Objective(eps_sharpness.training_loss(
      workload.module, first.model_state, ds.x_train, ds.y_train, config.examples),
      first.params)
  top = batch_hessian.TopEigenvalue(workload.module, first.model_state, config.lanczos_iters)
  rows = []
  for t in models.trained:
    key = prng.run_key(t.seed)
    out = {"seed": t.seed}
    for eps in config.eps:
      s = eps_sharpness.section(workload.module, t.params, t.model_state, ds.x_train,
                                ds.y_train, eps=eps, max_iters=config.eps_iters,
                                examples=config.examples, dim=config.dim,
                                key=jax.random.fold_in(key, prng.EPS_SHARPNESS),
                                objective=objective)
      out[f"eps_sharpness_full@{eps:g}"] = s["full"]["sharpness"]
      out[f"eps_sharpness_projected@{eps:g}"] = s["projected"]["sharpness"]
      out[f"iterations_full@{eps:g}"] = s["full"]["iterations"]
      out[f"iterations_projected@{eps:g}"] = s["projected"]["iterations"]
    out["top_eigenvalue"] = top(t.params, ds.x_train[:config.examples],
                                ds.y_train[:config.examples],
                                jax.random.fold_in(key, prng.SHARPNESS))
    rows.append(out)
    ctx.log(f"seed {t.seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()
                                           if k != "seed"))
  return {"seeds": rows}


def interpolate(config: InterpolationConfig, ctx) -> dict:
  """Fig. 3: loss and accuracy on the whole train and test sets along
  alpha x_LB + (1 - alpha) x_SB, per seed pair."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from memobench.training import losses  # pylint: disable=import-outside-toplevel
  small, large = (trained_models.load(ctx.inputs[k]) for k in ctx.inputs)
  workload = small.workload(ctx.data_dir)
  ds, module = workload.dataset, workload.module
  state = small.trained[0].model_state

  @jax.jit
  def evaluate(params, x, y):
    logits = module.apply({"params": params, **state}, x, train=False)
    return losses.mean_cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)

  curves = []
  for s, l in zip(small.trained, large.trained):
    out = {k: [] for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy")}
    for alpha in config.alphas:
      params = jax.tree.map(lambda a, b, t=float(alpha): t * a + (1 - t) * b,
                            l.params, s.params)
      for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        loss, acc = evaluate(params, jnp.asarray(x), jnp.asarray(y))
        out[f"{split}_loss"].append(float(loss))
        out[f"{split}_accuracy"].append(float(acc))
    curves.append({"seeds": [s.seed, l.seed], **out})
  return {"alpha": list(config.alphas), "curves": curves}


def summarize(config: Config, records: dict) -> dict:
  cell = summaries.summarize
  keys = {size: next(k for k in records if k.startswith(f"{size}_b")) for size in SIZES}
  batches = {size: records[keys[size]]["spec"]["budget"]["batch_size"] for size in SIZES}
  keskar = {}
  for size in SIZES:
    finals = records[keys[size]]["seeds"]
    rows = [{**m, "train_accuracy": f["train_accuracy"], "test_accuracy": f["test_accuracy"]}
            for m, f in zip(records[f"measure_{keys[size]}"]["seeds"], finals)]
    for r in rows:
      r["eps_sharpness_full"] = r[f"eps_sharpness_full@{EPSILONS[0]:g}"]
      r["eps_sharpness_projected"] = r[f"eps_sharpness_projected@{EPSILONS[0]:g}"]
    keskar[size] = {k: cell(r[k] for r in rows) for k in FIELDS}
    keskar[size]["batch_size"] = batches[size]
    keskar[size]["eps_sharpness_by_eps"] = {
        f"{eps:g}": {form: cell(r[f"eps_sharpness_{form}@{eps:g}"] for r in rows)
                     for form in ("full", "projected")} for eps in EPSILONS}
    keskar[size]["lbfgsb_iterations"] = {
        f"{eps:g}": {form: cell(r[f"iterations_{form}@{eps:g}"] for r in rows)
                     for form in ("full", "projected")} for eps in EPSILONS}
    keskar[size]["train_loss"] = cell(f["train_loss"] for f in finals)
    keskar[size]["test_loss"] = cell(f["test_loss"] for f in finals)
  inter = records["interpolation"]
  keskar["interpolation"] = {"alpha": inter["alpha"]}
  for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
    keskar["interpolation"][k] = [cell(c[k][i] for c in inter["curves"])
                                  for i in range(len(inter["alpha"]))]
  return {"experiment": "keskar2017_large_batch", "dataset": config.dataset,
          "seeds": config.seeds, "quick": config.quick,
          "settings": {"epochs": config.epochs, "optimizer": f"adam lr {config.lr} constant",
                       "small_batch": config.small_batch, "large_batch": batches["large"],
                       "eps": list(EPSILONS), "eps_sharpness_max_iters": config.eps_iters,
                       "eps_sharpness_examples": config.examples, "projection_dim": config.dim,
                       "lanczos_iters": config.lanczos_iters},
          "keskar": keskar}


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  keskar, settings = summary["keskar"], summary["settings"]
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  ax = axes[0]
  for i, k in enumerate(("train_accuracy", "test_accuracy")):
    errorbar(ax, [0 + 0.1 * i, 1 + 0.1 * i], [keskar["small"][k], keskar["large"][k]],
             label=k.replace("_", " "), linestyle="none")
  ax.set(xticks=[0, 1], xticklabels=[f"SB {settings['small_batch']}",
                                     f"LB {settings['large_batch']}"],
         ylabel="accuracy", title="accuracy")
  ax.legend(fontsize=7)
  ax = axes[1]
  labels = [f"{form} eps={eps:g}" for eps in settings["eps"] for form in ("full", "projected")]
  for j, size in enumerate(SIZES):
    vals = [keskar[size]["eps_sharpness_by_eps"][f"{eps:g}"][form]
            for eps in settings["eps"] for form in ("full", "projected")]
    vals.append(keskar[size]["top_eigenvalue"])
    errorbar(ax, np.arange(len(vals)) + 0.15 * j, vals, linestyle="none",
             label=f"{size} batch ({keskar[size]['batch_size']})")
  ax.set(xticks=range(len(labels) + 1), yscale="log", title="sharpness at the minimizer")
  ax.set_xticklabels(labels + ["top Hessian eig"], rotation=30, ha="right", fontsize=7)
  ax.legend(fontsize=7)
  ax = axes[2]
  inter = keskar["interpolation"]
  alphas = inter["alpha"]
  means = lambda k: [c["mean"] for c in inter[k]]  # pylint: disable=unnecessary-lambda-assignment
  ax.plot(alphas, means("train_loss"), "C0-", label="train loss")
  ax.plot(alphas, means("test_loss"), "C0--", label="test loss")
  ax.set(xlabel="alpha  (0: small-batch minimizer, 1: large-batch)", ylabel="cross-entropy",
         yscale="log", title="Fig. 3: f(alpha x_LB + (1 - alpha) x_SB)")
  twin = ax.twinx()
  twin.plot(alphas, means("train_accuracy"), "C3-", label="train acc")
  twin.plot(alphas, means("test_accuracy"), "C3--", label="test acc")
  twin.set(ylabel="accuracy", ylim=(0, 1.02))
  ax.legend(fontsize=7, loc="upper left")
  twin.legend(fontsize=7, loc="lower right")
  fig.suptitle(f"Keskar et al. 2017 on {summary['dataset']}: Adam, {settings['epochs']} epochs, "
               f"{summary['seeds']} seed(s)" + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"keskar2017.png": fig}


def report(config: Config, summary: dict) -> str:
  keskar = summary["keskar"]
  return "\n".join(f"{size:5s} batch {keskar[size]['batch_size']:5d}: " + "  ".join(
      f"{k} {keskar[size][k]['mean']:.4g}" for k in FIELDS) for size in SIZES)


EXPERIMENT = driver.Experiment(
    name="keskar2017_large_batch", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
