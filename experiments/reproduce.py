"""Does a rerun reproduce a committed summary? A recursive comparison, timings excepted.

    python -m experiments.reproduce experiments/results/zhang2017_fig1_mnist5k/summary.json \
        /tmp/memobench/experiments/zhang2017_fig1/mnist5k/summary.json

Every value of the committed summary must be present in the new one and equal
(numbers to `--rtol`, 1e-6 relative by default); wall-clock fields (names
ending in `_s`, `seconds`, `wall`) are skipped. Fields only the new summary has
are listed, not failed: a port may add what its figures need. Exit 0 when the
committed values are reproduced, 1 otherwise (each difference on its own line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Iterator

TIMING = ("seconds", "wall", "cpu_seconds", "elapsed")


def is_timing(key: str) -> bool:
  return key.endswith("_s") or key in TIMING or key.endswith("_seconds")


def differences(old: Any, new: Any, rtol: float = 1e-6, path: str = "") -> Iterator[str]:
  """Each place where `new` does not reproduce `old` (timing fields skipped)."""
  if isinstance(old, dict) and isinstance(new, dict):
    for k, v in old.items():
      if is_timing(str(k)):
        continue
      if k not in new:
        yield f"{path}/{k}: missing in the new summary"
      else:
        yield from differences(v, new[k], rtol, f"{path}/{k}")
    return
  if isinstance(old, list) and isinstance(new, list):
    if len(old) != len(new):
      yield f"{path}: {len(old)} items, now {len(new)}"
      return
    for i, (a, b) in enumerate(zip(old, new)):
      yield from differences(a, b, rtol, f"{path}[{i}]")
    return
  numbers = (int, float)
  if (isinstance(old, numbers) and isinstance(new, numbers)
      and not isinstance(old, bool) and not isinstance(new, bool)):
    if old == new or (math.isfinite(old) and math.isfinite(new)
                      and abs(old - new) <= rtol * max(abs(old), abs(new))):
      return
    yield f"{path}: {old!r} -> {new!r}"
    return
  if old != new:
    yield f"{path}: {old!r} -> {new!r}"


def additions(old: Any, new: Any, path: str = "") -> Iterator[str]:
  """Fields the new summary has and the committed one lacks."""
  if isinstance(old, dict) and isinstance(new, dict):
    for k, v in new.items():
      if k not in old:
        yield f"{path}/{k}"
      else:
        yield from additions(old[k], v, f"{path}/{k}")


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("committed")
  p.add_argument("new")
  p.add_argument("--rtol", type=float, default=1e-6)
  args = p.parse_args(argv)
  with open(args.committed) as f:
    old = json.load(f)
  with open(args.new) as f:
    new = json.load(f)
  diffs = list(differences(old, new, args.rtol))
  for d in diffs:
    print(d)
  added = list(additions(old, new))
  if added:
    print(f"fields added ({len(added)}): {', '.join(added[:10])}"
          + (" ..." if len(added) > 10 else ""), file=sys.stderr)
  print(f"{'reproduced' if not diffs else f'{len(diffs)} difference(s)'} "
        f"(rtol {args.rtol:g}, timings skipped)", file=sys.stderr)
  return 0 if not diffs else 1


if __name__ == "__main__":
  sys.exit(main())
