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
import json
import os
import sys

import numpy as np

import common

from memobench import leaderboard, results, specs
from memobench.data import corruptions, datasets
from memobench import workload as workload_lib
from memobench.training import loop

EPOCHS = 20            # phase (i): fixed budget of every tracked run
RETRAIN_EPOCHS = 10    # phase (ii): fixed budget of every retraining
# Phase (ii) evaluates once, at the end: an evaluation per epoch would only cost time.
ONE_EVALUATION = "budget.eval_every_steps=1000000"
FRACTIONS = (0.1, 0.2, 0.3)
KINDS = ("difficult", "easy", "random")
RUNS = {"real": "clean", "partial": "partial40", "random": "randlabels"}
TERCILES = ("easy", "medium", "difficult")
# The random removals' draws: numpy's generator seeded with (RANDOM_STREAM, seed, k%).
RANDOM_STREAM = 2112


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


# --------------------------------------------------------------------------
# Phase (ii): retraining on subsets, through the one training loop
# --------------------------------------------------------------------------


def train_on_subsets(spec: specs.Spec, dataset: datasets.Dataset, kept: list[np.ndarray],
                     seeds: list[int], vmap: str) -> list[float]:
  """Clean test accuracy of seed s's model trained on the training examples kept[s].

  Every member keeps the same number of examples, so the seeds share one vmapped
  program (their data stacked); `spec` is the plain model's (no turn-over masks).
  """
  first = kept[0]
  subset = dataclasses.replace(dataset, x_train=dataset.x_train[first],
                               y_train=dataset.y_train[first], input_scale_train=None)
  workload = workload_lib.resolve(spec, dataset=subset, stops_on_fit=False)
  members = []
  for seed, idx in zip(seeds, kept):
    data = corruptions.clean_data(dataset.x_train[idx], dataset.y_train[idx], dataset.x_test,
                                  dataset.y_test, dataset.num_classes)
    members.append(loop.Member(dataclasses.replace(spec, seed=seed), data, log=lambda _: None))
  vmapped = vmap != "false" and len(members) > 1 and workload.fused
  outcomes = loop.train_group(workload, members, vmapped=vmapped)
  if any(o.status == "preempted" for o in outcomes):  # never record a partial retraining
    common.fail("preempted during a retraining (not checkpointed); rerun the same command: "
                "finished retrainings are kept", 143)
  return [float(o.final.test_accuracy) for o in outcomes]


def removal_phase(args, rankings: dict[int, np.ndarray], seeds: list[int],
                  epochs: int) -> dict[str, dict[str, list[float]]]:
  """{k%: {kind: [test accuracy per seed]}}, k = 0 the full training set; resumable."""
  spec, _ = common.get_spec(f"{args.dataset}_clean", [
      f"budget.max_epochs={epochs}", "budget.max_steps=none", ONE_EVALUATION,
      "analysis.dynamics=false", "analysis.effective_rank=false"])
  try:
    dataset = datasets.load(spec.dataset, args.data_dir)
  except datasets.DataError as e:
    common.fail(str(e), 1)
  folder = os.path.join(args.workdir, "removal")
  os.makedirs(folder, exist_ok=True)
  n = dataset.num_train
  plan = [(0, "none", [np.arange(n)] * len(seeds))]
  for fraction in args.fractions[:1] if args.quick else args.fractions:
    for kind in KINDS:
      plan.append((int(round(100 * fraction)), kind,
                   [kept_indices(rankings[s], fraction, kind, s) for s in seeds]))
  out: dict[str, dict[str, list[float]]] = {}
  for percent, kind, kept in plan:
    path = os.path.join(folder, f"{kind}_k{percent}.json")
    record = {"spec_hash": specs.spec_hash(spec), "seeds": seeds,
              "kept_sha": [results_digest(k) for k in kept]}
    cached = _read(path)
    if not args.no_resume and cached is not None and all(
        cached.get(f) == v for f, v in record.items()):
      accuracy = cached["test_accuracy"]
      print(f"removal {kind} {percent}%: kept existing result", file=sys.stderr)
    else:
      accuracy = train_on_subsets(spec, dataset, kept, seeds, args.vmap_seeds)
      results.write_json_atomic(path, {**record, "test_accuracy": accuracy,
                                       "kept_examples": int(len(kept[0]))})
      print(f"removal {kind} {percent}%: test accuracy "
            f"{np.mean(accuracy):.4f} ({len(kept[0])} examples kept)", file=sys.stderr)
    out.setdefault(str(percent), {})[kind] = accuracy
  return out


