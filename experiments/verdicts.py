"""A reproduction's verdicts, computed from its own summary (experiments/results/REPORT.md reads them).

Each experiment's `summarize` ends with `"verdicts": [verdict(...), ...]`: one per
claim of the paper it tests, with what was matched between the settings
compared, the measured numbers as text formatted from the summary's own values
(never typed by hand), the verdict, and the departures from the paper's
protocol. The verdict word follows from the numbers by a rule the experiment
states in code (so a rerun that moves the numbers moves the verdict):

  agrees        the measured effect has the paper's sign and is resolved (e.g. beyond
                two standard errors, or every seed), under a protocol that matches the
                paper's on the point tested;
  partly        part of the claim holds (one setting of several, or the sign without
                the paper's size);
  inconclusive  this protocol cannot decide it: `decide` says what would;
  disagrees     the effect is resolved and has the other sign, or is absent where the
                protocol matches the paper's.
"""

from __future__ import annotations

from typing import Any

VERDICTS = ("agrees", "partly", "inconclusive", "disagrees")


def verdict(claim: str, *, paper: str, matched: str, measured: str, verdict: str,  # pylint: disable=redefined-outer-name
            departures: tuple[str, ...] | list[str] = (), decide: str | None = None,
            figure: str | None = None) -> dict[str, Any]:
  """One verdict record (a JSON dict) for a summary's "verdicts" list."""
  if verdict not in VERDICTS:
    raise ValueError(f"verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
  if verdict == "inconclusive" and not decide:
    raise ValueError(f"{claim}: an inconclusive verdict says what would decide it (decide=)")
  if not matched:
    raise ValueError(f"{claim}: say what was matched between the settings compared")
  return {"claim": claim, "paper": paper, "matched": matched, "measured": measured,
          "verdict": verdict, "departures": list(departures), "decide": decide,
          "figure": figure}


def beyond(difference: float | None, se: float | None, k: float = 2.0) -> bool:
  """Whether `difference` is resolved: |difference| > k standard errors (se > 0)."""
  return difference is not None and se is not None and abs(difference) > k * se


def difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float | None, float | None]:
  """(mean of a - mean of b, its standard error sqrt(sa^2/na + sb^2/nb)) of two
  leaderboard.summarize cells of independent runs; None where a mean or std is missing."""
  if a.get("mean") is None or b.get("mean") is None:
    return None, None
  d = a["mean"] - b["mean"]
  if a.get("std") is None or b.get("std") is None:
    return d, None
  return d, (a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"]) ** 0.5


def num(x: float, digits: int = 3) -> str:
  """`digits` significant digits, but whole numbers from 100 up (steps, counts) in full."""
  return f"{x:.0f}" if abs(x) >= 100 else f"{x:.{digits}g}"


def fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
  """'mean +- std (n)' of a leaderboard.summarize cell, 'n/a' without a mean."""
  if not stat or stat.get("mean") is None:
    return "n/a"
  std = stat.get("std")
  return (num(stat["mean"], digits) + (f" +- {num(std, 2)}" if std is not None else "")
          + f" (n={stat.get('n')})")


def word(signs: list[int]) -> str:
  """The verdict of several comparisons, each +1 (resolved with the paper's sign), -1 (resolved
  against it) or 0 (not resolved): agrees when every one is +1; partly when some are; disagrees
  when none is and one is -1; inconclusive when none is resolved (or there is none)."""
  if signs and all(x == 1 for x in signs):
    return "agrees"
  if any(x == 1 for x in signs):
    return "partly"
  return "disagrees" if any(x == -1 for x in signs) else "inconclusive"


def constant(value: float) -> dict[str, Any]:
  """A known value (a paper's prediction, zero) as a summarize cell without error, so that
  difference / sign compare a statistic with it: sign(stat, constant(0.5))."""
  return {"mean": value, "std": 0.0, "n": 1}


def sign(a: dict[str, Any], b: dict[str, Any], k: float = 2.0) -> int:
  """+1 / -1: the mean of a is above / below b's beyond k standard errors; 0: not resolved."""
  d, se = difference(a, b)
  return 0 if not beyond(d, se, k) else 1 if d > 0 else -1


def lines(summary: dict[str, Any]) -> list[str]:
  """The printed table's verdict lines (the driver prints them after an experiment's report)."""
  return [f"{v['verdict'].upper():12s} {v['claim']}" for v in summary.get("verdicts", [])]
