"""The two kinds of cell an experiment's grid holds, and where their records live.

A **spec cell** is `seeds` runs of one memobench spec through the runner
(`memobench.sweep.run_jobs`): each seed writes runs/<key>/seed<N>/result.json,
the seeds of the cell train together in one vmapped program where the model is
small, and a run is kept when its result.json has the same spec hash, seed and
overrides. Its record is the list of results, one per seed, each with its
learning curve under "curve" (columns of metrics.jsonl).

A **computed cell** is anything else: `compute(config, ctx)` returns a JSON
record (and may write artifacts, such as trained parameters, into ctx.folder).
It is kept when cells/<key>/record.json holds the same **config hash**: a hash
of the compute function's name, the cell's config (every knob the computation
reads: compute sees nothing else) and the hashes of the cells it `needs`, whose
records and folders it receives in `ctx.inputs`. A changed knob changes the
hash of exactly the cells that read it, and of the cells downstream of them.
A computed cell is written whole or not at all: it computes into a fresh
folder that replaces the old one only when the record is complete.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
from typing import Any, Callable

from experiments import knobs
from memobench import results

RECORD_FILE = "record.json"


@dataclasses.dataclass(frozen=True)
class SpecCell:
  """`seeds` runs of `spec` (seeds spec.seed, spec.seed + 1, ...), with --set `overrides`
  applied and recorded as non-standard (so never ranked on a leaderboard)."""
  key: str
  spec: Any                      # memobench.specs.Spec
  overrides: tuple[str, ...] = ()
  seeds: int = 1

  @property
  def needs(self) -> tuple[str, ...]:
    return ()


@dataclasses.dataclass(frozen=True)
class ComputedCell:
  """A record that `compute(config, ctx)` returns; kept while its config hash holds.

  compute must be a module-level function that reads only `config` (a frozen
  dataclass or a JSON-able dict of every setting it depends on) and
  `ctx.inputs` (the records of the cells named in `needs`, computed first).
  """
  key: str
  compute: Callable[[Any, "Context"], dict[str, Any]]
  config: Any
  needs: tuple[str, ...] = ()


Cell = SpecCell | ComputedCell


@dataclasses.dataclass(frozen=True)
class Input:
  """What a computed cell receives of a cell it needs."""
  key: str
  record: Any                    # a computed cell's record, or a spec cell's results
  folder: str                    # cells/<key> or runs/<key>
  hash: str

  def run_folder(self, seed: int) -> str:
    """A spec cell's run folder for `seed` (result.json, dynamics.npz, checkpoints, ...)."""
    return os.path.join(self.folder, f"seed{seed}")


@dataclasses.dataclass(frozen=True)
class Context:
  """A computed cell's surroundings: its artifact folder, inputs and the run options."""
  key: str
  folder: str                    # empty, private to this computation; kept with the record
  inputs: dict[str, Input]
  data_dir: str | None = None
  vmap: str = "auto"             # --vmap_seeds: auto | true | false
  log: Callable[[str], None] = lambda msg: None


def _digest(obj: Any) -> str:
  text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def module_name(fn: Callable) -> str:
  """The importable name of `fn`'s module, also when it runs as a script: a compute function
  of `python experiments/x.py` (module __main__) is experiments.x's, as imported in a test
  or by `python -m experiments.x`, so that each finds the other's records."""
  import sys  # pylint: disable=import-outside-toplevel
  if fn.__module__ != "__main__":
    return fn.__module__
  main = sys.modules["__main__"]
  spec = getattr(main, "__spec__", None)
  if spec is not None and spec.name:  # python -m package.module
    return spec.name
  root = os.path.dirname(os.path.dirname(os.path.abspath(knobs.__file__)))
  path = os.path.relpath(os.path.abspath(main.__file__), root)
  if path.startswith(".."):
    return "__main__"  # a script outside the repository: no importable name
  return os.path.splitext(path)[0].replace(os.sep, ".")


def computed_hash(cell: ComputedCell, input_hashes: dict[str, str]) -> str:
  fn = cell.compute
  return _digest({"compute": f"{module_name(fn)}.{fn.__qualname__}",
                  "config": knobs.canonical(cell.config),
                  "inputs": {k: input_hashes[k] for k in cell.needs}})


def spec_hash(cell: SpecCell) -> str:
  """The identity of a spec cell's runs: each seed's spec hash and overrides."""
  from memobench import specs  # pylint: disable=import-outside-toplevel
  spec, applied = specs.with_overrides(cell.spec, list(cell.overrides))
  return _digest({"spec_hash": specs.spec_hash(spec), "seeds": [spec.seed + i for i in range(
      cell.seeds)], "overrides": knobs.canonical(applied)})


class Store:
  """The records of one workdir's computed cells: cells/<key>/record.json (+ artifacts)."""

  def __init__(self, workdir: str):
    self.root = os.path.join(workdir, "cells")

  def folder(self, key: str) -> str:
    return os.path.join(self.root, key)

  def read(self, key: str, hash_: str) -> dict[str, Any] | None:
    """The saved record of `key` if it was computed with config hash `hash_`."""
    path = os.path.join(self.folder(key), RECORD_FILE)
    try:
      with open(path) as f:
        saved = json.load(f)
    except (OSError, ValueError):
      return None
    if not isinstance(saved, dict) or saved.get("hash") != hash_ or "record" not in saved:
      return None
    return saved["record"]

  def partial_folder(self, key: str) -> str:
    """A fresh, empty folder to compute `key` into (any earlier partial one removed)."""
    path = os.path.join(self.root, f".{key}.partial")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path

  def commit(self, key: str, partial: str, hash_: str, config: Any, record: Any) -> None:
    """Saves `record` with its artifacts in `partial` as the cell's folder, whole or not at all."""
    results.write_json_atomic(os.path.join(partial, RECORD_FILE), {
        "key": key, "hash": hash_, "config": knobs.canonical(config), "record": record})
    final = self.folder(key)
    old = os.path.join(self.root, f".{key}.old")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
      os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)


class Claim:
  """A non-blocking exclusive claim on one cell (flock on cells/.<key>.lock), so two
  workers sharing a workdir never compute the same cell at once. Released on close
  or when the process dies."""

  def __init__(self, store: Store, key: str):
    os.makedirs(store.root, exist_ok=True)
    self.path = os.path.join(store.root, f".{key}.lock")
    self._fd: int | None = None

  def acquire(self) -> bool:
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
        return False
      raise
    self._fd = fd
    return True

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "Claim":
    return self

  def __exit__(self, *exc) -> None:
    self.release()
