"""The report's last table: the performance issue's targets, each with its measured ratio.

Built from the raw measurements of the sections that ran (loop, torch,
models, ensemble, estimator); a target whose section did not run is "not
measured". Not a section of its own: it always closes the report.
"""

from __future__ import annotations

from typing import Any

from memobench.bench.common import Table
from memobench.bench.step_timing import MLP_HIDDEN


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
  for r in out.get("torch", []):
    row(f"{r['model']}: >= 2x PyTorch images/s (batch {r['batch']})", r["ratio"],
        "{:.2f}x", lambda v: v >= 2.0)
  # m["mfu"] is set by the models table, which is built before this one.
  mlps = [m for m in out.get("models", []) if m["model"] in MLP_HIDDEN and m["batch"] >= 128]
  for m in mlps:
    row(f"{m['model']} batch {m['batch']}: >= 60% of f32 matmul peak", m["mfu"],
        "{:.0%}", lambda v: v >= 0.6)
  if not mlps:
    row("MLP training >= 60% of f32 matmul peak at batch >= 128", None, "", None)
  ens = [e for e in out.get("ensemble", []) if e["dataset"] == "mnist1d" and e["k"] == 32]
  row("32 vmapped mlp1x512 on mnist1d >= 8x 32 sequential memobench.training.loop.train runs",
      ens[0]["ratio_vs_train_runs"] if ens else None, "{:.1f}x", lambda v: v >= 8.0)
  row("32 vmapped mlp1x512 on mnist1d >= 8x 32 runs of the compiled single-model program",
      ens[0]["ratio"] if ens else None, "{:.2f}x", lambda v: v >= 8.0)
  est = out.get("estimator")
  row("Feldman-Zhang estimator, 200 models on mnist5k, 10 epochs: < 300 s",
      est and est["wall_s"], "{:.0f} s", lambda v: v < 300)
  return t
