"""Liu, Lin & Jaggi 2021: memorization seen through turn-over dropout self-influence over training.

Command:

    python experiments/turnover2021_memorization.py            # digits, MLP 1x512, 3 seeds
    python experiments/turnover2021_memorization.py --dataset=mnist5k
    python experiments/turnover2021_memorization.py --quick    # smoke test: digits, few steps

Runtime: 8m52s wall, 82 CPU-s for the default (2026-12-04, load average 23-25 on the
shared 2-core machine; 2m10s wall on the idle machine of 2026-12-02): phase (i), 9
tracked runs in 3 vmapped programs; phase (ii), 10 retrainings of 3 vmapped seeds,
~4 CPU-s each. --quick: ~30 CPU-s.

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
 (i) three runs per seed, each for a fixed 20 epochs (no stop on fitting):
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
     k% (easy) or a random k% removed, k in {10, 20, 30}, for 10 epochs (no stop
     on fitting), and its clean test accuracy compared with the full training
     set's ("none").
Differences are resolved beyond two standard errors (Welch, 3 seeds);
summary.json gives every statistic's per-seed `values`.

Measured (digits, 3 seeds, 20 epochs = 440 steps, an evaluation every 22 steps;
means; 2026-12-04):

  group              mean own-mask loss: first eval -> final   halving step   final mean SI
  real (clean) all   0.256 -> 0.003                             44 +- 0        0.58
  partial clean      0.758 -> 0.006                             125 +- 13      2.94
  partial corrupted  2.904 -> 0.015                             125 +- 13      18.07
  random all         2.130 -> 0.127                             161 +- 13      13.73

  training accuracy after 20 epochs   evaluation mode   own masks   flipped masks
  real (clean labels)                 0.974             1.000       0.857
  partial (40% resampled)             0.627             1.000       0.250
  random labels                       0.229             0.962       0.001

The random-label run reaches only 0.23 training accuracy in evaluation mode
(no dropout: the whole network; 0.200-0.247 over seeds), against 0.96 under
each example's own mask and 0.00 under the flipped one: the noise is memorized
under each example's own mask only (and the 40%-corrupted run's labels too:
0.63 in evaluation mode). "Optimized" in (i) means the own-mask loss.

Verdicts (summary.json "verdicts", computed from these numbers by rules in code):
(i) PARTLY. Every group's mean own-mask loss falls from the first evaluation
to the second (14 of 14 groups: "simultaneously"), and the real-label data is
optimized faster than the random-label data (its loss halves by step 44 vs
161, +117 +- 7 steps). Within the 40%-corrupted run, the clean (easy) and the
corrupted (difficult) examples' losses halve at the same evaluation (125 +-
13 both): no faster optimization of the easy ones at this resolution (one
evaluation = 22 steps), though corrupted ones carry ~6x the self-influence
(18.1 vs 2.9).
(i') the same finding read by timing (easy examples' self-influence peaks
before difficult ones'): INCONCLUSIVE. Every group's mean self-influence is still rising at
the last evaluation of the 20-epoch budget, so `peak_step` is censored there
(the last evaluation in every seed for every whole group). A 5x longer probe
(--epochs=100, 2026-12-02, not committed) still rose at its end (real 0.58 ->
0.71, random 13.5 -> 17.1) while the own-mask losses fell below 0.004; a
budget in which the self-influence peaks would decide it.
(ii) AGREES. Clean test accuracy (mean +- std, 3 seeds; 10 retraining epochs;
"none" = the full training set, 0.963 +- 0.007):

  removed          k = 10%            20%                30%
  difficult        0.951 +- 0.007     0.940 +- 0.006     0.934 +- 0.006
  easy             0.971 +- 0.004     0.969 +- 0.006     0.968 +- 0.007
  random           0.970 +- 0.004     0.969 +- 0.006     0.966 +- 0.010

Removing the most self-influential ("difficult") examples costs 1.2, 2.3 and
2.9 points at k = 10, 20, 30%, growing with k, and every difficult-removed
accuracy is below the easy- and the random-removed one beyond 2 se (6 of 6);
removing as many easy or random ones costs nothing measurable. Matched: the
same number of examples removed, the same retraining and seeds.

Outputs in the workdir: turnover2021.png, summary.json (`groups.<group>.{peak_step,
peak_at_last_evaluation,loss_halving_step,examples}`, `removal.<k>.<kind>.test_accuracy`,
`train_accuracy_by_mask.<run>.{eval_mode,own_mask,flipped_mask}`, `verdicts`; cells
{mean, std, ci95, n, values} over seeds), leaderboard.json/.html (the phase (i) runs),
runs/<cell>/seed<N>/ (turnover.npz holds the per-evaluation arrays),
cells/groups/record.json and cells/removal_<kind>_k<k>/record.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from experiments import driver, summaries, verdicts
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


def _stat(values: list, bounds: tuple[float, float] | None = None) -> dict:
  """Seed statistics with the per-seed values (None: a seed without a value)."""
  return {**summaries.summarize(values, bounds), "values": list(values)}


def _mask_accuracy(runs: list[dict], key: str) -> dict:
  return _stat([r["memorization"]["turnover"][key]["all"] for r in runs], (0.0, 1.0))


def summarize(config: Config, records: dict) -> dict:
  groups = records["groups"]
  group_summary, mean_curves = {}, {}
  for group, g in groups.items():
    last = [s[-1] for s in g["steps"]]
    group_summary[group] = {"peak_step": _stat(g["peak"]),
                            "peak_at_last_evaluation": sum(p == s for p, s in zip(g["peak"], last)),
                            "loss_halving_step": _stat(g["halving"]),
                            "examples": _stat(g["size"]), "seeds": g["seeds"]}
    e = min(len(s) for s in g["steps"])  # a run that fitted early stops early
    mean_curves[group] = {"step": [int(v) for v in g["steps"][0][:e]],
                          "self_influence": np.mean([s[:e] for s in g["si"]], 0).tolist(),
                          "loss": np.mean([s[:e] for s in g["loss"]], 0).tolist()}
  removal: dict = {}
  for percent, kind, _ in removal_plan(config):
    record = records[removal_key(kind, percent)]
    removal.setdefault(str(percent), {})[kind] = {
        "test_accuracy": _stat(record["test_accuracy"], (0.0, 1.0)), "seeds": record["seeds"],
        "kept_examples": record["kept_examples"]}
  summary = {
      "experiment": "turnover2021_memorization", "paper": "arXiv 2112.08798",
      "dataset": config.dataset, "seeds": config.seeds, "quick": config.quick,
      "tracked_runs": dict(RUNS), "tracked_overrides": list(tracked_overrides(config)),
      "retrain_epochs": config.retrain_epochs,
      "groups": group_summary, "removal": removal,
      "final_test_accuracy": {run: _stat([r["metrics"]["test_accuracy"] for r in records[c]],
                                         (0.0, 1.0)) for run, c in RUNS.items()},
      "final_train_accuracy": {run: _stat([r["metrics"]["train_accuracy"] for r in records[c]],
                                          (0.0, 1.0)) for run, c in RUNS.items()},
      # Training accuracy on the labels trained on, in evaluation mode (no dropout: the
      # whole network) and under each example's own and flipped turn-over masks.
      "train_accuracy_by_mask": {run: {
          "eval_mode": _stat([r["metrics"]["train_accuracy"] for r in records[c]], (0.0, 1.0)),
          "own_mask": _mask_accuracy(records[c], "own_mask_accuracy"),
          "flipped_mask": _mask_accuracy(records[c], "flipped_mask_accuracy")}
          for run, c in RUNS.items()},
      "curves": mean_curves,
  }
  summary["verdicts"] = verdict_records(summary)
  return summary


# --------------------------------------------------------------------------
# Verdicts (computed from the summary's numbers)
# --------------------------------------------------------------------------


def _halving(cell: dict) -> str:
  h = cell["loss_halving_step"]
  return "never" if h["mean"] is None else verdicts.fmt(h, 3)


def verdict_records(summary: dict) -> list[dict]:
  groups, out = summary["groups"], []
  steps = summary["curves"]["real.all"]["step"]
  budget = (f"a fixed {steps[-1]} steps ({len(steps)} evaluations), no stop at a fit"
            if steps else "a fixed budget")
  by_mask = summary["train_accuracy_by_mask"]
  masks = (f"the random-label run reaches only {by_mask['random']['eval_mode']['mean']:.2f} "
           "training accuracy in evaluation mode (the whole network) against "
           f"{by_mask['random']['own_mask']['mean']:.2f} under each example's own mask and "
           f"{by_mask['random']['flipped_mask']['mean']:.2f} under the flipped one: the noise is "
           "memorized under each example's own mask only, so 'optimized' here means its own-mask "
           "loss")
  matched = ("the same model (MLP 1x512, turn-over dropout 0.5), optimizer and " + budget
             + "; speed = the step at which a group's mean own-mask loss first falls below half "
             "its first evaluation's")
  # (i) simultaneously, easy faster: across runs (real vs random labels) and within the
  # 40%-corrupted run (clean vs corrupted examples).
  signs, rows = [], []
  for easy, hard in (("real.all", "random.all"), ("partial.clean", "partial.corrupted")):
    a, b = groups[easy], groups[hard]
    diff, se = verdicts.difference(b["loss_halving_step"], a["loss_halving_step"])
    sign = verdicts.sign(b["loss_halving_step"], a["loss_halving_step"])  # +1: easy halves first
    if b["loss_halving_step"]["mean"] is None and a["loss_halving_step"]["mean"] is not None:
      sign = 1  # the hard group's loss never halves within the budget
    signs.append(sign)
    rows.append(f"{easy} halves at {_halving(a)} vs {hard} {_halving(b)}"
                + ("" if diff is None else f" ({diff:+.0f}" + (f" +- {se:.0f})" if se else ")")))
  curves = summary["curves"]
  falling = [g for g, c in curves.items() if len(c["loss"]) > 1 and c["loss"][1] < c["loss"][0]]
  together = len(falling) == len(curves)
  word = verdicts.word(signs if together else [*signs, -1])
  out.append(verdicts.verdict(
      "(i) easy and difficult examples are optimized simultaneously, easy ones faster",
      paper="arXiv 2112.08798, abstract, finding (i)", matched=matched,
      measured=("; ".join(rows) + f"; {len(falling)} of {len(curves)} groups' mean own-mask "
                "loss falls from the first evaluation to the second"),
      verdict=word, decide=("more seeds or finer evaluations" if word == "inconclusive" else None),
      figure="turnover2021.png",
      departures=(masks, "an MLP 1x512 on digits; the paper: CNNs/ResNets on MNIST and CIFAR")))
  # (i') the self-influence peaks, easy groups before difficult ones.
  alls = [g for g in groups if g.endswith(".all") or g.startswith("partial.c")]
  censored = [g for g in alls if groups[g]["peak_at_last_evaluation"] == len(groups[g]["seeds"])]
  if len(censored) == len(alls):
    word, measured = "inconclusive", (
        f"every group's mean self-influence is still rising at the last evaluation ({budget}): "
        f"peak_step is the last evaluation in every seed for {', '.join(censored)}")
  else:
    word = verdicts.word([verdicts.sign(groups[f"{run}.difficult"]["peak_step"],
                                        groups[f"{run}.easy"]["peak_step"])  # easy peak first
                          for run in ("real", "partial", "random")])
    measured = "; ".join(f"{run}: easy peaks at {verdicts.fmt(groups[f'{run}.easy']['peak_step'])}"
                         f", difficult at {verdicts.fmt(groups[f'{run}.difficult']['peak_step'])}"
                         for run in ("real", "partial", "random"))
  out.append(verdicts.verdict(
      "(i') read by timing: the self-influence of easy examples peaks before that of difficult "
      "ones", paper="arXiv 2112.08798, finding (i) on its self-influence curves over training",
      matched=matched,
      measured=measured, verdict=word,
      decide=("a budget long enough for the self-influence to peak (a 100-epoch probe of "
              "2026-12-02, not committed, still rose at its end)" if word == "inconclusive"
              else None), figure="turnover2021.png", departures=(masks,)))
  # (ii) removing the most self-influential ("difficult") clean examples costs the most.
  removal = summary["removal"]
  signs, rows = [], []
  for k, kinds in removal.items():
    if k == "0":
      continue
    signs += [verdicts.sign(kinds[other]["test_accuracy"], kinds["difficult"]["test_accuracy"])
              for other in ("easy", "random")]  # +1: removing the difficult ones costs more
    rows.append(f"k = {k}%: difficult {kinds['difficult']['test_accuracy']['mean']:.3f}, easy "
                f"{kinds['easy']['test_accuracy']['mean']:.3f}, random "
                f"{kinds['random']['test_accuracy']['mean']:.3f}")
  word = verdicts.word(signs)
  out.append(verdicts.verdict(
      "(ii) for real data, a correct difficult example is more informative than an easy one",
      paper="arXiv 2112.08798, abstract, finding (ii)",
      matched=(f"as many examples removed (k% of the clean training set), the same retraining "
               f"from scratch ({summary['retrain_epochs']} epochs, plain model, evaluated at the "
               "end), the same seeds; difficult = highest final self-influence of the seed's own "
               "clean run"),
      measured=(f"clean test accuracy with the full set "
                f"{removal['0']['none']['test_accuracy']['mean']:.3f}; " + "; ".join(rows)
                + f" ({sum(x == 1 for x in signs)} of {len(signs)} difficult-vs-easy/random "
                "comparisons resolved lower beyond 2 se)"),
      verdict=word, decide=("more seeds" if word == "inconclusive" else None),
      figure="turnover2021.png",
      departures=("retraining for a fixed 10 epochs; the paper's retraining budget is its "
                  "own",)))
  return out


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
  for run, by in summary["train_accuracy_by_mask"].items():
    lines.append(f"{run:8s} training accuracy: eval mode {by['eval_mode']['mean']:.3f}, own mask "
                 f"{by['own_mask']['mean']:.3f}, flipped mask {by['flipped_mask']['mean']:.3f}")
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
