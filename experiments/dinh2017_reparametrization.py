"""Dinh et al. 2017: a reparametrization makes a minimum as sharp as one likes, same function.

Command:

    python experiments/dinh2017_reparametrization.py            # mnist5k, MLP 1x512, 3 seeds
    python experiments/dinh2017_reparametrization.py --quick    # smoke test: digits, 20 steps

Runtime: 1m47s wall (149 CPU-s) for the default on the idle 2-core machine
(2026-12-02; the run reproduced the committed summary.json exactly).
--quick (digits, 1 seed) used ~25 CPU seconds.

"Sharp minima can generalize for deep nets" (Dinh, Pascanu, Bengio & Bengio,
ICML 2017), Sec. 4-5. The paper's finding, in its terms: for a rectifier
network the alpha-scale transformation (W1 <- alpha W1, b1 <- alpha b1,
W2 <- W2 / alpha) is an observationally equivalent reparametrization: the
function, hence the training loss and the test accuracy, is unchanged, while
the Hessian's spectral norm (the top eigenvalue) and Keskar et al.'s
epsilon-sharpness can be made arbitrarily large, so neither measure of
sharpness can by itself explain generalization.

Here: the dataset's clean spec trained to its fit threshold (SGD, memobench's
defaults) for each seed; its first two dense layers rescaled by
memobench.models.rescaling.rescale for alpha over four decades; at each alpha,
the predictions (max abs difference of the test-set softmax outputs from
alpha = 1, and agreement of the predicted classes), the test accuracy, the top
Hessian eigenvalue of the training loss on the first 1,024 training examples
(Lanczos, 20 steps), and eps-sharpness (full space, eps = 1e-3, L-BFGS-B at
most 20 iterations, the same loss).

Expected result (the paper's). Measured (mnist5k_clean fitted to 0.99 by SGD,
3 seeds, mean +- sample std; eps-sharpness full space, eps 1e-3, 20 L-BFGS-B
iterations):

  alpha   top Hessian eigenvalue  eps-sharpness            test accuracy
  0.01    1.251e+04 +- 5e+02     2.096e+04 +- 4.1e+03     0.9380
  0.1     125.1 +- 5             1687 +- 1.6e+02          0.9380
  1       1.904 +- 0.16          8.565 +- 0.57            0.9380
  10      69.82 +- 11            9.645 +- 0.62            0.9380
  100     6979 +- 1.1e+03        1103 +- 1.5e+02          0.9380

At every alpha the predicted classes are identical and the largest change of
a test-set softmax output is <= 1.1e-6 (float rounding). Agrees with the
paper: the same function has a top eigenvalue from 1.9 to 12,500 (and
eps-sharpness from 8.6 to 21,000) over four decades of alpha. eps-sharpness,
whose box is relative to each coordinate's size, barely moves at alpha = 10
(8.6 -> 9.6) and grows 130x at alpha = 100, against 3,700x for the top
eigenvalue: it is less sensitive, not invariant.

Outputs in the workdir: dinh2017.png, summary.json (cells: mean, sample std,
Student-t 95% CI, n over seeds), cells/clean/ (the training cell: seed<N>.msgpack
parameters, train.log; experiments/programs/trained_models.py) and
cells/reparametrize/ (the measurements). A rerun keeps every cell whose config
is unchanged (a changed --eps re-measures without retraining). `--print_config`
lists the knobs.
"""

from __future__ import annotations

import dataclasses

from experiments import driver, summaries
from experiments.cells import ComputedCell
from experiments.knobs import knob
from experiments.programs import trained_models

ALPHAS = (1e-2, 1e-1, 1.0, 1e1, 1e2)
QUICK_ALPHAS = (1e-1, 1.0, 1e1)
FIELDS = ("top_eigenvalue", "eps_sharpness_full", "eps_sharpness_iterations", "training_loss",
          "test_accuracy", "max_abs_probability_change", "prediction_agreement")


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("mnist5k", "catalogue dataset: the spec <dataset>_clean, trained to fit")
  seeds: int = knob(3, "seeds, trained together", lo=1)
  layer: int = knob(0, "rescale dense layers LAYER and LAYER+1 (0: the first two)", lo=0)
  eps: float = knob(1e-3, "eps-sharpness's box size (Keskar et al.: 1e-3)", lo=1e-12, hi=1.0)
  alphas: tuple[float, ...] = knob(ALPHAS, "the rescaling factors alpha", lo=1e-12, hi=1e12)
  examples: int = knob(1024, "training examples of the loss that eps-sharpness and the top "
                             "eigenvalue measure", lo=1)
  lanczos_iters: int = knob(20, "Lanczos steps of the top Hessian eigenvalue", lo=2, hi=10_000)
  eps_iters: int = knob(20, "L-BFGS-B iterations of eps-sharpness", lo=1, hi=100_000)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides of the training")
  quick: bool = False


