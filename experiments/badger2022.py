"""Badger 2022, "Why deep learning generalizes": forced memorization, noise, size, stability.

Command (offline default: MLP 1x512 on digits, 3 seeds per cell; 15 spec cells, 45 runs, and
6 stability cells that train the reference and the 5 noise levels again, 18 runs):

    python experiments/badger2022.py                      # -> /tmp/memobench/experiments/badger2022/digits
    python experiments/badger2022.py --dataset=mnist5k    # 784-dimensional inputs (an option)
    python experiments/badger2022.py --quick              # smoke test: digits, 3 epochs

Runtime: 26m26s wall, 220 CPU-s for the default (2026-12-04, load average 18-22 on the
shared 2-core machine: other sessions' jobs; the same grid without the stability cells took
142 CPU-s here, and 5m15s wall on the idle machine of 2026-12-02). --quick: 44 CPU-s.

Reproduces Badger, "Why deep learning generalizes" (arXiv 2211.09639) as its
released code runs it (github.com/blbadger/learning-generality,
objective_generalization.py; memobench/training/forced_memorization.py):
forced memorization minimizes CE(training batch) - CE(held-out batch) with a
network whose softmax output is fed to the cross-entropy (each term bounded:
[log(K-1+e) - 1, log(K-1+e)]), held-out batches paired in order, Adam, and
the held-out term dropped while held-out accuracy is at chance (the code's
0.11); inputs are mixed x*f + (randn/3 + 1/2)*(1-f) in the training AND the
held-out inputs (corruption `noise_both`).

The paper's findings (abstract), in its terms:
  (1) "memorization is difficult relative to generalization, but adding noise
      makes memorization easier";
  (2) "increasing the dataset size exaggerates the characteristics of that
      dataset: model access to more training samples makes overfitting easier
      for random data, but somewhat harder for natural images";
  (3) "generalization results from a model's parameters being attracted to
      points of maximal stability with respect to that model's inputs".

Grid (Adam lr 1e-3 constant, batch 40 (mnist5k: 100), one evaluation per epoch,
fit = training accuracy >= 0.99 on the labels trained on; an MLP 1x512 with
softmax-bounded CE where the released code trains a CNN on CIFAR-10 at Adam
lr 5e-6 for 2,000 epochs of 20 batches of 512):
  reference   plain CE (generalization), clean, same n, stopping at its fit: (1)'s
              "relative to".
  noise       forced_memorization_test (held-out = the test split, equal in size
              to the training set as in the released code: n = 360 digits and
              the 360 test digits; mnist5k: 1,000 and 1,000), f in {0, 0.25, 0.5,
              0.75, 1}; epochs and steps to fit, epochs to 0.9 training accuracy,
              training and held-out (= equally noisy test) accuracy after 200 epochs.
  size        forced_memorization_pool (held-out = training examples n..2n-1,
              so it grows with n), n in {160, 320, 640} (mnist5k: 250..2000), for
              natural images (clean), random data (the released code's: f = 0
              noise inputs with their labels) and random labels (memobench's
              extra). Budget: 200 epochs, whatever n (the paper counts epochs).
  stability   computed cells: the reference and every noise run trained again for
              the whole 200 epochs (the reference does not stop at its fit, so it is
              compared with forced memorization at equal epochs; the forced runs end
              exactly as their spec runs: `stability_runs_match_spec_runs` = 0), with
              metrics/input_stability.py's ||dCE/dx|| (the released code's
              loss_gradient) and ||df/dx||_F (the logits' input Jacobian) at every
              epoch on 128 inputs of each set: the training inputs as trained on, the
              test inputs (held out, so touched, by forced memorization), noise, and
              "untouched" clean inputs (training-split examples 360..487 that no run
              trains on or holds out). Compared at epochs 25, 50, 100, 200 and at
              each seed's first epoch at 0.9 training accuracy.
Fit times are right-censored: a seed that never fits within the budget
counts at its budget (a lower bound); each cell says how many seeds were
censored (`censored`, `is_lower_bound`). Differences are resolved beyond two
standard errors (Welch, 3 seeds).

Measured (digits, 3 seeds, mean +- sample std; 2026-12-04):

  reference (plain CE, clean, n = 360): fits (0.99) in 22.3 +- 1.5 epochs, test 0.944.

  forced memorization, held-out = test   f = 0      0.25           0.5            0.75           1 (clean)
  epochs to fit (0.99)                   >= 200 (3/3 censored at the budget, every f)
  epochs to 0.9 training accuracy        >= 200     >= 198.0       137.3 +- 21.5  >= 174.3       155.0 +- 7.2
  training accuracy after 200 epochs     0.875      0.888          0.965          0.938          0.921
  held-out (noisy test) accuracy         0.059      0.080          0.087          0.114          0.107

  size (held-out pool n..2n-1)   final training accuracy at n = 160 / 320 / 640
  natural (clean)                0.921 / 0.842 / 0.808
  random inputs (f = 0)          0.935 / 0.883 / 0.823
  random labels                  0.796 / 0.689 / 0.604

  stability, plain CE vs forced memorization (f = 1), both trained 200 epochs
                       ||dCE/dx|| train   untouched       ||df/dx||_F train   untouched
  epoch 25             0.51 vs 2.41       0.70 vs 3.08    17.0 vs 11.6        16.9 vs 11.5
  epoch 50             0.26 vs 3.77       0.73 vs 6.17    23.2 vs 21.4        23.2 vs 21.3
  epoch 100            0.09 vs 4.57       0.84 vs 10.1    30.3 vs 37.6        30.3 vs 37.6
  epoch 200            0.03 vs 3.81       0.98 vs 17.1    37.9 vs 66.8        37.9 vs 66.8
  at 0.9 train acc.    0.95 vs 3.80       0.94 vs 14.2    5.2 vs 55.2         5.2 vs 55.1
  (0.9 reached at epoch 4.3 and 155; at epoch 1 every run is at 0.7 and 2.4)

Verdicts (summary.json "verdicts", computed from these numbers by rules in code):
  (1) memorization is difficult relative to generalization: AGREES (22 epochs
      vs none of 15 forced runs fitted in 200).
      Adding noise makes memorization easier: PARTLY. At equal epochs, f = 0.5
      ends above clean inputs (+0.044 +- 0.011), f = 0.75 is not resolved, more
      noise is harder (f = 0.25: -0.033 +- 0.010; f = 0: -0.046 +- 0.009). The
      epochs to 0.9 of f = 0.5 and clean (137 +- 22 vs 155 +- 7) are within
      noise (-17.7 +- 13.1). On 64-dimensional digits noise inputs are far from
      orthogonal (CIFAR's 3,072 dimensions in the paper).
  (2) more samples: PARTLY. Natural images get harder with n, as the paper says;
      random data gets harder too (noise inputs and random labels), at a fixed
      200 epochs (4x the steps at n = 640).
  (3) attraction to maximal input stability: PARTLY. Over 200 epochs plain CE's
      loss gradient on the inputs it fits vanishes (0.71 -> 0.03), but on
      untouched inputs it grows (0.70 -> 0.98) and its input Jacobian grows 15x.
  (3') the generalizing model more stable than a memorizing one: PARTLY. In the
      released code's measure, ||dCE/dx||, plain CE is more stable at every
      matched epoch and at matched fit, on training and untouched inputs; in
      the label-free Jacobian forced memorization is more stable at epochs 25
      and 50 (resolved), plain CE at 100, 200 and at matched fit. The previous
      protocol's "CE ends ~4x more stable" compared CE at its fit epoch (~22)
      with forced memorization at 200.

No setting was tuned toward the paper: Adam lr 1e-3, batch 40, the 0.99 fit
threshold, the 200-epoch budget and the compared epochs (25, 50, 100, 200)
were fixed before the runs; the 0.9 column was added (earlier) because every
0.99 fit time is censored. The verdict rule of (3)/(3') first read
||df/dx||_F only; ||dCE/dx|| was added after seeing that the two measures
disagree (both were measured and reported since the first version).

--dataset=mnist5k (an option; n = 1,000, batch 100; 19m07s wall, 967 CPU-s, load 1-5;
experiments/results/badger2022_mnist5k/): (1) AGREES (CE fits in 10 epochs; 10 of 15
forced runs censored); noise makes memorization easier AGREES by the rule (every noisy
f ends above clean: 0.971-0.991 vs 0.952; f = 0.5 fits 3/3 seeds in 101 +- 10 epochs,
clean none), though f = 0.5 reaches 0.9 later than clean (61 +- 5 vs 52 +- 2 epochs):
easier for the fit, not early on. (2) PARTLY (random data harder with n, as on digits);
(3) PARTLY; (3') AGREES (CE more stable in both measures at every matched epoch and at
matched fit, e.g. epoch 25 ||df/dx||_F 16.3 vs 23.2, where digits had forced ahead).

Outputs in the workdir: badger2022.png (four panels), summary.json
(`reference`, `noise.<f>.{epochs_to_fit,steps_to_fit,heldout_accuracy,...}`,
`size.<data>.<n>.{epochs_to_fit,steps_to_fit,train_accuracy}`,
`stability.<set>.<cell>.{epoch,<measure>.{mean,std,n}}` per evaluation,
`matched_epochs.<epoch>.<cell>.<set>.<measure>` and `matched_fit.<cell>...`
(with per-seed `values`), `verdicts`), leaderboard.json/.html, runs/<cell>/seed<N>/,
cells/stability_<cell>/record.json (per-seed curves).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import driver, summaries, verdicts
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import KnobError, knob

NOISE_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Per dataset: (noise-sweep training-set size = its test-set size, batch, size sweep). The
# noise sweep trains on as many examples as the held-out test split holds (the released code
# pairs 20 training with 20 held-out batches); the pool needs 2n <= the training split.
SETTINGS = {"digits": (360, 40, (160, 320, 640)),
            "mnist5k": (1000, 100, (250, 500, 1000, 2000))}
OTHER_SETTINGS = (1000, 100, (250, 500, 1000, 2000))
SIZE_DATA = {"natural": ("clean", None), "random_inputs": ("noise_both", 0.0),
             "random_labels": ("randlabels", None)}
# The stability cells' input sets: the first samples training inputs as trained on, the first
# test inputs as the run sees them (noisy for f < 1; held out by forced memorization), the
# released code's noise, and clean training-split examples n..n+samples-1 that no run of the
# noise sweep trains on or holds out ("untouched").
SPLITS = ("train", "test", "noise", "untouched")
MEASURES = ("input_gradient_norm", "logit_jacobian_norm")
# The 0.9 training-accuracy threshold of the fit-time columns and of the matched-fit comparison.
FIT_09 = 0.9


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset: cells are <dataset>_clean with overrides")
  seeds: int = knob(3, "seeds per cell, trained together", lo=1)
  fractions: tuple[float, ...] = knob(NOISE_FRACTIONS, "signal fractions f of the noise sweep "
                                      "(inputs x*f + noise*(1-f))", lo=0.0, hi=1.0)
  noise_n: int | None = knob(None, "training examples of the noise sweep (none: the dataset's, "
                                   "digits 360, else 1000)", lo=1)
  batch_size: int | None = knob(None, "batch of every cell (none: digits 40, else 100)", lo=1)
  sizes: tuple[int, ...] | None = knob(None, "training-set sizes n of the size sweep (none: "
                                             "digits 160,320,640, else 250,...,2000)", lo=1)
  max_epochs: int = knob(200, "epochs of every cell's budget", lo=1)
  lr: float = knob(1e-3, "Adam learning rate (constant)", lo=1e-8, hi=1.0)
  stability_samples: int = knob(128, "inputs of each set (train, test, noise, untouched) whose "
                                     "input-gradient and input-Jacobian norms are measured", lo=1)
  compare_epochs: tuple[int, ...] = knob((25, 50, 100, 200), "epochs at which the stability "
                                         "of the plain-CE and forced runs is compared", lo=1)
  quick: bool = False


QUICK = Config(seeds=1, fractions=(0.0, 1.0), noise_n=120, sizes=(80,), max_epochs=3,
               stability_samples=16, compare_epochs=(1, 3), quick=True)


def settings(config: Config) -> tuple[int, int, tuple[int, ...]]:
  """(noise-sweep training-set size, batch, size sweep) of the config's dataset."""
  noise_n, batch, sizes = SETTINGS.get(config.dataset, OTHER_SETTINGS)
  return (config.noise_n or noise_n, config.batch_size or batch, config.sizes or sizes)


