"""Liu, Lin & Jaggi 2021: memorization seen through turn-over dropout self-influence over training.

Command:

    python experiments/turnover2021_memorization.py            # digits, MLP 1x512, 3 seeds
    python experiments/turnover2021_memorization.py --dataset=mnist5k
    python experiments/turnover2021_memorization.py --quick    # smoke test: digits, few steps

Runtime: 2m10s wall (174 CPU-s) for the default on the idle 2-core machine
(2026-12-02): phase (i), 9 tracked runs in 3 vmapped programs, 60 s; phase (ii),
10 retrainings of 3 vmapped seeds, ~7 s each. --quick: 52 s wall
alone (64 s in the test suite beside a second worker).

The paper ("Understanding memorization from the perspective of optimization via
efficient influence estimation", arXiv 2112.08798) estimates each training
example's self-influence with turn-over dropout (Kobayashi et al. 2020:
loss under the flipped mask minus loss under the example's own mask) during
training, for data with true labels ("real data") and with random labels
("random data"). Its findings, in its terms:
 (i) "For both real data and random data, the optimization of easy examples
     (e.g., real data) and difficult examples (e.g., random data) are conducted
     by the network simultaneously, with easy ones at a higher speed";
 (ii) "For real data, a correct difficult example in the training dataset is
     more informative than an easy one."

What this script measures (memobench's turn-over dropout, rate 0.5, on the
dataset's MLP 1x512 with its catalogue optimizer, SGD momentum 0.9, lr 0.1;
default digits; analysis.turnover_every_eval gives every example's own-mask loss
and self-influence at every evaluation, once per epoch):
 (i) three runs per seed, each for a fixed EPOCHS epochs (no stop on fitting):
     clean labels ("real"), 40% label resampling ("partial") and random labels
     ("random"). Groups: the terciles of each run's FINAL self-influence (easy =
     lowest third, medium, difficult = highest third), the partial run's clean
     vs corrupted examples, and every example of the real and the random run.
     For each group, the mean self-influence and mean own-mask loss over
     training; `peak_step` is the step at which the group's mean self-influence
     peaks, `loss_halving_step` the first step at which its mean loss is below
     half its first measured value (how fast it is optimized).
 (ii) the clean run's final self-influence ranks the training examples (each
     seed its own ranking); the plain model (no turn-over dropout) is retrained
     from scratch on the training set with the top k% (difficult), the bottom
     k% (easy) or a random k% removed, k in {10, 20, 30}, for RETRAIN_EPOCHS
     epochs (no stop on fitting), and its clean test accuracy compared with the
     full training set's ("none").

Measured (digits, 3 seeds, 20 epochs = 440 steps, an evaluation every 22 steps; means):

  group              mean own-mask loss: first eval -> final   halving step   final mean SI
  real (clean) all   0.256 -> 0.003                             44             0.58
  partial clean      0.758 -> 0.006                             125            2.92
  partial corrupted  2.904 -> 0.015                             125            17.96
  random all         2.130 -> 0.070                             161            13.51

(i) Agrees in part. Every group's loss falls from the first evaluations on (no
group waits for another: "simultaneously"), and the real-label data is
optimized fastest (its mean loss halves by step 44, the 40%-corrupted run's by
~125, the random-label run's by ~161). The self-influence of every group is
still rising at the end of the 20-epoch budget, so `peak_step` is the last
evaluation (440) for almost every group (a censored value, not a peak); the
paper's rise-then-fall of self-influence and its ordering of peaks were not
observed within this budget. A 5x longer probe (`--epochs=100`, 2,200 steps,
2m29s; not the default, results not committed) did not show them either:
every group's mean self-influence still rises to the last evaluation (real
0.58 -> 0.71, random 13.5 -> 17.1, partial corrupted 18.0 -> 22.4) while
the own-mask losses fall below 0.004; its removal phase gave the same
ordering (difficult removed 0.948 / 0.940 / 0.933 at k = 10 / 20 / 30%). Within the 40% run, corrupted and clean examples'
losses halve at the same evaluation (~125), and corrupted ones carry ~6x the
self-influence (17.96 vs 2.92).
(ii) Agrees. Clean test accuracy (mean +- std, 3 seeds; 10 retraining epochs;
"none" = the full training set, 0.963 +- 0.007):

  removed          k = 10%            20%                30%
  difficult        0.951 +- 0.007     0.940 +- 0.006     0.934 +- 0.006
  easy             0.971 +- 0.004     0.969 +- 0.006     0.968 +- 0.007
  random           0.970 +- 0.004     0.969 +- 0.006     0.966 +- 0.010

Removing the most self-influential ("difficult") examples costs 1.2, 2.3 and
2.9 points at k = 10, 20, 30%, growing with k; removing as many easy or random
ones costs nothing measurable (every easy/random mean is within a std of, or
above, the full set's).

Outputs in the workdir: turnover2021.png, summary.json (`groups.<group>.peak_step`,
`groups.<group>.loss_halving_step`, `removal.<k>.{difficult,easy,random}.test_accuracy`
and `removal.0.none.test_accuracy`, cells {mean, std, ci95, n} over seeds),
leaderboard.json/.html (the phase (i) runs), runs/<cell>/seed<N>/ (turnover.npz holds
the per-evaluation arrays) and removal/<kind>_k<k>.json (resumable retraining).
--shard is refused: phase (ii) needs every phase (i) result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from experiments import driver, summaries
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import knob

# Phase (ii) evaluates once, at the end: an evaluation per epoch would only cost time.
ONE_EVALUATION = "budget.eval_every_steps=1000000"
KINDS = ("difficult", "easy", "random")
RUNS = {"real": "clean", "partial": "partial40", "random": "randlabels"}
TERCILES = ("easy", "medium", "difficult")
# The random removals' draws: numpy's generator seeded with (RANDOM_STREAM, seed, k%).
RANDOM_STREAM = 2112
TRACKED = ("analysis.turnover_dropout=0.5", "analysis.turnover_every_eval=true",
           "budget.fit_threshold=1.0", "analysis.dynamics=false",
           "analysis.effective_rank=false")


@dataclasses.dataclass(frozen=True)
class Config:
  dataset: str = knob("digits", "catalogue dataset: phase (i) runs <dataset>_clean, "
                                "_partial40 and _randlabels")
  seeds: int = knob(3, "seeds per cell, trained together", lo=1)
  epochs: int = knob(20, "phase (i): fixed epochs of every tracked run", lo=1)
  retrain_epochs: int = knob(10, "phase (ii): fixed epochs of every retraining", lo=1)
  fractions: tuple[float, ...] = knob((0.1, 0.2, 0.3), "phase (ii): fractions of the "
                                      "training set removed", lo=0.001, hi=0.999)
  spec_overrides: tuple[str, ...] = knob((), "phase (i): spec --set overrides of every tracked "
                                             "run, after its budget (non-standard)")
  quick: bool = False


QUICK = Config(seeds=1, retrain_epochs=1, fractions=(0.1,),
               spec_overrides=("budget.max_steps=33", "budget.eval_every_steps=11"), quick=True)


def tracked_overrides(config: Config) -> tuple[str, ...]:
  return (*TRACKED, f"budget.max_epochs={config.epochs}", *config.spec_overrides)


# --------------------------------------------------------------------------
# Pure pieces (tested in tests/test_turnover2021.py)
# --------------------------------------------------------------------------


def kept_indices(scores: np.ndarray, fraction: float, kind: str, seed: int) -> np.ndarray:
  """The training indices kept (sorted) when removing round(fraction * n) examples.

  difficult: the highest `scores`; easy: the lowest (a stable sort breaks ties by
  index); random: a uniform draw of numpy's generator seeded with (RANDOM_STREAM,
  seed, percent).
  """
  scores = np.asarray(scores)
  n = len(scores)
  m = int(round(fraction * n))
  order = np.argsort(scores, kind="stable")  # ascending: easiest first
  if kind == "difficult":
    removed = order[n - m:]
  elif kind == "easy":
    removed = order[:m]
  elif kind == "random":
    rng = np.random.default_rng([RANDOM_STREAM, seed, int(round(100 * fraction))])
    removed = rng.choice(n, m, replace=False)
  else:
    raise ValueError(f"unknown removal kind {kind!r}")
  keep = np.ones(n, bool)
  keep[removed] = False
  return np.nonzero(keep)[0]


def tercile_groups(final_scores: np.ndarray) -> dict[str, np.ndarray]:
  """Boolean masks of the lowest, middle and highest third of `final_scores` (stable order)."""
  n = len(final_scores)
  order = np.argsort(final_scores, kind="stable")
  masks = {}
  for k, name in enumerate(TERCILES):
    mask = np.zeros(n, bool)
    mask[order[k * n // 3:(k + 1) * n // 3]] = True
    masks[name] = mask
  return masks


def group_curve(by_eval: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """(E,) the mean over the examples of `mask` of an (E, N) per-evaluation array."""
  return np.asarray(by_eval, np.float64)[:, np.asarray(mask, bool)].mean(axis=1)


def peak_step(steps: np.ndarray, curve: np.ndarray) -> int:
  """The step of the curve's maximum (the first, if several)."""
  return int(np.asarray(steps)[int(np.argmax(curve))])