QUICK = Config(dataset="digits", seeds=1, alphas=QUICK_ALPHAS, examples=256, lanczos_iters=5,
               eps_iters=3, spec_overrides=("budget.max_steps=20", "budget.eval_every_steps=10"),
               quick=True)


@dataclasses.dataclass(frozen=True)
class ReparametrizeConfig:
  """What reparametrize reads besides the models."""
  layer: int
  eps: float
  alphas: tuple[float, ...]
  examples: int
  lanczos_iters: int
  eps_iters: int


def train_spec(config: Config):
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_clean"), [
      "analysis.dynamics=false", "analysis.effective_rank=false", *config.spec_overrides])
  return workload.validate(spec)


def check_layer(spec, layer: int) -> list[str]:
  """The model's dense layer names; SpecError unless `layer` and `layer + 1` exist."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from memobench import models, specs  # pylint: disable=import-outside-toplevel
  from memobench.models import rescaling  # pylint: disable=import-outside-toplevel
  ds = trained_models.dataset(spec)
  module = models.MODELS.get(spec.model.name).build(spec.model, ds.num_classes)
  shapes = jax.eval_shape(lambda: module.init(
      jax.random.key(0), np.zeros((1, *ds.input_shape), np.float32), train=False))["params"]
  try:
    names = rescaling.dense_layer_names(shapes)
  except ValueError as e:
    raise specs.SpecError(f"{spec.model.name}: {e}") from None
  if not layer < len(names) - 1:
    raise specs.SpecError(f"--layer must be in [0, {len(names) - 2}] for {spec.model.name}, "
                          f"got {layer}")
  return names


def grid(config: Config) -> list[ComputedCell]:
  spec = train_spec(config)
  check_layer(spec, config.layer)
  return [
      ComputedCell("clean", trained_models.train, trained_models.TrainConfig(spec, config.seeds)),
      ComputedCell("reparametrize", reparametrize, ReparametrizeConfig(
          config.layer, config.eps, config.alphas, config.examples, config.lanczos_iters,
          config.eps_iters), needs=("clean",)),
  ]


def reparametrize(config: ReparametrizeConfig, ctx) -> dict:
  """Per seed and alpha: the rescaled model's predictions against alpha = 1's, its test
  accuracy, top Hessian eigenvalue and eps-sharpness (full space)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from memobench import prng  # pylint: disable=import-outside-toplevel
  from memobench.metrics import batch_hessian, eps_sharpness  # pylint: disable=import-outside-toplevel
  from memobench.models import rescaling  # pylint: disable=import-outside-toplevel
  models = trained_models.load(ctx.inputs["clean"])
  workload = models.workload(ctx.data_dir)
  ds, module = workload.dataset, workload.module
  state = models.trained[0].model_state
  objective = eps_sharpness.Objective(eps_sharpness.training_loss(
      module, state, ds.x_train, ds.y_train, config.examples), models.trained[0].params)
  top = batch_hessian.TopEigenvalue(module, state, config.lanczos_iters)
  probabilities = jax.jit(lambda params, x: jax.nn.softmax(
      module.apply({"params": params, **state}, x, train=False)))
  x_test = jnp.asarray(ds.x_test)
  rows = []
  for t in models.trained:
    key = prng.run_key(t.seed)
    reference = np.asarray(probabilities(t.params, x_test))
    for alpha in config.alphas:
      params = rescaling.rescale(t.params, config.layer, alpha)
      probs = np.asarray(probabilities(params, x_test))
      sharp = eps_sharpness.section(module, params, state, ds.x_train, ds.y_train,
                                    eps=config.eps, max_iters=config.eps_iters,
                                    examples=config.examples, dim=0,
                                    key=jax.random.fold_in(key, prng.EPS_SHARPNESS),
                                    objective=objective)["full"]
      rows.append({
          "seed": t.seed, "alpha": alpha,
          "top_eigenvalue": top(params, ds.x_train[:config.examples],
                                ds.y_train[:config.examples],
                                jax.random.fold_in(key, prng.SHARPNESS)),
          "eps_sharpness_full": sharp["sharpness"],
          "eps_sharpness_iterations": sharp["iterations"],
          "training_loss": sharp["loss"],
          "test_accuracy": float(np.mean(probs.argmax(-1) == ds.y_test)),
          "max_abs_probability_change": float(np.max(np.abs(probs - reference))),
          "prediction_agreement": float(np.mean(probs.argmax(-1) == reference.argmax(-1)))})
      ctx.log(f"seed {t.seed} alpha {alpha:g}: " + ", ".join(
          f"{k} {rows[-1][k]:.4g}" for k in FIELDS))
  names = rescaling.dense_layer_names(models.trained[0].params)
  return {"layers": names[config.layer:config.layer + 2], "rows": rows}


