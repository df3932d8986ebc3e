"""Versioned JSON Schemas for result.json, leaderboard.json and estimator summaries (package data).

Files are named ``{kind}.v{version}.schema.json``. `validate` picks the schema
by the document's own ``schema_version`` and raises `SchemaError` with one
line naming the offending field, e.g.
``run.status: 'weird' is not one of ['completed', ...]``.

Versioning: a new OPTIONAL field (e.g. metrics.steps_to_fit_censored, a
leaderboard entry's fit_time) is added to the current version's schema, since
every file written before it still validates; readers must treat it as absent
in older files (leaderboard.fit_observation falls back to run.status). Removing
or renaming a field, making one required, or changing what a value means needs
a new ``{kind}.v{N+1}.schema.json`` (and the old one kept, so old files still
read). tests/test_censored_fit.py checks that a result without the new fields
validates.

An estimator-benchmark summary (experiments/memorization_estimators.py's
summary.json) is validated against the version its reader declares
(`validate(doc, "estimator_summary", version=2)`): version 1 summaries carry no
schema_version, version 2 ones carry 2 (two datasets, the fit regime).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

KINDS = ("result", "leaderboard", "estimator_summary")


class SchemaError(ValueError):
  """A document that does not match its schema; the message is one line."""


@functools.lru_cache(maxsize=None)
def load(kind: str, version: int) -> dict[str, Any]:
  """The schema of `kind` at `version`; SchemaError when this package lacks it."""
  if kind not in KINDS:
    raise ValueError(f"unknown schema kind {kind!r}")
  resource = resources.files(__package__).joinpath(f"{kind}.v{version}.schema.json")
  if not resource.is_file():
    raise SchemaError(f"unknown {kind} schema_version {version!r} "
                      f"(this memobench reads {', '.join(map(str, versions(kind)))})")
  return json.loads(resource.read_text())


@functools.lru_cache(maxsize=None)
def versions(kind: str) -> tuple[int, ...]:
  prefix = f"{kind}.v"
  found = []
  for entry in resources.files(__package__).iterdir():
    name = entry.name
    if name.startswith(prefix) and name.endswith(".schema.json"):
      found.append(int(name[len(prefix):-len(".schema.json")]))
  return tuple(sorted(found))


@functools.lru_cache(maxsize=None)
def _validator(kind: str, version: int) -> jsonschema.protocols.Validator:
  schema = load(kind, version)
  cls = jsonschema.validators.validator_for(schema)
  cls.check_schema(schema)
  return cls(schema)


def _where(error: jsonschema.ValidationError) -> str:
  path = ".".join(str(p) for p in error.absolute_path)
  return path or "(top level)"


def validate(doc: Any, kind: str, version: int | None = None) -> None:
  """Raises SchemaError (one line) unless `doc` matches the `kind` schema of its version.

  version: for documents that carry no schema_version (estimator summaries).
  """
  if not isinstance(doc, dict):
    raise SchemaError(f"not a {kind} document: expected a JSON object, got "
                      f"{type(doc).__name__}")
  if version is None:
    version = doc.get("schema_version")
  if not isinstance(version, int) or isinstance(version, bool):
    raise SchemaError(f"not a memobench {kind}: no integer schema_version")
  validator = _validator(kind, version)
  error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
  if error is not None:
    message = " ".join(error.message.split())
    if len(message) > 200:
      message = message[:197] + "..."
    raise SchemaError(f"{_where(error)}: {message}")