def _base(config: Config, n: int, batch: int) -> tuple[str, ...]:
  return ("optimizer.kind=adam", f"optimizer.lr={config.lr}", "optimizer.lr_decay_per_epoch=1.0",
          f"budget.batch_size={batch}", f"budget.max_epochs={config.max_epochs}",
          f"budget.eval_every_steps={max(1, n // batch)}", f"dataset.train_size={n}",
          "analysis.dynamics=false", "analysis.effective_rank=false")


def _corruption(kind: str, level: float | None) -> tuple[str, ...]:
  return (f"corruption.kind={kind}",) + (() if level is None else (f"corruption.level={level}",))


def noise_key(f: float) -> str:
  return f"noise_f{f:g}"


def size_key(data: str, n: int) -> str:
  return f"size_{data}_n{n}"


def stability_key(label: str) -> str:
  return f"stability_{label}"


def stability_labels(config: Config) -> dict[str, str]:
  """{label: the spec cell whose run a stability cell retrains}: plain CE and every f."""
  return {"ce": "reference_ce", **{f"forced_f{f:g}": noise_key(f) for f in config.fractions}}


def grid(config: Config) -> list:
  from memobench import catalogue, specs  # pylint: disable=import-outside-toplevel
  noise_n, batch, sizes = settings(config)
  spec = catalogue.get(f"{config.dataset}_clean")
  cells: list = [SpecCell("reference_ce", spec, _base(config, noise_n, batch), config.seeds)]
  for f in config.fractions:
    cells.append(SpecCell(noise_key(f), spec, _base(config, noise_n, batch)
                          + _corruption("noise_both", f)
                          + ("analysis.objective=forced_memorization_test",), config.seeds))
  for data, (kind, level) in SIZE_DATA.items():
    for n in sizes:
      cells.append(SpecCell(size_key(data, n), spec, _base(config, n, batch)
                            + _corruption(kind, level)
                            + ("analysis.objective=forced_memorization_pool",), config.seeds))
  spec_cells = {c.key: c for c in cells}
  for label, key in stability_labels(config).items():
    cell = spec_cells[key]
    resolved, _ = specs.with_overrides(cell.spec, list(cell.overrides))
    cells.append(ComputedCell(stability_key(label), compute_stability,
                              StabilityConfig(resolved, config.seeds, config.stability_samples)))
  return cells


