"""What every section of the harness shares: its declaration, its run context, its tables.

A section module (peak.py, mfu.py, ...) declares one `Section`: its name (the
`--sections` value), a one-line title, its own config for `--quick` and for a
full run, and the function that measures and returns its table. The harness
(harness.py) holds the ordered table of sections and runs them one after the
other in one process, handing each a `Context`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Callable, Union


class BenchError(ValueError):
  """A bad harness request (unknown model, section or fusion mode); the message is one line."""


def log(message: str) -> None:
  """A progress line on stderr (stdout is the report)."""
  print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Report: markdown tables
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
  title: str
  header: list[str]
  rows: list[list[str]] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)

  def add(self, *cells: Any) -> None:
    if len(cells) != len(self.header):
      raise ValueError(f"{self.title}: row of {len(cells)} cells for {len(self.header)} columns")
    self.rows.append([cell(c) for c in cells])

  def markdown(self) -> str:
    lines = [f"### {self.title}", ""]
    if self.rows:
      lines.append("| " + " | ".join(self.header) + " |")
      lines.append("|" + "|".join("---" for _ in self.header) + "|")
      lines += ["| " + " | ".join(r) + " |" for r in self.rows]
      lines.append("")
    for note in self.notes:  # one paragraph each
      lines += [note, ""]
    return "\n".join(lines)


def cell(value: Any) -> str:
  """A table cell: floats to three significant figures or so, None and NaN as '-'."""
  if value is None:
    return "-"
  if isinstance(value, float):
    if not math.isfinite(value):
      return "-"
    if abs(value) >= 100:
      return f"{value:,.0f}"
    if abs(value) >= 10:
      return f"{value:.1f}"
    return f"{value:.2f}"
  return str(value).replace("|", "\\|")


# A section returns its table (or tables), or a function that builds them once every
# section has run: the f32 peak (the MFU denominator) is sampled again by later sections.
Report = Union[Table, list[Table], Callable[[], Union[Table, list[Table]]]]


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
  """What the harness hands every section of one run."""
  quick: bool
  models: list[str]            # the requested models that memobench.models registers
  skipped_models: list[str]    # requested but not registered (yet)
  environment: dict[str, Any]  # harness.environment(): versions, CPU count, devices
  # The raw measurements (--json). Sections add their keys; later sections and
  # the targets table read earlier ones (the peak, the models' images/s).
  out: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Section:
  name: str                    # the --sections value
  title: str                   # what it measures, in a line (--help)
  quick: Any                   # the section's config under --quick (smoke sizes)
  full: Any                    # ... and of a full run (what docs/BENCHMARKS.md reports)
  run: Callable[[Context, Any], Report]

  def config(self, quick: bool) -> Any:
    return self.quick if quick else self.full
