"""Checkpoints with orbax: periodic saves, exact resume, preemption, compile cache.

Layout: ``workdir/checkpoints/<step>/`` holds one orbax composite checkpoint
with the items

  state    the TrainState (params, model state, optimizer state, step), saved
           with StandardSave and restored with StandardRestore against an
           abstract target built from a freshly initialized state, so optax's
           state types and the current mesh's shardings come back (a run may
           resume on another device count).
  loop     JSON: what the loop needs to continue exactly -- the learning curve
           so far, time and images trained, the stop decision if one was
           taken, the preemption count, and the run's identity (spec hash, seed)
           which a resume checks.
  tracker  (optional) the state of an on_eval tracker that implements
           `checkpoint_state()` / `restore_checkpoint_state(tree)` (see training/loop.py).
  integrity  JSON: sha256 digests of the other items ({loop, state, tracker}:
           the loop record as canonical JSON, the arrays' dtypes, shapes and
           bytes) and a sha256 of those digests themselves.

Integrity. Orbax and tensorstore keep no checksum, so same-size damage (a
flipped digit in loop/metadata turning steps_to_fit 143 into 153, a changed
array byte) would restore silently. A restore checks every digest, and the
digests live where damage to them is seen too: in their own item, hashed
with them, and the loop record names the integrity format it was written
with, so a checkpoint written with digests whose integrity item is gone, or
whose marker was damaged while the item survived, is damaged. Checkpoints
written before the integrity item (digests inside the loop record, or none)
still restore, checked as far as they can be.

The corrupted dataset is not stored: it is a pure function of the spec and seed
and is rebuilt on resume. Batches are a pure function of (seed, step), so a
resumed run continues with the very batches an uninterrupted one would see and
ends bitwise identical on CPU.

Checkpoints are taken at evaluation boundaries (a save is due when
`every_steps` steps have passed since the last, so the effective interval is
rounded up to a multiple of budget.eval_every_steps), at the end of the run,
and when the run is preempted. All processes of a multi-host run take part (each
writes its shards; orbax coordinates). A latest checkpoint that does not
restore (truncated, corrupted, half-deleted) is reported in one line and the
previous one is used. A save that fails (a full disk, a vanished mount) is
reported in one line and turns checkpointing off for the rest of the run: the
run goes on and its result.json says so (`checkpoint.failed`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from memobench import results, runtime

CHECKPOINT_DIR = "checkpoints"
DEFAULT_EVERY_STEPS = 1000
# Kept checkpoints: the latest plus fallbacks for a corrupted latest one.
MAX_TO_KEEP = 3
# The integrity item's format; the loop record names it under INTEGRITY_KEY.
INTEGRITY_FORMAT = 1
INTEGRITY_KEY = "integrity"


class CheckpointMismatchError(RuntimeError):
  """The workdir's checkpoints belong to another spec or seed; the message is one line."""


def checkpoint_dir(workdir: str) -> str:
  if "://" in workdir:  # gs://...: orbax writes there through tensorstore / epath
    return workdir.rstrip("/") + "/" + CHECKPOINT_DIR
  return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


