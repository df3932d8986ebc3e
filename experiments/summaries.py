"""Statistics the experiments' summarize functions share (over a spec cell's runs)."""

from __future__ import annotations

from typing import Any

from memobench import leaderboard

# --quick spec cells: a few steps, and the optional per-run analyses off (they cost
# more than the training at this size). Their results are non-standard, never ranked.
QUICK_SET = ("budget.max_steps=20", "budget.eval_every_steps=10",
             "analysis.effective_rank=false", "analysis.dynamics=false")

# Mean, sample std, Student-t 95% CI (clipped to `bounds`) and n of the values not None.
summarize = leaderboard.summarize


def stat(runs: list[dict[str, Any]], metric: str, transform=lambda v: v) -> dict[str, Any]:
  """`summarize` of one result metric over a spec cell's runs."""
  values = [r["metrics"].get(metric) for r in runs]
  return leaderboard.summarize(None if v is None else transform(v) for v in values)


def curves(runs: list[dict[str, Any]], *columns: str) -> list[dict[str, list] | None]:
  """Per run of a spec cell, the named columns of its learning curve (None if it has none)."""
  out = []
  for r in runs:
    c = r.get("curve")
    out.append(None if c is None else {k: c[k] for k in ("step", *columns) if k in c})
  return out