def check(config: Config) -> None:
  if len(set(config.fractions)) != len(config.fractions):
    raise KnobError(f"fractions={','.join(map(str, config.fractions))}: expected distinct values")
  if 1.0 not in config.fractions:
    raise KnobError("fractions must include 1 (clean inputs: the forced run that the plain-CE "
                    "reference and the noisy ones are compared with)")
  late = [e for e in config.compare_epochs if e > config.max_epochs]
  if late:
    raise KnobError(f"compare_epochs={','.join(map(str, config.compare_epochs))}: "
                    f"{late[0]} is past max_epochs={config.max_epochs}")


# --------------------------------------------------------------------------
# Stability cells: the reference and forced runs again, for the whole budget, measured
# at every epoch on four input sets (computed cells)
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StabilityConfig:
  """A stability cell: `seeds` runs of `spec` (its overrides applied) to the end of its budget."""
  spec: object          # memobench.specs.Spec
  seeds: int
  samples: int


class _Track:
  """A run's on_eval: epoch, accuracies and the stability measures of every input set."""

  def __init__(self, inputs: dict, steps_per_epoch: int):
    self.inputs, self.steps_per_epoch = inputs, steps_per_epoch
    self.rows: dict = {"epoch": [], "train_accuracy": [], "test_accuracy": [],
                       **{f"{s}.{m}": [] for s in SPLITS for m in MEASURES}}

  def __call__(self, ev) -> None:
    from memobench.metrics import input_stability  # pylint: disable=import-outside-toplevel
    out = input_stability.measure(*ev.model(), self.inputs)
    self.rows["epoch"].append(ev.step / self.steps_per_epoch)
    self.rows["train_accuracy"].append(float(ev.train_accuracy))
    self.rows["test_accuracy"].append(float(ev.test_accuracy))
    for split in SPLITS:
      for measure in MEASURES:
        self.rows[f"{split}.{measure}"].append(out[split][measure])