def results_digest(idx: np.ndarray) -> str:
  import hashlib  # pylint: disable=import-outside-toplevel
  return hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()[:16]


def _read(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


# --------------------------------------------------------------------------
# Phase (i) analysis
# --------------------------------------------------------------------------


def load_tracks(args, key: str, seed: int) -> dict[str, np.ndarray]:
  path = os.path.join(args.workdir, "runs", key, f"seed{seed}", "turnover.npz")
  with np.load(path) as z:
    return {k: z[k] for k in ("eval_steps", "own_loss_by_eval", "self_influence_loss_by_eval",
                              "self_influence_loss", "label_changed")}


def groups_of(run: str, tracks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The groups of one run: terciles of final self-influence, all, and (partial) clean/corrupted."""
  final = tracks["self_influence_loss"]
  out = {f"{run}.{name}": mask for name, mask in tercile_groups(final).items()}
  out[f"{run}.all"] = np.ones(len(final), bool)
  if run == "partial":
    out["partial.clean"] = ~tracks["label_changed"].astype(bool)
    out["partial.corrupted"] = tracks["label_changed"].astype(bool)
  return out


def analyse(args, seeds: list[int]) -> tuple[dict, dict, dict[int, np.ndarray]]:
  """(groups summary, mean curves for the figure, clean-run rankings per seed)."""
  per_group: dict[str, dict[str, list]] = {}
  curves: dict[str, dict[str, list]] = {}
  rankings = {}
  for run, corruption in RUNS.items():
    for seed in seeds:
      tracks = load_tracks(args, corruption, seed)
      if run == "real":
        rankings[seed] = tracks["self_influence_loss"]
      steps = tracks["eval_steps"]
      for group, mask in groups_of(run, tracks).items():
        si = group_curve(tracks["self_influence_loss_by_eval"], mask)
        loss = group_curve(tracks["own_loss_by_eval"], mask)
        g = per_group.setdefault(group, {"peak": [], "halving": [], "size": []})
        g["peak"].append(peak_step(steps, si))
        g["halving"].append(halving_step(steps, loss))
        g["size"].append(int(mask.sum()))
        c = curves.setdefault(group, {"steps": [], "si": [], "loss": []})
        c["steps"].append(steps)
        c["si"].append(si)
        c["loss"].append(loss)
  summary = {}
  for group, g in per_group.items():
    summary[group] = {"peak_step": leaderboard.summarize(g["peak"]),
                      "loss_halving_step": leaderboard.summarize(g["halving"]),
                      "examples": leaderboard.summarize(g["size"])}
  mean_curves = {}
  for group, c in curves.items():
    e = min(len(s) for s in c["steps"])  # a run that fitted early stops early
    mean_curves[group] = {"step": [int(v) for v in c["steps"][0][:e]],
                          "self_influence": np.mean([s[:e] for s in c["si"]], 0).tolist(),
                          "loss": np.mean([s[:e] for s in c["loss"]], 0).tolist()}
  return summary, mean_curves, rankings


def figure(args, mean_curves, removal_summary) -> None:
  plt = common.plt
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
    common.errorbar(ax, [0] + ks, [base] + [removal_summary[str(k)][kind]["test_accuracy"]
                                            for k in ks], color=color,
                    label=f"{kind} removed")
  ax.set(xlabel="% of training set removed", ylabel="clean test accuracy",
         title="(ii) retraining without k% of examples")
  ax.legend(fontsize=7)
  fig.suptitle(f"turn-over dropout self-influence over training (arXiv 2112.08798) on "
               f"{args.dataset}, {args.seeds} seed(s)" + (" [--quick]" if args.quick else ""))
  fig.tight_layout()
  common.savefig(fig, args, "turnover2021.png")


def main() -> None:
  p = common.parser(__doc__, "turnover2021_memorization", "digits")
  p.add_argument("--epochs", type=int, default=EPOCHS, help="phase (i) budget per run")
  p.add_argument("--retrain_epochs", type=int, default=RETRAIN_EPOCHS,
                 help="phase (ii) budget per retraining")
  p.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS),
                 help="phase (ii): comma-separated fractions of the training set removed")
  args = common.finish_args(p.parse_args())
  try:
    args.fractions = tuple(float(f) for f in args.fractions.split(","))
  except ValueError:
    args.fractions = ()
  if not args.fractions or not all(0 < f < 1 for f in args.fractions):
    common.fail(f"--fractions must be in (0, 1), e.g. 0.1,0.2,0.3; got {args.fractions!r}", 2)
  if args.shard is not None:
    common.fail("--shard is not supported: the retraining phase needs every tracked run", 2)
  if args.epochs < 1 or args.retrain_epochs < 1:
    common.fail("--epochs and --retrain_epochs must be >= 1", 2)
  if args.quick:
    budget = ("budget.max_steps=33", "budget.eval_every_steps=11")
    retrain_epochs = 1
  else:
    budget = (f"budget.max_epochs={args.epochs}",)
    retrain_epochs = args.retrain_epochs
  tracked = ("analysis.turnover_dropout=0.5", "analysis.turnover_every_eval=true",
             "budget.fit_threshold=1.0", "analysis.dynamics=false",
             "analysis.effective_rank=false", *budget)
  cells = []
  for corruption in RUNS.values():
    spec, _ = common.get_spec(f"{args.dataset}_{corruption}")
    cells.append(common.Cell(corruption, spec, tracked))
  grouped = common.run_cells(cells, args)
  seeds = [r["spec"]["resolved"]["seed"] for r in grouped["clean"]]
  group_summary, mean_curves, rankings = analyse(args, seeds)
  accuracy = removal_phase(args, rankings, seeds, retrain_epochs)
  removal_summary = {k: {kind: {"test_accuracy": leaderboard.summarize(v, (0.0, 1.0))}
                         for kind, v in kinds.items()} for k, kinds in accuracy.items()}
  summary = {
      "experiment": "turnover2021_memorization", "paper": "arXiv 2112.08798",
      "dataset": args.dataset, "seeds": args.seeds, "quick": args.quick,
      "tracked_runs": {run: c for run, c in RUNS.items()}, "tracked_overrides": list(tracked),
      "retrain_epochs": retrain_epochs,
      "groups": group_summary, "removal": removal_summary,
      "final_test_accuracy": {run: common.stat(grouped[c], "test_accuracy")
                              for run, c in RUNS.items()},
      "final_train_accuracy": {run: common.stat(grouped[c], "train_accuracy")
                               for run, c in RUNS.items()},
      "curves": mean_curves,
  }
  figure(args, mean_curves, removal_summary)
  common.export(args, summary)
  print("group                 peak step        loss-halving step")
  for group, g in group_summary.items():
    print(f"{group:20s}  {_fmt(g['peak_step'])}  {_fmt(g['loss_halving_step'])}")
  print("removal  k%  kind        test accuracy")
  for k, kinds in removal_summary.items():
    for kind, cell in kinds.items():
      print(f"         {k:>3s} {kind:10s}  {_fmt(cell['test_accuracy'], 4)}")


def _fmt(cell, digits=0) -> str:
  if cell["mean"] is None:
    return "n/a".ljust(16)
  std = cell["std"] if cell["std"] is not None else 0.0
  return f"{cell['mean']:.{digits}f} +- {std:.{digits}f}".ljust(16)


if __name__ == "__main__":
  sys.exit(main())
