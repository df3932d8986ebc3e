"""Badger 2022: memorization ease vs input-noise fraction and vs training-set size.

"Why deep learning generalizes" (Badger, arXiv 2211.09639): inputs mixed with
noise, x*f + noise*(1-f), become harder to generalize from and must be
memorized instead; and the more examples there are, the harder memorizing all
of them gets. Memorization ease is measured as epochs until training accuracy
reaches the spec's fit_threshold (0.99; fewer = easier), next to clean test
accuracy.

Sweeps:
  (a) signal fraction f in {0.10, 0.25, 0.50, 0.75, 0.90, 1.0}: the catalogue's
      `noise{F}` corruptions (training inputs only; test inputs stay clean) and
      `clean` for f = 1;
  (b) training-set size n (dataset.train_size: the first n examples of the
      fixed split) for true and random labels.

Command:

    python experiments/badger2022_noise_and_size.py           # mnist5k, MLP 1x512, 1 seed
    python experiments/badger2022_noise_and_size.py --seeds=3 --sizes=500,1000,2000,4000
    python experiments/badger2022_noise_and_size.py --quick   # smoke test: digits, few steps

Expected runtime: ~2 min for the default (6 noise runs, 7 size runs),
measured on the shared 2-core machine.

Expected result (the paper's, qualitatively): noisier inputs generalize
worse; random labels take more epochs as n grows, while true labels fit in
fewer epochs with more data and generalize better. Measured (mnist5k, MLP
1x512, 1 seed; 2 min on the shared 2-core machine at load ~9):

  signal f        0.10  0.25  0.50  0.75  0.90  1.00
  epochs to fit   6     6     6     9     9     7
  test accuracy   0.760 0.840 0.901 0.929 0.937 0.940

  n                          500    1000   2000   4000
  clean: epochs to fit       15     12     9      7
  clean: test accuracy       0.865  0.898  0.922  0.940
  random: epochs to fit      never  40     45     50

Generalization falls with noise and grows with n, and random labels take
longer to fit as n grows, as expected. Where it differs: heavy noise makes the
training set *easier* to fit (6 epochs at f <= 0.5 against 7 clean): mostly
noise, 4,000 inputs in 784 dimensions are nearly orthogonal, as with
zhang2017_fig1's Gaussian inputs. Random labels on n=500 never fit: the
learning rate decays x0.95 per *epoch*, so a 3-step epoch leaves too few
steps at a useful rate (an artifact of Zhang's per-epoch schedule on tiny
sets). Size points are --set overrides (non-standard runs; the leaderboard
lists them unranked), except the full training set.

Outputs in the workdir: noise_and_size.png, summary.json,
leaderboard.json/.html, runs/<cell>/seed<N>/.
"""

from __future__ import annotations

import sys

import common

SIGNAL = {0.10: "noise10", 0.25: "noise25", 0.50: "noise50", 0.75: "noise75",
          0.90: "noise90", 1.0: "clean"}
QUICK_SET = common.QUICK_SET