def compute_stability(config: StabilityConfig, ctx) -> dict:
  """Trains each seed of the spec for its whole budget (no stop on fitting: the plain-CE
  reference runs as many epochs as forced memorization) in one vmapped program, and
  measures metrics/input_stability.py's two norms at every evaluation on the train, test
  and noise inputs of that metric plus `samples` untouched clean inputs (training-split
  examples n..n+samples-1, outside the n trained on; the noise sweep holds out the test
  split, so no run touches them)."""
  from memobench import specs, workload as workload_lib  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  from memobench.metrics import input_stability  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  spec, m = config.spec, config.samples
  n = spec.dataset.train_size
  full = datasets.load(dataclasses.replace(spec.dataset, train_size=None), ctx.data_dir)
  if n is None or n + m > full.num_train:
    raise specs.SpecError(f"the stability cells need {m} untouched training examples after the "
                          f"{n} trained on; {full.name} has {full.num_train}")
  untouched = (np.asarray(full.x_train[n:n + m], np.float32),
               np.asarray(full.y_train[n:n + m], np.int32))
  workload = workload_lib.resolve(spec, ctx.data_dir, stops_on_fit=False)
  measured = dataclasses.replace(spec, analysis=dataclasses.replace(
      spec.analysis, input_stability_samples=m))
  members, tracks = [], []
  for seed in range(spec.seed, spec.seed + config.seeds):
    data = workload.corrupted_data(seed)
    inputs = input_stability.stability_inputs(dataclasses.replace(measured, seed=seed),
                                               data.x_train, data.y_train, data.x_test,
                                               data.y_test)
    tracks.append(_Track({**inputs, "untouched": untouched}, workload.schedule.steps_per_epoch))
    members.append(loop.Member(dataclasses.replace(spec, seed=seed), data, log=lambda _: None,
                               on_eval=tracks[-1]))
  vmapped = ctx.vmap != "false" and len(members) > 1 and workload.fused
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  return {"seeds": list(range(spec.seed, spec.seed + config.seeds)),
          "statuses": [o.status for o in outcomes], "runs": [t.rows for t in tracks]}


def fit_cell(runs: list[dict], metric: str) -> dict:
  """{mean, std, ci95, n} of a fit time with censored seeds at their budget (lower bounds)."""
  values, censored = [], 0
  for r in runs:
    m = r["metrics"]
    if m.get(metric) is not None:
      values.append(float(m[metric]))
    elif m.get("steps_to_fit_censored") or r["run"]["status"] == "budget_exhausted":
      censored += 1
      bound = m.get(f"{metric}_lower_bound")
      if bound is None:
        bound = r["run"]["steps" if metric == "steps_to_fit" else "epochs"]
      values.append(float(bound))
  out = summaries.summarize(values)
  out["censored"] = censored
  out["is_lower_bound"] = censored > 0  # then the mean is a lower bound, not an estimate
  out["median"] = float(np.median(values)) if values else None
  return out


