"""Competition ranking of scores, where a censored fit time is a lower bound, not a value.

Shared by the leaderboard's catalogue view (memobench/leaderboard.py) and its
tracks (memobench/tracks.py). A score is a stat ({mean, ...}: ranked by its
mean) or a right-censored fit time ({median, median_is_lower_bound, ...}:
ranked by its median, lower is better). A median that is a lower bound says
only "at least this": it ranks after every exact median when it is at least as
large as all of them (then every exact entry is known to be faster), and those
lower bounds share one rank (their order is unknown). A lower bound below some
exact median is not ranked at all: it might belong anywhere above its bound
(a 20-step run that never fit, >= 0.65 epochs, is not faster than an exact 59).
Ties share a rank (competition ranking: 1, 2, 2, 4).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

Item = TypeVar("Item")
EXACT, LOWER_BOUND = 0, 1


def score_key(score: dict[str, Any] | None, higher_is_better: bool) -> tuple | None:
  """(EXACT, value to sort ascending) or (LOWER_BOUND, bound); None: nothing to rank by."""
  if not score:
    return None
  if "median" in score:  # a censored fit time: lower is better
    if score["median"] is None:
      return None
    return (LOWER_BOUND if score["median_is_lower_bound"] else EXACT, score["median"])
  if score.get("mean") is None:
    return None
  return (EXACT, -score["mean"] if higher_is_better else score["mean"])


def rank(keyed: list[tuple[tuple, Item]], tiebreak: Callable[[Item], Any]
         ) -> tuple[list[tuple[int, Item]], list[tuple[Item, str]]]:
  """(rank, item) in rank order, and (item, reason) of the items that cannot be ranked.

  keyed: (score_key(...), item) pairs, keys not None; tiebreak orders items of
  equal key (it does not split their rank).
  """
  slowest = max((k[1] for k, _ in keyed if k[0] == EXACT), default=None)
  sortable, unranked = [], []
  for key, item in keyed:
    if key[0] == LOWER_BOUND:
      if slowest is not None and key[1] < slowest:
        unranked.append((item, f"its median is a lower bound (>= {key[1]:g}: seeds that never "
                               f"fit count at their budget) below another entry's exact median "
                               f"{slowest:g}, so its place is unknown"))
        continue
      key = (LOWER_BOUND, 0)  # after every exact median; lower bounds' order is unknown
    sortable.append((key, item))
  sortable.sort(key=lambda ki: (ki[0], tiebreak(ki[1])))
  ranked, previous, position = [], None, 0
  for i, (key, item) in enumerate(sortable):
    if key != previous:
      position, previous = i + 1, key
    ranked.append((position, item))
  return ranked, unranked