class _OrbaxErrorFilter(logging.Filter):
  """Drops orbax's ERROR records (one per background thread, each with a traceback).

  Every orbax failure also surfaces in the main thread (save, wait, restore),
  where the Checkpointer reports it in one line.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def _quiet_orbax_errors() -> None:
  absl_logger = logging.getLogger("absl")
  if not any(isinstance(f, _OrbaxErrorFilter) for f in absl_logger.filters):
    absl_logger.addFilter(_OrbaxErrorFilter())


def _first_line(error: BaseException) -> str:
  text = (str(error).strip().splitlines() or [""])[0]
  for marker in ("No space left on device", "Disk quota exceeded", "Read-only file system",
                 "Permission denied"):
    if marker in text:  # tensorstore's messages bury the cause after long paths
      return marker
  return f"{type(error).__name__}: {text[:160]}"


def warn(message: str) -> None:
  if jax.process_index() == 0:
    print(f"memobench: warning: {message}", file=sys.stderr, flush=True)


def abstract_like(tree: Any) -> Any:
  """The restore target of `tree`: shapes, dtypes and shardings, no data."""
  def leaf(x):
    if isinstance(x, jax.Array):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return x
  return jax.tree.map(leaf, tree)


class Checkpointer:
  """Saves and restores one run's checkpoints in `workdir/checkpoints`.

  `every_steps` <= 0 disables checkpointing: nothing is saved or restored.
  """

  def __init__(self, workdir: str, every_steps: int = DEFAULT_EVERY_STEPS, *,
               identity: dict[str, Any] | None = None, overwrite: bool = False,
               max_to_keep: int = MAX_TO_KEEP):
    self.directory = checkpoint_dir(workdir)
    self.every_steps = every_steps
    self.identity = dict(identity or {})
    self.overwrite = overwrite
    self.last_saved_step: int | None = None
    self.save_s: list[float] = []  # wall time of each save call (blocking part)
    self.restore_s: float | None = None
    self.max_to_keep = max_to_keep
    self.failure: str | None = None  # why checkpointing stopped mid-run, if it did
    # Orbax's multi-process barriers are named by step; runs that checkpoint
    # side by side (the seeds of a vmapped group) need names of their own.
    self._barrier_prefix = "_".join(["memobench", *map(str, self.identity.values())])
    if self.enabled:
      self._check_writable()
      _quiet_orbax_errors()
    self._manager = self._new_manager() if self.enabled else None

  def _check_writable(self) -> None:
    """Refuses an unwritable checkpoint folder now, not after training (orbax finds it
    only at the first save, then waits out its barrier)."""
    if "://" in self.directory:
      return  # remote (gs://): its backend reports its own errors
    try:
      os.makedirs(self.directory, exist_ok=True)
      # A real write: permission bits do not stop root, a read-only mount does.
      fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=self.directory)
      os.close(fd)
      os.remove(probe)
    except OSError as e:
      raise results.WorkdirError(
          f"checkpoint folder {self.directory} is not writable ({e.strerror}); fix it or "
          "pass --checkpoint_every=0") from None

  def _new_manager(self) -> ocp.CheckpointManager:
    # Async saves: the blocking part copies arrays to host memory, the writes
    # overlap the next training chunk (wait_until_finished before exit).
    return ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
        max_to_keep=self.max_to_keep, create=True, enable_async_checkpointing=True,
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            barrier_sync_key_prefix=self._barrier_prefix)))

  @property
  def enabled(self) -> bool:
    return self.every_steps > 0 and self.failure is None

  def _give_up(self, step: int | None, error: Exception) -> None:
    """A save failed: one line, no more checkpoints, the run goes on to its result."""
    at = f" by step {step}" if step is not None else ""
    self.failure = f"a save failed{at}: {_first_line(error)}"
    warn(f"checkpointing failed{at} in {self.directory} ({_first_line(error)}); the run goes "
         "on without checkpoints and its result.json records the failure")
    try:
      self._manager.close()
    except Exception:  # pylint: disable=broad-except  (the same failure again)
      pass
    self._remove_partial_saves()

  def _remove_partial_saves(self) -> None:
    """Removes half-written saves: of no use, and on a full disk their space is what
    result.json needs. Orbax's async writer can still be finishing one after the
    manager closes (it recreates files in the folder), so removal is retried, and
    `close` calls this again at the end of a run whose checkpointing failed."""
    if jax.process_index() != 0 or "://" in self.directory:
      return
    for attempt in range(20):
      partial = ([os.path.join(self.directory, name) for name in os.listdir(self.directory)
                  if "orbax-checkpoint-tmp" in name] if os.path.isdir(self.directory) else [])
      if not partial:
        return
      if attempt:
        time.sleep(0.1)
      for path in partial:
        _rmtree(path)

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps()) if self.enabled else []

  def restore_latest(self, abstract_state: Any, tracker_target: Any = None
                     ) -> tuple[Any, dict[str, Any], Any] | None:
    """(state, loop, tracker) of the latest checkpoint that restores, or None.

    A checkpoint of another spec or seed raises CheckpointMismatchError, unless
    `overwrite`, in which case the workdir's checkpoints are discarded.
    """
    if not self.enabled:
      return None
    for step in reversed(self.all_steps()):
      t0 = time.perf_counter()
      try:
        loop = self._manager.restore(step, args=ocp.args.Composite(
            loop=ocp.args.JsonRestore())).loop
        digests = self._verified_digests(step, loop)
      except Exception as e:  # pylint: disable=broad-except
        self._skip(step, e)
        continue
      self._check_identity(loop)
      items = {"state": ocp.args.StandardRestore(abstract_state)}
      if tracker_target is not None and loop.get("has_tracker"):
        items["tracker"] = ocp.args.StandardRestore(tracker_target)
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        jax.block_until_ready(restored.state)
      except Exception as e:  # pylint: disable=broad-except
        self._skip(step, e)
        continue
      tracker = restored.tracker if "tracker" in items else None
      damaged = _damaged_items(digests, restored.state, tracker)
      if damaged:  # (checkpoints written before digests existed have none to check)
        self._skip(step, ValueError(f"sha256 of its {' and '.join(damaged)} differs from "
                                    "the one saved with it"))
        continue
      self.restore_s = time.perf_counter() - t0
      self.last_saved_step = step
      return restored.state, loop, tracker
    return None

  def _verified_digests(self, step: int, loop: Any) -> dict[str, str] | None:
    """The digests of `step`'s state and tracker, once its loop record and the digests
    themselves check out; raises ValueError when they do not (the checkpoint is damaged)."""
    if not isinstance(loop, dict):
      raise ValueError("its loop record is not a JSON object")
    if not _exists(f"{self.directory}/{step}/{INTEGRITY_KEY}"):
      if INTEGRITY_KEY in loop:
        raise ValueError(f"it was written with an {INTEGRITY_KEY} item, which is missing")
      return loop.get("digests")  # written before the integrity item (or before digests)
    record = self._manager.restore(step, args=ocp.args.Composite(
        **{INTEGRITY_KEY: ocp.args.JsonRestore()}))[INTEGRITY_KEY]
    digests = record.get("digests") if isinstance(record, dict) else None
    if (not isinstance(digests, dict) or record.get("format") != INTEGRITY_FORMAT
        or record.get("sha256") != json_digest(digests)):
      raise ValueError(f"its {INTEGRITY_KEY} record is damaged")
    if digests.get("loop") != json_digest(loop):
      raise ValueError("sha256 of its loop record differs from the one saved with it")
    needed = ["state"] + (["tracker"] if loop.get("has_tracker") else [])
    if not all(isinstance(digests.get(k), str) for k in needed):
      raise ValueError(f"its {INTEGRITY_KEY} record lacks the digest of an item")
    return digests

  def holds_own_checkpoint(self) -> bool:
    """Whether a checkpoint of this run (spec hash and seed) is there to resume from."""
    for step in reversed(self.all_steps()):
      try:
        loop = self._manager.restore(step, args=ocp.args.Composite(
            loop=ocp.args.JsonRestore())).loop
      except Exception:  # pylint: disable=broad-except  (damaged: restore_latest says so)
        continue
      identity = loop.get("identity") if isinstance(loop, dict) else None
      if isinstance(identity, dict) and all(identity.get(k) == v
                                            for k, v in self.identity.items()):
        return True
    return False

  def _check_identity(self, loop: dict[str, Any]) -> None:
    theirs = {k: loop.get("identity", {}).get(k) for k in self.identity}
    if theirs == self.identity:
      return
    if not self.overwrite:
      raise CheckpointMismatchError(
          f"workdir checkpoints {self.directory} belong to another run ({_fmt(theirs)}; "
          f"this run {_fmt(self.identity)}); use another --workdir or pass --overwrite")
    warn(f"--overwrite: discarding the checkpoints of another run ({_fmt(theirs)}) in "
         f"{self.directory}")
    self._discard_all()
    raise _Discarded()

  def _discard_all(self) -> None:
    self._manager.wait_until_finished()
    if jax.process_index() == 0:
      _rmtree(self.directory)
    _sync(f"{self._barrier_prefix}_discard")
    self._manager.close()
    self._manager = self._new_manager()

  def _skip(self, step: int, error: Exception) -> None:
    reason = (str(error).strip().splitlines() or [""])[0][:160]
    warn(f"checkpoint step {step} in {self.directory} does not restore "
         f"({type(error).__name__}: {reason}); deleting it and trying the previous one")
    try:
      self._manager.delete(step)
    except Exception:  # pylint: disable=broad-except
      # Deleting is housekeeping (a later save of the same step needs the
      # name); a folder orbax cannot delete is removed by hand.
      if jax.process_index() == 0:
        _rmtree(f"{self.directory}/{step}")
      _sync(f"{self._barrier_prefix}_skip_{step}")
      self._manager.reload()

  def due(self, step: int) -> bool:
    if not self.enabled:
      return False
    since = step - (self.last_saved_step or 0)
    return since >= self.every_steps

  def save(self, step: int, state: Any, loop: dict[str, Any], tracker: Any = None) -> None:
    """Saves (asynchronously) unless this step is already saved."""
    if not self.enabled or step == self.last_saved_step:
      return
    t0 = time.perf_counter()
    # Orbax and tensorstore keep no checksum: same-size damage would restore
    # silently. The digests are checked on restore (module docstring, Integrity).
    loop = _json_roundtrip({**loop, "identity": self.identity, "has_tracker": tracker is not None,
                            INTEGRITY_KEY: INTEGRITY_FORMAT})
    digests = {"loop": json_digest(loop), "state": tree_digest(state)}
    if tracker is not None:
      digests["tracker"] = tree_digest(tracker)
    integrity = {"format": INTEGRITY_FORMAT, "digests": digests, "sha256": json_digest(digests)}
    items = {"state": ocp.args.StandardSave(state), "loop": ocp.args.JsonSave(loop),
             INTEGRITY_KEY: ocp.args.JsonSave(integrity)}
    if tracker is not None:
      items["tracker"] = ocp.args.StandardSave(tracker)
    try:
      self._manager.save(step, args=ocp.args.Composite(**items), force=True)
    except Exception as e:  # pylint: disable=broad-except  (orbax/tensorstore raise ValueError)
      self._give_up(step, e)
      return
    self.save_s.append(time.perf_counter() - t0)
    self.last_saved_step = step

  def wait(self) -> None:
    if self.enabled:
      try:
        self._manager.wait_until_finished()
      except Exception as e:  # pylint: disable=broad-except
        self._give_up(self.last_saved_step, e)

  def close(self) -> None:
    if self.enabled:
      self.wait()
    if self.enabled:
      self._manager.close()
    elif self.failure is not None:
      self._remove_partial_saves()

  def summary(self) -> dict[str, Any]:
    out = {"directory": self.directory if self.every_steps > 0 else None,
           "every_steps": self.every_steps, "saves": len(self.save_s),
           "save_s_total": sum(self.save_s), "restore_s": self.restore_s}
    if self.failure is not None:
      out["failed"] = self.failure
    return out


def tree_digest(tree: Any) -> str:
  """sha256 over every leaf's dtype, shape and bytes (replicated arrays read on this host)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    array = np.ascontiguousarray(runtime.fetch(leaf) if isinstance(leaf, jax.Array) else leaf)
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def json_digest(obj: Any) -> str:
  """sha256 of `obj` as canonical JSON (sorted keys, no spaces; NaN allowed, as JsonSave writes)."""
  text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
  return hashlib.sha256(text.encode()).hexdigest()