def threshold_cell(runs: list[dict], threshold: float) -> dict:
  """Epochs until training accuracy first reaches `threshold` (from each seed's curve).

  A seed whose curve never reaches it counts at its last evaluated epoch (a lower bound).
  """
  values, censored = [], 0
  for r in runs:
    curve = r["curve"]
    epochs, accs = curve["epoch"], curve["train_accuracy"]
    hit = next((e for e, a in zip(epochs, accs) if a is not None and a >= threshold), None)
    if hit is None:
      censored += 1
      hit = epochs[-1]
    values.append(float(hit))
  out = summaries.summarize(values)
  out.update(censored=censored, is_lower_bound=censored > 0, threshold=threshold)
  return out


def stability_curves(record: dict) -> dict:
  """{split: {"epoch": [...], measure: {"mean": [...], "std": [...], "n": seeds}}} of a
  stability cell (every seed is evaluated at the same epochs: no run stops early)."""
  runs = record["runs"]
  epochs = min((r["epoch"] for r in runs), key=len)
  out = {}
  for split in SPLITS:
    out[split] = {"epoch": epochs}
    for measure in MEASURES:
      stats = [summaries.summarize(r[f"{split}.{measure}"][i] for r in runs)
               for i in range(len(epochs))]
      out[split][measure] = {"mean": [c["mean"] for c in stats],
                             "std": [c["std"] for c in stats], "n": len(runs)}
  return out


def curve_point(curve: dict, i: int) -> dict:
  """Evaluation i of a stability curve as a seed statistic {mean, std, n}."""
  return {"mean": curve["mean"][i], "std": curve["std"][i], "n": curve["n"]}


def _with_values(values: list) -> dict:
  return {**summaries.summarize(values), "values": values}


def _epoch_index(run: dict, epoch: float) -> int | None:
  return next((i for i, e in enumerate(run["epoch"]) if abs(e - epoch) < 1e-9), None)


def _at(record: dict, index_of) -> dict:
  """Epoch, training accuracy and every {set: {measure}} of a stability cell's seeds, each at
  evaluation index_of(run) (None: that seed has none), as stats with per-seed values."""
  idx = [(r, index_of(r)) for r in record["runs"]]
  pick = lambda key: _with_values([None if i is None else r[key][i] for r, i in idx])  # noqa: E731
  return {"epoch": pick("epoch"), "train_accuracy": pick("train_accuracy"),
          **{split: {m: pick(f"{split}.{m}") for m in MEASURES} for split in SPLITS}}


def at_epoch(record: dict, epoch: float) -> dict:
  return _at(record, lambda r: _epoch_index(r, epoch))


def at_fit(record: dict, threshold: float) -> dict:
  """At each seed's first evaluation with training accuracy >= threshold."""
  return {"threshold": threshold, **_at(record, lambda r: next(
      (i for i, a in enumerate(r["train_accuracy"]) if a >= threshold), None))}


def summarize(config: Config, records: dict) -> dict:
  noise_n, batch, sizes = settings(config)
  ref = records["reference_ce"]
  summary = {
      "experiment": "badger2022", "dataset": config.dataset, "seeds": config.seeds,
      "quick": config.quick,
      "settings": {"optimizer": f"adam lr {config.lr} constant", "batch_size": batch,
                   "max_epochs": config.max_epochs, "noise_train_size": noise_n,
                   "fit_threshold": ref[0]["spec"]["resolved"]["budget"]["fit_threshold"],
                   "model": ref[0]["spec"]["resolved"]["model"]["name"],
                   "stability_samples": config.stability_samples,
                   "untouched_inputs": f"training-split examples {noise_n}.."
                                       f"{noise_n + config.stability_samples - 1} (clean)"},
      "reference": {"objective": "ce", "epochs_to_fit": fit_cell(ref, "epochs_to_fit"),
                    "epochs_to_train_accuracy_0.9": threshold_cell(ref, FIT_09),
                    "steps_to_fit": fit_cell(ref, "steps_to_fit"),
                    "test_accuracy": summaries.stat(ref, "test_accuracy")},
      "noise": {}, "size": {}, "stability": {s: {} for s in SPLITS}}
  for f in config.fractions:
    runs = records[noise_key(f)]
    summary["noise"][f"{f:g}"] = {
        "epochs_to_fit": fit_cell(runs, "epochs_to_fit"),
        "steps_to_fit": fit_cell(runs, "steps_to_fit"),
        "epochs_to_train_accuracy_0.9": threshold_cell(runs, FIT_09),
        "heldout_accuracy": summaries.stat(runs, "test_accuracy"),
        "train_accuracy": summaries.stat(runs, "train_accuracy"),
        "train_accuracy_by_seed": [r["metrics"]["train_accuracy"] for r in runs]}
  for data in SIZE_DATA:
    summary["size"][data] = {}
    for n in sizes:
      runs = records[size_key(data, n)]
      summary["size"][data][str(n)] = {
          "epochs_to_fit": fit_cell(runs, "epochs_to_fit"),
          "steps_to_fit": fit_cell(runs, "steps_to_fit"),
          "epochs_to_train_accuracy_0.9": threshold_cell(runs, FIT_09),
          "train_accuracy": summaries.stat(runs, "train_accuracy"),
          "train_accuracy_by_seed": [r["metrics"]["train_accuracy"] for r in runs]}
  labels = stability_labels(config)
  stab = {label: records[stability_key(label)] for label in labels}
  for label, record in stab.items():
    curves = stability_curves(record)
    for split in SPLITS:
      summary["stability"][split][label] = curves[split]
  # The stability cells retrain the spec cells' runs (same spec and seeds), only without the
  # stop at a fit: at each spec run's last epoch their training accuracies must agree.
  summary["stability_runs_match_spec_runs"] = {
      label: max(float("inf") if (i := _epoch_index(r, s["run"]["epochs"])) is None
                 else abs(r["train_accuracy"][i] - s["metrics"]["train_accuracy"])
                 for r, s in zip(stab[label]["runs"], records[key]))
      for label, key in labels.items()}
  summary["matched_epochs"] = {str(e): {label: at_epoch(stab[label], float(e))
                                        for label in labels} for e in config.compare_epochs}
  summary["matched_fit"] = {label: at_fit(stab[label], FIT_09) for label in labels}
  summary["verdicts"] = verdict_records(config, summary)
  return summary


