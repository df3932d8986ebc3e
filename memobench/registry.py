"""One small registry for every extension point: a named, explicit table of entries.

Each package keeps its table in one place and builds it from imports of its
members (`models/__init__.py` imports mlp, alexnet, ...; members never import
their table), so what is registered never depends on what was imported first
(init2winit's `model_lib/models.py` is the model). An entry carries its own
metadata and, where it has any, its own spec checks.

  MODELS = Registry("model", "model.name", {"mlp1x512": ModelEntry(...), ...})
  MODELS.get("mlp1x512")      # the entry; unknown names raise one SpecError line
                              # with close matches and the known names
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, Mapping, TypeVar

from memobench.specs import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
  """An immutable name -> entry table of one kind of component."""

  def __init__(self, kind: str, field: str, entries: Mapping[str, T]):
    self.kind = kind    # what an entry is, for messages: "model"
    self.field = field  # the spec field that names one: "model.name"
    self._entries = dict(entries)

  def get(self, name: str) -> T:
    if name not in self._entries:
      raise SpecError(self.unknown_message(name))
    return self._entries[name]

  def unknown_message(self, name: str) -> str:
    close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (f"{self.field}: unknown {self.kind} {name!r}{hint}; "
            f"known: {', '.join(self.names())}")

  def names(self) -> list[str]:
    return sorted(self._entries)

  def items(self) -> Iterator[tuple[str, T]]:
    return iter(self._entries.items())

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __len__(self) -> int:
    return len(self._entries)