def halving_step(steps: np.ndarray, curve: np.ndarray) -> int | None:
  """The first step at which `curve` is below half its first value; None if never."""
  below = np.nonzero(np.asarray(curve) < 0.5 * curve[0])[0]
  return int(np.asarray(steps)[below[0]]) if len(below) else None


def groups_of(run: str, tracks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The groups of one run: terciles of final self-influence, all, and (partial) clean/corrupted."""
  final = tracks["self_influence_loss"]
  out = {f"{run}.{name}": mask for name, mask in tercile_groups(final).items()}
  out[f"{run}.all"] = np.ones(len(final), bool)
  if run == "partial":
    out["partial.clean"] = ~tracks["label_changed"].astype(bool)
    out["partial.corrupted"] = tracks["label_changed"].astype(bool)
  return out


def load_tracks(run_folder: str) -> dict[str, np.ndarray]:
  """A tracked run's per-evaluation self-influence arrays (its turnover.npz)."""
  with np.load(os.path.join(run_folder, "turnover.npz")) as z:
    return {k: z[k] for k in ("eval_steps", "own_loss_by_eval", "self_influence_loss_by_eval",
                              "self_influence_loss", "label_changed")}


def seeds_of(runs: list[dict]) -> list[int]:
  return [r["spec"]["resolved"]["seed"] for r in runs]


# --------------------------------------------------------------------------
# Computed cells
# --------------------------------------------------------------------------


def compute_groups(config: dict, ctx) -> dict:
  """Phase (i): per group and seed, the mean self-influence and own-mask loss over training,
  their peak and halving steps (from each tracked run's turnover.npz)."""
  out: dict = {}
  for run, corruption in RUNS.items():
    source = ctx.inputs[corruption]
    for seed in seeds_of(source.record):
      tracks = load_tracks(source.run_folder(seed))
      steps = tracks["eval_steps"]
      for group, mask in groups_of(run, tracks).items():
        si = group_curve(tracks["self_influence_loss_by_eval"], mask)
        loss = group_curve(tracks["own_loss_by_eval"], mask)
        g = out.setdefault(group, {"seeds": [], "peak": [], "halving": [], "size": [],
                                   "steps": [], "si": [], "loss": []})
        g["seeds"].append(seed)
        g["peak"].append(peak_step(steps, si))
        g["halving"].append(halving_step(steps, loss))
        g["size"].append(int(mask.sum()))
        g["steps"].append([int(s) for s in steps])
        g["si"].append(si.tolist())
        g["loss"].append(loss.tolist())
  return out


@dataclasses.dataclass(frozen=True)
class RemovalConfig:
  """One retraining of phase (ii): `kind` removal of `fraction` (0: none), every seed."""
  spec: object          # memobench.specs.Spec of the plain model (no turn-over masks)
  seeds: tuple[int, ...]
  fraction: float
  kind: str


def results_digest(idx: np.ndarray) -> str:
  return hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()[:16]


def compute_removal(config: RemovalConfig, ctx) -> dict:
  """Clean test accuracy per seed of the plain model retrained from scratch on the training
  set without the examples `kind` removes, ranked by the seed's clean run's final
  self-influence (the seeds share one vmapped program: every one keeps as many examples)."""
  from memobench import workload as workload_lib  # pylint: disable=import-outside-toplevel
  from memobench.data import corruptions, datasets  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  spec, seeds = config.spec, list(config.seeds)
  dataset = datasets.load(spec.dataset, ctx.data_dir)
  if config.kind == "none":
    kept = [np.arange(dataset.num_train)] * len(seeds)
  else:
    clean = ctx.inputs["clean"]
    kept = [kept_indices(load_tracks(clean.run_folder(s))["self_influence_loss"],
                         config.fraction, config.kind, s) for s in seeds]
  first = kept[0]
  subset = dataclasses.replace(dataset, x_train=dataset.x_train[first], y_train=dataset.y_train[first],
                      input_scale_train=None)
  workload = workload_lib.resolve(spec, dataset=subset, stops_on_fit=False)
  members = []
  for seed, idx in zip(seeds, kept):
    data = corruptions.clean_data(dataset.x_train[idx], dataset.y_train[idx], dataset.x_test,
                                  dataset.y_test, dataset.num_classes)
    members.append(loop.Member(dataclasses.replace(spec, seed=seed), data, log=lambda _: None))
  vmapped = ctx.vmap != "false" and len(members) > 1 and workload.fused
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  accuracy = [float(o.final.test_accuracy) for o in outcomes]
  ctx.log(f"test accuracy {np.mean(accuracy):.4f} ({len(first)} examples kept)")
  return {"seeds": seeds, "test_accuracy": accuracy, "kept_examples": int(len(first)),
          "kept_sha": [results_digest(k) for k in kept],
          "statuses": [o.status for o in outcomes]}


def removal_key(kind: str, percent: int) -> str:
  return f"removal_{kind}_k{percent}"


def removal_plan(config: Config) -> list[tuple[int, str, float]]:
  """(percent, kind, fraction) of every retraining; percent 0 is the full training set."""
  plan = [(0, "none", 0.0)]
  for fraction in config.fractions:
    plan += [(int(round(100 * fraction)), kind, fraction) for kind in KINDS]
  return plan


def grid(config: Config) -> list:
  from memobench import catalogue, specs  # pylint: disable=import-outside-toplevel
  cells: list = [SpecCell(corruption, catalogue.get(f"{config.dataset}_{corruption}"),
                          tracked_overrides(config), config.seeds)
                 for corruption in RUNS.values()]
  cells.append(ComputedCell("groups", compute_groups, {}, needs=tuple(RUNS.values())))
  plain, _ = specs.with_overrides(catalogue.get(f"{config.dataset}_clean"), [
      f"budget.max_epochs={config.retrain_epochs}", "budget.max_steps=none", ONE_EVALUATION,
      "analysis.dynamics=false", "analysis.effective_rank=false"])
  seeds = tuple(range(plain.seed, plain.seed + config.seeds))
  for percent, kind, fraction in removal_plan(config):
    cells.append(ComputedCell(removal_key(kind, percent), compute_removal,
                              RemovalConfig(plain, seeds, fraction, kind),
                              needs=() if kind == "none" else ("clean",)))
  return cells


# --------------------------------------------------------------------------
# Summary (pure), report and figure
# --------------------------------------------------------------------------


def summarize(config: Config, records: dict) -> dict:
  groups = records["groups"]
  group_summary, mean_curves = {}, {}
  for group, g in groups.items():
    group_summary[group] = {"peak_step": summaries.summarize(g["peak"]),
                            "loss_halving_step": summaries.summarize(g["halving"]),
                            "examples": summaries.summarize(g["size"])}
    e = min(len(s) for s in g["steps"])  # a run that fitted early stops early
    mean_curves[group] = {"step": [int(v) for v in g["steps"][0][:e]],
                          "self_influence": np.mean([s[:e] for s in g["si"]], 0).tolist(),
                          "loss": np.mean([s[:e] for s in g["loss"]], 0).tolist()}
  removal: dict = {}
  for percent, kind, _ in removal_plan(config):
    accuracy = records[removal_key(kind, percent)]["test_accuracy"]
    removal.setdefault(str(percent), {})[kind] = {
        "test_accuracy": summaries.summarize(accuracy, (0.0, 1.0))}
  return {
      "experiment": "turnover2021_memorization", "paper": "arXiv 2112.08798",
      "dataset": config.dataset, "seeds": config.seeds, "quick": config.quick,
      "tracked_runs": dict(RUNS), "tracked_overrides": list(tracked_overrides(config)),
      "retrain_epochs": config.retrain_epochs,
      "groups": group_summary, "removal": removal,
      "final_test_accuracy": {run: summaries.stat(records[c], "test_accuracy")
                              for run, c in RUNS.items()},
      "final_train_accuracy": {run: summaries.stat(records[c], "train_accuracy")
                               for run, c in RUNS.items()},
      "curves": mean_curves,
  }


def _fmt(cell, digits=0) -> str:
  if cell["mean"] is None:
    return "n/a".ljust(16)
  std = cell["std"] if cell["std"] is not None else 0.0
  return f"{cell['mean']:.{digits}f} +- {std:.{digits}f}".ljust(16)


def report(config: Config, summary: dict) -> str:
  lines = ["group                 peak step        loss-halving step"]
  for group, g in summary["groups"].items():
    lines.append(f"{group:20s}  {_fmt(g['peak_step'])}  {_fmt(g['loss_halving_step'])}")
  lines.append("removal  k%  kind        test accuracy")
  for k, kinds in summary["removal"].items():
    for kind, cell in kinds.items():
      lines.append(f"         {k:>3s} {kind:10s}  {_fmt(cell['test_accuracy'], 4)}")
  return "\n".join(lines)


def plot(config: Config, summary: dict) -> dict:
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  mean_curves, removal_summary = summary["curves"], summary["removal"]
  fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
  colors = {"easy": "C2", "medium": "C1", "difficult": "C3", "all": "k", "clean": "C0",
            "corrupted": "C3"}
  for col, run in enumerate(RUNS):
    names = ([f"{run}.{t}" for t in TERCILES] + [f"{run}.all"] if run != "partial"
             else ["partial.clean", "partial.corrupted", "partial.all"])
    for row, (field, label) in enumerate((("self_influence", "mean self-influence (loss)"),
                                          ("loss", "mean own-mask loss"))):
      ax = axes[row, col]
      for name in names:
        c = mean_curves[name]
        sub = name.split(".")[1]
        ax.plot(c["step"], c[field], color=colors[sub], label=sub,
                ls="--" if sub == "all" else "-")
      ax.set(xlabel="step", ylabel=label, title=f"{run} labels ({RUNS[run]})")
      if field == "loss":
        ax.set_yscale("log")
      ax.legend(fontsize=7)
  ax = axes[0, 3]
  for name in ("real.all", "random.all"):
    c = mean_curves[name]
    ax.plot(c["step"], c["self_influence"], label=name)
  ax.set(xlabel="step", ylabel="mean self-influence", title="real vs random labels")
  ax.legend(fontsize=7)
  ax = axes[1, 3]
  ks = [int(k) for k in removal_summary if k != "0"]
  base = removal_summary["0"]["none"]["test_accuracy"]
  for kind, color in zip(KINDS, ("C3", "C2", "C7")):
    errorbar(ax, [0] + ks, [base] + [removal_summary[str(k)][kind]["test_accuracy"]
                                     for k in ks], color=color, label=f"{kind} removed")
  ax.set(xlabel="% of training set removed", ylabel="clean test accuracy",
         title="(ii) retraining without k% of examples")
  ax.legend(fontsize=7)
  fig.suptitle(f"turn-over dropout self-influence over training (arXiv 2112.08798) on "
               f"{summary['dataset']}, {summary['seeds']} seed(s)"
               + (" [--quick]" if summary["quick"] else ""))
  fig.tight_layout()
  return {"turnover2021.png": fig}


EXPERIMENT = driver.Experiment(
    name="turnover2021_memorization", doc=__doc__, config=Config(), quick=QUICK, grid=grid,
    summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