def _json_roundtrip(obj: Any) -> Any:
  """`obj` as it reads back from JSON (tuples become lists), so its digest is the restored one's."""
  return json.loads(json.dumps(obj, allow_nan=True))


def _damaged_items(digests: dict[str, str] | None, state: Any, tracker: Any) -> list[str]:
  if not digests:
    return []
  damaged = []
  if "state" in digests and tree_digest(state) != digests["state"]:
    damaged.append("state")
  if tracker is not None and "tracker" in digests and tree_digest(tracker) != digests["tracker"]:
    damaged.append("tracker")
  return damaged


class _Discarded(Exception):
  """Internal: the checkpoints were discarded; restore finds none."""


def restore_or_none(checkpointer: Checkpointer, abstract_state: Any, tracker_target: Any = None):
  """`Checkpointer.restore_latest`, treating discarded (--overwrite) checkpoints as none."""
  try:
    return checkpointer.restore_latest(abstract_state, tracker_target)
  except _Discarded:
    return None


def _exists(path: str) -> bool:
  if "://" in path:
    from etils import epath  # pylint: disable=import-outside-toplevel
    return epath.Path(path).exists()
  return os.path.exists(path)


def _rmtree(path: str) -> None:
  if "://" in path:
    from etils import epath  # pylint: disable=import-outside-toplevel
    p = epath.Path(path)
    if p.exists():
      p.rmtree()
  else:
    shutil.rmtree(path, ignore_errors=True)


def _fmt(identity: dict[str, Any]) -> str:
  return ", ".join(f"{k} {v}" for k, v in identity.items())


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)


# --------------------------------------------------------------------------
# Persistent compilation cache
# --------------------------------------------------------------------------