def _pm_diff(a: dict, b: dict, digits: int = 3) -> str:
  """'+d +- se' of mean(a) - mean(b)."""
  d, se = verdicts.difference(a, b)
  return "n/a" if d is None else f"{d:+.{digits}f}" + ("" if se is None else f" +- {se:.{digits}f}")


# The two stability measures of metrics/input_stability.py, as the verdicts name them.
SHOWN = (("input_gradient_norm", "||dCE/dx||"), ("logit_jacobian_norm", "||df/dx||_F"))
MEASURE_DEPARTURES = (
    "the paper's own measure of stability is not released; both of memobench's enter the rule: "
    "||dCE/dx|| (the released code's loss_gradient) and the label-free ||df/dx||_F of the "
    "logits, on 128 inputs per set (a first version of the rule read ||df/dx||_F only; "
    "||dCE/dx|| was added after seeing the results, where the two measures disagree)",)


def verdict_records(config: Config, summary: dict) -> list[dict]:
  s, noise, size = summary["settings"], summary["noise"], summary["size"]
  budget = s["max_epochs"]
  base = (f"same n ({s['noise_train_size']}), model, Adam lr {config.lr}, batch "
          f"{s['batch_size']}; {budget} epochs; fit = {s['fit_threshold']} training accuracy "
          "on the labels trained on")
  out = []

  def add(claim, word, decide, **kw):
    out.append(verdicts.verdict(claim, paper="Badger 2022, abstract", verdict=word,
                                decide=decide if word == "inconclusive" else None,
                                figure="badger2022.png", **kw))

  # (1) memorization is difficult relative to generalization: fit times.
  ref = summary["reference"]["epochs_to_fit"]
  forced = [c["epochs_to_fit"] for c in noise.values()]
  fastest = min((c["mean"] for c in forced if c["mean"] is not None), default=None)
  add("(1) memorization is difficult relative to generalization",
      "inconclusive" if ref["censored"] or ref["mean"] is None or fastest is None
      else "agrees" if fastest > ref["mean"] else "disagrees",
      "a reference that fits within the budget",
      matched=base + "; plain CE stops at its fit, forced memorization runs its budget",
      measured=(f"plain CE fits in {verdicts.fmt(ref)} epochs; forced memorization: "
                f"{sum(c['censored'] for c in forced)} of {sum(c['n'] for c in forced)} runs "
                f"(every f) censored at {budget} epochs"),
      departures=(f"{s['model']} on {s['noise_train_size']} {summary['dataset']} examples, Adam "
                  f"{config.lr}, {budget} epochs; the released code: a CNN on CIFAR-10, Adam "
                  "5e-6, 2,000 epochs",))
  # (1') adding noise makes memorization easier: final training accuracy at equal epochs.
  clean = noise["1"]
  noisy = {f: c for f, c in noise.items() if f != "1"}
  signs = [verdicts.sign(c["train_accuracy"], clean["train_accuracy"]) for c in noisy.values()]
  fit_note = ""
  if "0.5" in noisy:
    a, b = noisy["0.5"]["epochs_to_train_accuracy_0.9"], clean["epochs_to_train_accuracy_0.9"]
    d, se = verdicts.difference(a, b)
    if d is not None and se is not None:
      fit_note = (f"; epochs to 0.9 training accuracy f=0.5 {verdicts.fmt(a)} vs clean "
                  f"{verdicts.fmt(b)}: "
                  f"{d:+.1f} +- {se:.1f}, "
                  + ("resolved" if verdicts.beyond(d, se) else "within noise")
                  + (" (lower bounds)" if a["is_lower_bound"] or b["is_lower_bound"] else ""))
  add("(1') adding noise to the inputs makes memorization easier",
      # not verdicts.word: every level counts, resolved either way
      "agrees" if signs and all(x == 1 for x in signs) else
      "inconclusive" if all(x == 0 for x in signs) else
      "disagrees" if all(x == -1 for x in signs) else "partly",
      "more seeds: no noise level differs from clean by 2 se",
      matched=base + "; inputs x*f + noise*(1-f) in training and held-out sets; compared at "
              "the end of the budget",
      measured=(f"final training accuracy, clean (f=1) {clean['train_accuracy']['mean']:.3f}; "
                + ", ".join(f"f={f}: {c['train_accuracy']['mean']:.3f} ("
                            f"{_pm_diff(c['train_accuracy'], clean['train_accuracy'])})"
                            for f, c in noisy.items())
                + f" (difference to clean +- se; {signs.count(1)} of {len(signs)} noisy levels "
                f"resolved easier, {signs.count(-1)} harder)" + fit_note),
      departures=("64-dimensional digits: noise inputs are far from orthogonal (CIFAR's 3,072 "
                  "in the paper)",))
  # (2) more samples: harder for natural images, easier for random data.
  ns = list(size["natural"])
  by = {data: verdicts.sign(size[data][ns[-1]]["train_accuracy"],
                            size[data][ns[0]]["train_accuracy"]) * want
        for data, want in (("natural", -1), ("random_inputs", 1), ("random_labels", 1))}
  add("(2) more training samples make overfitting easier for random data, harder for natural "
      "images", verdicts.word([by["natural"], min(by["random_inputs"], by["random_labels"])]),
      "more seeds or sizes",
      matched=f"equal epochs ({budget}) at every n (so more steps at larger n); held-out pool "
              "n..2n-1 of the training split",
      measured=f"final training accuracy at n = {' / '.join(ns)}: " + "; ".join(
          f"{data} " + " / ".join(f"{size[data][n]['train_accuracy']['mean']:.3f}" for n in ns)
          for data in by),
      departures=("random labels are memobench's extra; the released code's random data is "
                  "noise inputs (random_inputs)",))
  # (3) stability grows during training (attraction to points of maximal stability).
  stab = summary["stability"]
  first, last = (stab["train"]["ce"]["epoch"][k] for k in (0, -1))
  signs, rows = [], []
  for measure, name in SHOWN:
    for split in ("train", "untouched"):
      curve = stab[split]["ce"][measure]
      signs.append(verdicts.sign(curve_point(curve, 0), curve_point(curve, -1)))  # +1: falls
      rows.append(f"{name} {split} {curve['mean'][0]:.2f} -> {curve['mean'][-1]:.2f}")
  add("(3) the parameters of a generalizing model are attracted to points of maximal "
      "stability with respect to its inputs", verdicts.word(signs),
      "more seeds (the change over training is not resolved)",
      matched=f"plain CE trained the whole {budget}-epoch budget (no stop at its fit), "
              "measured at every epoch",
      measured=(f"plain CE, epoch {first:g} -> {last:g}: " + "; ".join(rows)
                + " (stability = a falling norm)"),
      departures=MEASURE_DEPARTURES)
  # (3') the generalizing model is more stable than a memorizing one, at matched epochs / fit.
  fit = summary["matched_fit"]
  pairs = [(f"epoch {e}", at["ce"], at["forced_f1"]) for e, at in summary["matched_epochs"].items()]
  pairs.append(("at 0.9 training accuracy", fit["ce"], fit["forced_f1"]))
  signs, rows = [], []
  for where, ce, mem in pairs:
    parts = []
    for measure, name in SHOWN:
      for split in ("train", "untouched"):
        if None in (ce[split][measure]["mean"], mem[split][measure]["mean"]):
          continue
        signs.append(verdicts.sign(mem[split][measure], ce[split][measure]))  # +1: CE lower
        parts.append(f"{name} {split} {ce[split][measure]['mean']:.2f} vs "
                     f"{mem[split][measure]['mean']:.2f}")
    if parts:
      rows.append(f"{where}: " + ", ".join(parts))
  add("(3') the generalizing solution is more stable with respect to its inputs than a "
      "memorizing one", verdicts.word(signs), "more seeds (no comparison resolves it)",
      matched=f"equal epochs ({', '.join(summary['matched_epochs'])}; plain CE and forced "
              "memorization at f=1 both trained the whole budget) and equal fit (each seed's "
              "first epoch at 0.9 training accuracy); on the training inputs and on clean inputs "
              "neither run touched",
      measured="plain CE vs forced memorization: " + "; ".join(rows),
      departures=MEASURE_DEPARTURES + (
          "the held-out test inputs are touched by forced memorization (it raises their loss), "
          "so the untouched set is training-split examples beyond n",))
  return out