def summarize(config: Config, records: dict) -> dict:
  cell = summaries.summarize
  rows = records["reparametrize"]["rows"]
  finals = records["clean"]["seeds"]
  dinh = {f"{a:g}": {k: cell(r[k] for r in rows if r["alpha"] == a) for k in FIELDS}
          for a in config.alphas}
  return {"experiment": "dinh2017_reparametrization", "dataset": config.dataset,
          "seeds": config.seeds, "quick": config.quick,
          "settings": {"spec": records["clean"]["spec"]["name"],
                       "layers": records["reparametrize"]["layers"],
                       "alphas": list(config.alphas), "eps": config.eps,
                       "eps_sharpness_max_iters": config.eps_iters,
                       "eps_sharpness_examples": config.examples,
                       "lanczos_iters": config.lanczos_iters},
          "trained": {k: cell(f[k] for f in finals)
                      for k in ("train_accuracy", "test_accuracy", "steps")},
          "dinh": dinh}


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  dinh, settings = summary["dinh"], summary["settings"]
  xs = settings["alphas"]
  at = lambda k: [dinh[f"{a:g}"][k] for a in xs]  # pylint: disable=unnecessary-lambda-assignment
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  ax = axes[0]
  errorbar(ax, xs, at("top_eigenvalue"), color="C0", label="top Hessian eigenvalue")
  errorbar(ax, xs, at("eps_sharpness_full"), color="C1",
           label=f"eps-sharpness (full, eps={settings['eps']:g})")
  ax.set(xscale="log", yscale="log", xlabel="alpha", ylabel="sharpness",
         title="sharpness of the same function")
  ax.legend(fontsize=7, loc="upper center")
  twin = ax.twinx()
  errorbar(twin, xs, at("test_accuracy"), color="C2", label="test accuracy")
  twin.set(ylabel="test accuracy", ylim=(0, 1.02))
  twin.legend(fontsize=7, loc="lower center")
  ax = axes[1]
  errorbar(ax, xs, at("max_abs_probability_change"), color="C3",
           label="max |softmax change| on the test set")
  ax.set(xscale="log", yscale="symlog", xlabel="alpha", ylim=(0, 1),
         title="predictions vs alpha = 1")
  ax.set_yscale("symlog", linthresh=1e-7)
  ax.legend(fontsize=7)
  fig.suptitle(f"Dinh et al. 2017 on {summary['dataset']}: W{config.layer + 1} <- alpha W, "
               f"W{config.layer + 2} <- W / alpha; {summary['seeds']} seed(s)"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"dinh2017.png": fig}


def report(config: Config, summary: dict) -> str:
  lines = ["alpha    top eig     eps-sharpness  test acc  max |dp|"]
  for a in summary["settings"]["alphas"]:
    d = summary["dinh"][f"{a:g}"]
    lines.append(f"{a:<8g} {d['top_eigenvalue']['mean']:<11.4g} "
                 f"{d['eps_sharpness_full']['mean']:<14.4g} {d['test_accuracy']['mean']:<9.4f} "
                 f"{d['max_abs_probability_change']['mean']:.2g}")
  return "\n".join(lines)


EXPERIMENT = driver.Experiment(
    name="dinh2017_reparametrization", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