def main() -> None:
  p = common.parser(__doc__, "badger2022_noise_and_size", "mnist5k", seeds=1)
  p.add_argument("--sizes", default="500,1000,2000",
                 help="comma-separated training-set sizes besides the full set")
  args = common.finish_args(p.parse_args())
  try:
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
  except ValueError:
    common.fail(f"--sizes {args.sizes!r}: expected comma-separated integers", 2)
  if any(n <= 0 for n in sizes):
    common.fail(f"--sizes {args.sizes!r}: sizes must be positive", 2)
  signal = {f: c for f, c in SIGNAL.items() if not args.quick or f in (0.5, 1.0)}
  if args.quick:
    sizes = sizes[:1]
  quick = QUICK_SET if args.quick else ()

  cells = []
  for f, corruption in signal.items():
    spec, _ = common.get_spec(f"{args.dataset}_{corruption}")
    cells.append(common.Cell(f"signal_{corruption}", spec, quick))
  size_cells = {}
  for labels in ("clean", "randlabels"):
    spec, _ = common.get_spec(f"{args.dataset}_{labels}")
    batch = spec.budget.batch_size
    for n in [*sizes, None]:
      if n is None:
        overrides = quick
      else:
        # Evaluate once per epoch of the subset, as the full-size specs do.
        overrides = (f"dataset.train_size={n}",
                     f"budget.eval_every_steps={max(1, n // batch)}", *quick)
      key = f"size_{labels}_{'full' if n is None else n}"
      size_cells[(labels, n)] = key
      if labels == "clean" and n is None:
        continue  # the same run as signal_clean
      cells.append(common.Cell(key, spec, tuple(overrides)))
  grouped = common.run_cells(cells, args)
  if ("clean", None) in size_cells and size_cells[("clean", None)] not in grouped:
    grouped[size_cells[("clean", None)]] = grouped["signal_clean"]

  noise_rows = [{"signal_fraction": f, "corruption": c,
                 "epochs_to_fit": common.stat(grouped[f"signal_{c}"], "epochs_to_fit"),
                 "train_accuracy": common.stat(grouped[f"signal_{c}"], "train_accuracy"),
                 "test_accuracy": common.stat(grouped[f"signal_{c}"], "test_accuracy")}
                for f, c in signal.items()]
  size_rows = []
  for (labels, n), key in size_cells.items():
    runs = grouped[key]
    size_rows.append({"labels": labels, "train_size": n or _full_size(runs, args.data_dir),
                      "epochs_to_fit": common.stat(runs, "epochs_to_fit"),
                      "steps_to_fit": common.stat(runs, "steps_to_fit"),
                      "test_accuracy": common.stat(runs, "test_accuracy")})
  summary = {"experiment": "badger2022_noise_and_size", "dataset": args.dataset,
             "seeds": args.seeds, "quick": args.quick, "noise": noise_rows, "size": size_rows}

  fig, axes = common.plt.subplots(1, 3, figsize=(13, 3.6))
  fs = [r["signal_fraction"] for r in noise_rows]
  common.errorbar(axes[0], fs, [r["epochs_to_fit"] for r in noise_rows], color="C3")
  axes[0].set(xlabel="signal fraction f (x*f + noise*(1-f))", ylabel="epochs to fit",
              title="(a) memorization ease vs input noise")
  common.errorbar(axes[1], fs, [r["test_accuracy"] for r in noise_rows], color="C0")
  axes[1].set(xlabel="signal fraction f", ylabel="clean test accuracy", ylim=(0, 1),
              title="(a') generalization vs input noise")
  for labels, color in (("clean", "C0"), ("randlabels", "C3")):
    sub = sorted((r for r in size_rows if r["labels"] == labels), key=lambda r: r["train_size"])
    common.errorbar(axes[2], [r["train_size"] for r in sub], [r["epochs_to_fit"] for r in sub],
                    color=color, label=labels)
  axes[2].set(xscale="log", xlabel="training-set size n", ylabel="epochs to fit",
              title="(b) memorization ease vs dataset size")
  if axes[2].lines:
    axes[2].legend(fontsize=7)
  for ax in axes[[0, 2]]:
    ax.set_ylim(bottom=0)
    if not ax.lines:
      ax.text(0.5, 0.5, "no cell fit within its budget", ha="center", transform=ax.transAxes)
  fig.suptitle(f"Badger 2022 on {args.dataset} ({args.seeds} seed(s))"
               + (" [--quick]" if args.quick else ""))
  fig.tight_layout()
  common.savefig(fig, args, "noise_and_size.png")
  common.export(args, summary)
  for r in noise_rows:
    print(f"f={r['signal_fraction']:.2f}  epochs_to_fit {r['epochs_to_fit']['mean']}  "
          f"test acc {r['test_accuracy']['mean']}")
  for r in size_rows:
    print(f"{r['labels']:10s} n={r['train_size']}  epochs_to_fit {r['epochs_to_fit']['mean']}  "
          f"test acc {r['test_accuracy']['mean']}")


def _full_size(runs, data_dir) -> int:
  """The full training-set size of the runs' dataset (loaded once; offline sets take ~1 s)."""
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets
  spec = specs.from_dict(runs[0]["spec"]["resolved"])
  return int(datasets.load(spec.dataset, data_dir).x_train.shape[0])


if __name__ == "__main__":
  sys.exit(main())