# --------------------------------------------------------------------------
# Report and figure (from the summary only)
# --------------------------------------------------------------------------


def _fmt(cell: dict) -> str:
  if cell["mean"] is None:
    return "n/a"
  s = f"{'>=' if cell.get('is_lower_bound') else ''}{cell['mean']:.1f}"
  return s + (f" +- {cell['std']:.1f}" if cell["std"] is not None else "")


def report(config: Config, summary: dict) -> str:
  ref = summary["reference"]
  lines = [f"reference (plain CE, clean): epochs to fit {_fmt(ref['epochs_to_fit'])}, "
           f"test acc {ref['test_accuracy']['mean']:.3f}"]
  for f, c in summary["noise"].items():
    lines.append(f"forced f={f:<4s} epochs to fit {_fmt(c['epochs_to_fit']):>14s} "
                 f"(censored {c['epochs_to_fit']['censored']}), to 0.9 "
                 f"{_fmt(c['epochs_to_train_accuracy_0.9'])}  held-out acc "
                 f"{c['heldout_accuracy']['mean']:.3f}  train acc {c['train_accuracy']['mean']:.3f}")
  for data, by_n in summary["size"].items():
    row = "  ".join(f"n={n}: {_fmt(c['epochs_to_fit'])} "
                    f"(0.9: {_fmt(c['epochs_to_train_accuracy_0.9'])}, "
                    f"acc {c['train_accuracy']['mean']:.3f})" for n, c in by_n.items())
    lines.append(f"size {data:14s} epochs to fit  {row}")
  for split in SPLITS:
    for label, curve in summary["stability"][split].items():
      g, j = curve["input_gradient_norm"]["mean"], curve["logit_jacobian_norm"]["mean"]
      lines.append(f"stability {split:9s} {label:10s} ||dL/dx|| {g[0]:.3f} -> {g[-1]:.3f}  "
                   f"||df/dx||_F {j[0]:.2f} -> {j[-1]:.2f}")
  return "\n".join(lines)


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  fractions = [float(f) for f in summary["noise"]]
  noise = list(summary["noise"].values())
  sizes = [int(n) for n in summary["size"]["natural"]]
  fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
  ax = axes[0]
  errorbar(ax, fractions, [c["epochs_to_fit"] for c in noise], color="C3",
           label="forced memorization, to 0.99")
  errorbar(ax, fractions, [c["epochs_to_train_accuracy_0.9"] for c in noise], color="C1",
           label="forced memorization, to 0.9")
  ref = summary["reference"]["epochs_to_fit"]
  if ref["mean"] is not None:
    ax.axhline(ref["mean"], color="C0", ls="--", label="plain CE (clean)")
  ax.axhline(summary["settings"]["max_epochs"], color="0.6", ls=":", label="budget (censored)")
  ax.set(xlabel="signal fraction f (x*f + noise*(1-f))", ylabel="epochs to fit (train acc 0.99)",
         title="(1) noise makes memorization easier?")
  ax.legend(fontsize=7)
  ax = axes[1]
  errorbar(ax, fractions, [c["heldout_accuracy"] for c in noise], color="C3",
           label="held-out (noisy test)")
  errorbar(ax, fractions, [c["train_accuracy"] for c in noise], color="C2", label="train")
  ax.set(xlabel="signal fraction f", ylabel="accuracy at the end", ylim=(0, 1.02),
         title="(1') forced memorization: accuracies")
  ax.legend(fontsize=7)
  ax = axes[2]
  for (data, color) in zip(SIZE_DATA, ("C0", "C3", "C1")):
    errorbar(ax, sizes, [summary["size"][data][str(n)]["train_accuracy"] for n in sizes],
             color=color, label=data)
  ax.set(xscale="log", xlabel="training-set size n (held-out pool n..2n-1)",
         ylabel=f"training accuracy after the budget ({summary['settings']['max_epochs']} epochs)",
         ylim=(0, 1.02), title="(2) dataset size (epochs to fit: summary.json)")
  ax.legend(fontsize=7)
  ax = axes[3]
  labels = list(summary["stability"]["train"])
  for (label, color) in zip(labels, ("C0", "C3", "C4", "C5", "C6", "C2", "C7")):
    for split, ls in (("train", "-"), ("untouched", ":")):
      curve = summary["stability"][split][label]
      ax.plot(curve["epoch"], curve["logit_jacobian_norm"]["mean"], ls=ls, color=color,
              label=f"{label} {split}" if split == "train" else None)
  for e in summary["matched_epochs"]:
    ax.axvline(float(e), color="0.85", lw=0.8, zorder=0)
  ax.set(yscale="log", xlabel="epoch (grey: compared epochs)",
         ylabel="||df/dx||_F (train solid, untouched dotted)",
         title="(3) input-Jacobian norm over training")
  ax.legend(fontsize=6)
  fig.suptitle(f"Badger 2022 on {summary['dataset']} ({summary['seeds']} seed(s))"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"badger2022.png": fig}


EXPERIMENT = driver.Experiment(
    name="badger2022", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report, check=check)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
