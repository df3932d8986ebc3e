"""An experiment's configuration: a frozen dataclass of typed knobs, set from the command line.

Every field of an experiment's config is a knob. `knob(default, help, lo=, hi=)`
declares one with its bounds; `with_overrides(config, ["epochs=30", ...])` sets
knobs by name from text, parsed as the field's declared type, and checks every
bound, so a bad value is one line (`KnobError`) before anything runs. The same
parser serves `--set knob=value` and the per-knob flags (`--epochs=30`), as
`memobench.specs.with_overrides` does for a spec's `--set`.

Types: bool, int, float (finite: nan and inf are refused), str, tuples of
those (comma-separated, at least one value), and `X | None` ("none").
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


class KnobError(ValueError):
  """A knob set to a value it cannot take (one line, for the command line)."""


def knob(default: Any, help: str = "", *, lo: float | None = None,  # pylint: disable=redefined-builtin
         hi: float | None = None, choices: tuple[Any, ...] | None = None) -> Any:
  """A config field with its help text and bounds (lo <= value <= hi, or one of `choices`);
  for a tuple the bounds apply to each element."""
  return dataclasses.field(default=default, metadata={
      "help": help, "lo": lo, "hi": hi, "choices": choices})


def fields(config_type: type) -> dict[str, tuple[dataclasses.Field, Any]]:
  """{name: (field, type annotation)} of a config dataclass."""
  hints = typing.get_type_hints(config_type)
  return {f.name: (f, hints[f.name]) for f in dataclasses.fields(config_type)}


def _scalar(raw: str, annotation, name: str):
  from memobench import specs  # pylint: disable=import-outside-toplevel
  try:
    value = specs.parse_scalar(raw, annotation)
  except (ValueError, OverflowError):
    raise KnobError(f"{name}={raw}: expected {type_name(annotation)}") from None
  if isinstance(value, float) and not math.isfinite(value):
    raise KnobError(f"{name}={raw}: expected a finite number")
  return value


def type_name(annotation) -> str:
  origin = typing.get_origin(annotation)
  if origin is tuple:
    element = typing.get_args(annotation)[0]
    plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
    return f"comma-separated {plural.get(element, getattr(element, '__name__', element))}"
  if origin in (typing.Union, types.UnionType):
    inner = [a for a in typing.get_args(annotation) if a is not type(None)]
    return f"{type_name(inner[0])} or none"
  return {bool: "true or false", int: "an integer", float: "a number",
          str: "a string"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def parse(raw: str, annotation, name: str) -> Any:
  """`raw` as a value of the declared type; KnobError on mismatch."""
  raw = raw.strip()
  optional = typing.get_origin(annotation) in (typing.Union, types.UnionType)
  inner = ([a for a in typing.get_args(annotation) if a is not type(None)][0] if optional
           else annotation)
  if typing.get_origin(inner) is tuple:
    if optional and raw.lower() in ("none", "null"):
      return None
    (element, *rest) = typing.get_args(inner)
    if rest not in ([], [Ellipsis]):
      raise TypeError(f"knob {name}: only tuple[X, ...] is supported, got {annotation}")
    parts = [p.strip() for p in raw.split(",")]
    if not raw or any(not p for p in parts):
      raise KnobError(f"{name}={raw}: expected {type_name(inner)}, at least one")
    return tuple(_scalar(p, element, name) for p in parts)
  return _scalar(raw, annotation, name)


def check(config: Any) -> None:
  """Every knob within its declared bounds (KnobError otherwise)."""
  for name, (f, _) in fields(type(config)).items():
    value = getattr(config, name)
    values = value if isinstance(value, tuple) else (value,)
    lo, hi, choices = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("choices")
    for v in values:
      if v is None or isinstance(v, (str, bool)) and choices is None:
        continue
      if choices is not None and v not in choices:
        raise KnobError(f"{name}={_show(value)}: expected one of "
                        f"{', '.join(map(str, choices))}")
      if isinstance(v, float) and not math.isfinite(v):
        raise KnobError(f"{name}={_show(value)}: expected a finite number")
      if lo is not None and v < lo or hi is not None and v > hi:
        bounds = (f">= {_bound(lo)}" if hi is None else f"<= {_bound(hi)}" if lo is None
                  else f"in [{_bound(lo)}, {_bound(hi)}]")
        raise KnobError(f"{name}={_show(value)}: expected {'each value ' if isinstance(value, tuple) else ''}"
                        f"{bounds}")


def _bound(x) -> str:
  """A bound as the user would type it: integers whole (2**32 - 1, not 4.29497e+09)."""
  return str(x) if isinstance(x, int) else f"{x:g}"


def _show(value) -> str:
  if isinstance(value, tuple):
    return ",".join(map(str, value)) if value else "(none)"
  return str(value)


def with_overrides(config: Any, assignments: list[str] | tuple[str, ...]) -> Any:
  """`config` with `name=value` assignments applied (typed) and every bound checked."""
  known = fields(type(config))
  changes: dict[str, Any] = {}
  from memobench import specs  # pylint: disable=import-outside-toplevel
  for assignment in assignments:
    try:
      name, raw = specs.split_assignment(assignment, list(known), "knob", "epochs=30",
                                         f"knob (knobs: {', '.join(known)})")
    except ValueError as e:
      raise KnobError(str(e)) from None
    changes[name] = parse(raw, known[name][1], name)
  out = dataclasses.replace(config, **changes)
  check(out)
  return out


def as_text(value: Any) -> str:
  """A knob's value as the command line writes it."""
  return "none" if value is None else _show(value)


def canonical(obj: Any) -> Any:
  """A JSON-able form of a config (dataclasses, tuples, specs) for hashing and records."""
  from memobench import specs  # pylint: disable=import-outside-toplevel
  if isinstance(obj, specs.Spec):
    return {"spec_hash": specs.spec_hash(obj), "seed": obj.seed}
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    return {f.name: canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
  if isinstance(obj, dict):
    return {str(k): canonical(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [canonical(v) for v in obj]
  if isinstance(obj, float) and not math.isfinite(obj):
    return repr(obj)
  if obj is None or isinstance(obj, (bool, int, float, str)):
    return obj
  raise TypeError(f"cannot hash a config value of type {type(obj).__name__}: {obj!r}")
