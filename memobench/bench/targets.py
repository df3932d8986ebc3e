"""The report's last table: the performance issue's targets, each with its measured ratio.

Built from the raw measurements of the sections that ran (loop, torch,
models, ensemble, estimator); a target whose section did not run is "not
measured". Not a section of its own: it always closes the report.
"""

from __future__ import annotations

from typing import Any

from memobench.bench.common import Table
from memobench.bench.step_timing import MLP_HIDDEN
from memobench.training import programs


def table(out: dict[str, Any]) -> Table:
  """The issue's targets, each with its measured ratio (met / missed / not measured)."""
  t = Table("Targets (ratios measured in this run)", ["target", "measured", "status"])

  def row(name, value, fmt, ok):
    if value is None:
      t.add(name, "-", "not measured")
    else:
      t.add(name, fmt.format(value), "met" if ok(value) else "missed")

  loop = out.get("loop")
  row("memobench loop within 10% of hand-written (training images/s ratio >= 0.90)",
      loop and loop["ratio_train"], "{:.2f}x", lambda v: v >= 0.9)
  # Issue 26: the CPU step past PyTorch, and near the step-at-peak limit.
  for r in out.get("torch", []):
    row(f"{r['model']}: >= 1.2x PyTorch eager images/s (batch {r['batch']})", r["ratio"],
        "{:.2f}x", lambda v: v >= 1.2)
  # m["mfu"] is set by the models table, which is built before this one: the step's
  # FLOPs at the measured f32 peak over its time, i.e. its share of the step-at-peak limit.
  mlps = [m for m in out.get("models", []) if m["model"] in MLP_HIDDEN and m["batch"] == 128]
  for m in mlps:
    row(f"{m['model']} batch 128: >= 80% of the step-at-peak limit (MFU)", m["mfu"],
        "{:.0%}", lambda v: v >= 0.8)
  if not mlps:
    row("MLP batch 128: >= 80% of the step-at-peak limit (MFU)", None, "", None)
  # Populations that pay off: K models in one program never lose to K launches.
  # The target is on the group program as train_group runs it by default on this
  # backend (programs.default_members_per_slice: slices of one on CPU, one vmap on
  # accelerators); the other layout is shown beside it.
  ens = out.get("ensemble", [])
  sliced_default = programs.default_members_per_slice() == 1
  for dataset in sorted({e["dataset"] for e in ens}):
    rows = [e for e in ens if e["dataset"] == dataset and e["k"] > 1]
    one_vmap = min((e["ratio"] for e in rows), default=None)
    sliced = [e["sliced_ratio"] for e in rows if e.get("sliced_ratio") is not None]
    sliced = min(sliced) if sliced else None
    default, other = ("models in slices of 1", sliced), ("all models in one vmap", one_vmap)
    if not sliced_default:
      default, other = other, default
    target = f"{dataset}: K mlp1x512 in one program >= 1.0x K single-model programs at every K"
    row(f"{target}, {default[0]} (the default here)", default[1], "{:.2f}x (worst K)",
        lambda v: v >= 1.0)
    if other[1] is not None:
      row(f"{target}, {other[0]}", other[1], "{:.2f}x (worst K)", lambda v: v >= 1.0)
  ens32 = [e for e in ens if e["dataset"] == "mnist1d" and e["k"] == 32]
  row("32 vmapped mlp1x512 on mnist1d >= 8x 32 sequential memobench.training.loop.train runs",
      ens32[0]["ratio_vs_train_runs"] if ens32 else None, "{:.1f}x", lambda v: v >= 8.0)
  est = out.get("estimator")
  row("Feldman-Zhang estimator, 200 models on mnist5k, 10 epochs: < 300 s",
      est and est["wall_s"], "{:.0f} s", lambda v: v < 300)
  return t
