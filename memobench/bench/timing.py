"""How the harness times a call: the fastest of a few repeats.

As Python's `timeit` recommends: slower repeats measure interference from other
processes, not the code. Every call timed here must block until its result is
ready (jax.block_until_ready), or the clock stops at dispatch.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def best_time(fn: Callable[[], Any], repeats: int, budget_s: float) -> float:
  """Seconds of the fastest of up to `repeats` calls of `fn` (which must block)."""
  times, start = [], time.perf_counter()
  for _ in range(max(repeats, 1)):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
    if time.perf_counter() - start > budget_s:
      break
  return min(times)


def timed_after_warmup(fn: Callable[[], Any], repeats: int, budget_s: float) -> float:
  """best_time after one warm-up call (first-run allocations), which counts when it is slow.

  A call longer than half the budget is its own measurement: slow programs
  (convolutions in a CPU loop body) are not worth a second run to time.
  """
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  if first > budget_s / 2:
    return first
  return best_time(fn, repeats, budget_s)
