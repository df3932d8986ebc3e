"""result.json: the versioned record of one run, written atomically.

Layout of ``workdir/result.json`` (schema_version 1; docs/METRICS.md documents
every metric):

  schema_version  int
  spec            {name, hash, resolved (the full spec tree), nonstandard (the
                   --set overrides applied, {} for a standard run)}
  run             {seed, status: completed | budget_exhausted | diverged |
                   preempted (SIGTERM: checkpointed; rerunning the same
                   command resumes), steps, epochs, preemption_count (over
                   the run's life), resumed_from_step (checkpoint step this
                   last session started from, or null), vmapped_seeds (the
                   seeds trained in one vmapped program with this one, whose
                   wall and compile times they share, or null),
                   members_per_slice (only when vmapped: that program's
                   members per slice, null for one vmap), checkpoint
                   {directory, every_steps, saves, save_s_total, restore_s}}
  metrics         scores.standard_scores(...)
  environment     {python, jax, flax, optax, numpy, backend, device_kind,
                   device_count, process_count, platform, git_commit}
  timing          {wall_s, compile_s, images_per_sec, time_to_fit_s}

The learning curve goes to ``workdir/metrics.jsonl``, one evaluation a line.

Reading files that others wrote (the leaderboard reads result.json,
metrics.jsonl and summary.json files of whole folders): `read_limited` opens
regular files only (a FIFO would block, /dev/zero never ends) up to a size
limit, and `load_json_file` also refuses integers beyond a float's range and
strings that are not valid Unicode; both raise `UnreadableFile` with a
one-line reason.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import platform
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
CURVE_FILE = "metrics.jsonl"
STATUSES = ("completed", "budget_exhausted", "diverged", "preempted")


class WorkdirError(RuntimeError):
  """A workdir that cannot be used; the message is one line."""


def is_remote(path: str) -> bool:
  """A URL such as gs://bucket/run (a pod's shared workdir), not a local path."""
  return "://" in str(path)


def _remote(path: str):
  # etils.epath (an orbax dependency) reads and writes gs:// through gcsfs or
  # tf.io.gfile, whichever is installed (launch/tpu_pod.sh installs gcsfs).
  from etils import epath  # pylint: disable=import-outside-toplevel
  return epath.Path(path)


def _read_umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


_UMASK = _read_umask()


def write_atomic(path: str, text: str | bytes) -> None:
  """Writes `text` (str, as UTF-8, or bytes) to `path` via a temp file in the same folder
  and a rename. Remote paths are written in one object upload, which is atomic on GCS.
  """
  write_atomic_together([(path, text)])


def write_atomic_together(files: list[tuple[str, str | bytes]]) -> None:
  """Writes several files so that either all of them are replaced or none is.

  Every text is encoded, then every file written in full to a temp file beside
  its target, before the first rename: a failure while encoding or writing (a
  full disk, text that is not valid Unicode) leaves every target as it was.
  (Remote paths are uploaded one object after another once all are encoded.)
  """
  payloads = [(path, text.encode("utf-8") if isinstance(text, str) else text)
              for path, text in files]
  if all(is_remote(path) for path, _ in payloads):
    for path, data in payloads:
      _remote(path).write_bytes(data)
    return
  if any(is_remote(path) for path, _ in payloads):
    raise ValueError("write_atomic_together: local and remote paths cannot be mixed")
  staged: list[tuple[str, str]] = []
  try:
    for path, data in payloads:
      staged.append((_stage(path, data), path))
    for tmp, path in staged:
      os.replace(tmp, path)
  except BaseException:
    for tmp, _ in staged:
      if os.path.exists(tmp):
        os.unlink(tmp)
    raise
  for _, path in staged:
    _remove_stale_temps(os.path.dirname(os.path.abspath(path)), os.path.basename(path))


def _stage(path: str, data: bytes) -> str:
  """`data` written and synced to a new temp file beside `path`; returns the temp's path."""
  folder = os.path.dirname(os.path.abspath(path))
  # The temp file names its writer (host, pid), so that leftovers of a killed
  # writer can be told from another live writer's and removed.
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{_temp_prefix()}{os.getpid()}-",
                             suffix=os.path.basename(path))
  try:
    # mkstemp makes the file 0600; give it the mode a plain open() would
    # (0666 & ~umask), so results and leaderboards stay readable by others.
    os.fchmod(fd, 0o666 & ~_UMASK)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  except BaseException as e:
    if os.path.exists(tmp):
      os.unlink(tmp)
    if isinstance(e, OSError) and not e.filename:
      e.filename = path  # a failed write() names no file; say which one it was
    raise
  return tmp


def _temp_prefix() -> str:
  return f".tmp-{socket.gethostname().replace('-', '_')}-"


def _remove_stale_temps(folder: str, name: str) -> None:
  """Removes the temp files of `name` left by writers on this host that no longer run
  (a SIGKILLed leaderboard export, say). Other hosts' temp files are left alone."""
  prefix = _temp_prefix()
  try:
    entries = os.listdir(folder)
  except OSError:
    return
  for entry in entries:
    if not (entry.startswith(prefix) and entry.endswith(name)):
      continue
    pid = entry[len(prefix):].split("-", 1)[0]
    if not pid.isdigit() or _alive(int(pid)):
      continue
    try:
      os.unlink(os.path.join(folder, entry))
    except OSError:
      pass  # removed by another writer meanwhile


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # another user's live process
  return True


def write_npz_atomic(path: str, arrays: dict[str, np.ndarray]) -> None:
  """np.savez, written atomically by results.write_atomic (one upload if remote)."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  write_atomic(path, buffer.getvalue())


def finite_or_none(obj: Any) -> Any:
  """Replaces NaN and infinities (which JSON cannot hold) by None, recursively."""
  if isinstance(obj, float):
    return obj if math.isfinite(obj) else None
  if isinstance(obj, dict):
    return {k: finite_or_none(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite_or_none(v) for v in obj]
  return obj


class UnreadableFile(ValueError):
  """A file that will not be read; the message is the one-line reason."""


def read_limited(path: str, max_bytes: int) -> bytes:
  """The bytes of the regular file `path` (symlinks followed), at most `max_bytes` of them.

  Opened non-blocking, so that a FIFO is refused instead of waiting for a writer.
  """
  try:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
  except OSError as e:
    raise UnreadableFile(f"cannot read: {e.strerror}") from None
  try:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
      raise UnreadableFile("not a regular file")
    too_large = UnreadableFile(f"larger than the {max_bytes:,}-byte limit for this file")
    if info.st_size > max_bytes:
      raise too_large
    chunks, total = [], 0
    while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
      chunks.append(chunk)
      total += len(chunk)
      if total > max_bytes:  # it grew while being read
        raise too_large
    return b"".join(chunks)
  except OSError as e:
    raise UnreadableFile(f"cannot read: {e.strerror}") from None
  finally:
    os.close(fd)


class _NumberOutOfRange(ValueError):
  pass


def _int_in_float_range(text: str) -> int:
  value = int(text)
  try:
    float(value)
  except OverflowError:
    raise _NumberOutOfRange(f"an integer of {len(text.lstrip('-'))} digits is beyond the "
                            "range of a float") from None
  return value


def parse_json(text: str | bytes) -> Any:
  """json.loads, refusing integers no float can hold (the leaderboard computes in floats)."""
  return json.loads(text, parse_int=_int_in_float_range)


def load_json_file(path: str, max_bytes: int) -> Any:
  """The JSON document in the regular file `path`; UnreadableFile (one line) if it is not one."""
  data = read_limited(path, max_bytes)
  try:
    doc = parse_json(data)
  except _NumberOutOfRange as e:
    raise UnreadableFile(str(e)) from None
  except RecursionError:
    raise UnreadableFile("JSON nested too deeply to read") from None
  except ValueError as e:
    raise UnreadableFile(f"not valid JSON: {e}") from None
  try:
    json.dumps(doc, ensure_ascii=False).encode("utf-8")
  except UnicodeEncodeError:
    raise UnreadableFile("holds a string that is not valid Unicode (an unpaired surrogate "
                         "escape such as \\ud800)") from None
  except (ValueError, RecursionError):
    pass  # NaN and deep nesting are the readers' to judge
  return doc


def trim_text(value: Any, limit: int = 200) -> str:
  """`value` as a label of at most `limit` characters (an ellipsis marks a cut)."""
  text = str(value)
  return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def write_json_atomic(path: str, obj: Any) -> None:
  write_atomic(path, json.dumps(finite_or_none(obj), indent=2, allow_nan=False) + "\n")


LOCK_FILE = ".memobench.lock"
# MEMOBENCH_WORKDIR_LOCK=0 runs without the workdir lock, for filesystems without
# flock whose mount cannot be changed; then nothing keeps two runs off one workdir.
LOCK_ENV = "MEMOBENCH_WORKDIR_LOCK"
# flock's errors that mean the filesystem does not do flock (Lustre mounted
# without -o flock: ENOSYS; NFS without a lock manager: ENOLCK; FUSE: EOPNOTSUPP).
_NO_FLOCK = {getattr(errno, n) for n in ("ENOSYS", "ENOLCK", "EOPNOTSUPP", "ENOTSUP", "EINVAL")
             if hasattr(errno, n)}


def locking_enabled() -> bool:
  return os.environ.get(LOCK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def filesystem_of(path: str) -> str:
  """'TYPE at MOUNTPOINT' of the mount holding `path` (/proc/self/mounts), or 'unknown'."""
  target = os.path.realpath(path)
  best = None
  try:
    with open("/proc/self/mounts") as f:
      for line in f:
        fields = line.split()
        if len(fields) < 3:
          continue
        mount = fields[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) > len(best[0])):
          best = (mount, fields[2])
  except OSError:
    pass
  return f"{best[1]} at {best[0]}" if best else "unknown"


class WorkdirLock:
  """An exclusive lock on a local workdir for a run's whole life (fcntl.flock).

  A second run on the same workdir is refused in one line naming the holder's
  pid and host, instead of the two crashing each other's checkpoints. The OS
  drops the lock when the holder exits, however it exits (SIGKILL included),
  so a stale lock file never blocks a rerun. The lock file must be a regular
  file: a symbolic link is never followed (its target would be truncated),
  a FIFO, folder or device is refused. Only EWOULDBLOCK means "in use"; a
  filesystem without flock gets a line of its own.
  """

  def __init__(self, workdir: str):
    import fcntl  # pylint: disable=import-outside-toplevel
    self.path = os.path.join(workdir, LOCK_FILE)
    flags = (os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
      fd = os.open(self.path, flags, 0o666)
    except OSError as e:
      if e.errno == errno.ELOOP:
        raise WorkdirError(f"{self.path} is a symbolic link, not memobench's lock file (its "
                           "target is left alone); remove the link") from None
      raise WorkdirError(f"cannot open the lock file {self.path} ({e.strerror}); remove it "
                         "or use another --workdir") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
      os.close(fd)
      raise WorkdirError(f"{self.path} is not a regular file; remove it or use another "
                         "--workdir")
    self._file = os.fdopen(fd, "r+")
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      held_by = ""
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
        self._file.seek(0)
        held_by = self._file.read(200).strip() or "another process"
      self._file.close()
      if held_by:
        raise WorkdirError(f"workdir {workdir} is in use by {held_by}; wait for that run "
                           "or use another --workdir") from None
      if e.errno in _NO_FLOCK:
        raise WorkdirError(
            f"cannot lock {self.path}: its filesystem ({filesystem_of(workdir)}) does not "
            f"support flock ({e.strerror}); use a --workdir on one that does, mount it with "
            f"flock (Lustre: -o flock), or set {LOCK_ENV}=0 to run unlocked (then keep two "
            "runs off one workdir yourself)") from None
      raise WorkdirError(f"cannot lock {self.path} ({e.strerror})") from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    self._file.flush()

  def release(self) -> None:
    if not self._file.closed:
      self._file.close()  # closing the descriptor releases the flock


def prepare_workdir(workdir: str, spec_hash: str, overwrite: bool, seed: int | None = None,
                    lock: bool = False) -> WorkdirLock | None:
  """Creates `workdir`, refusing one that holds a result of another spec or seed.

  lock: also take the workdir's WorkdirLock (local workdirs; returned, to be
  released when the run has written its result).
  """
  if is_remote(workdir):
    _check_previous_result(workdir, spec_hash, overwrite, _prepare_remote(workdir), seed)
    return None
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f"cannot create workdir {workdir}: {e.strerror}") from None
  if not os.access(workdir, os.W_OK):
    raise WorkdirError(f"workdir {workdir} is not writable")
  held = WorkdirLock(workdir) if lock and locking_enabled() else None
  try:
    _check_local_result(workdir, spec_hash, overwrite, seed)
  except BaseException:
    if held is not None:
      held.release()
    raise
  return held


def remove_artifacts(workdir: str, names: tuple[str, ...] | list[str]) -> list[str]:
  """Removes the files and folders `names` of `workdir` that exist; returns those removed.

  Symbolic links are removed, never followed.
  """
  removed = []
  for name in names:
    path = f"{workdir.rstrip('/')}/{name}" if is_remote(workdir) else os.path.join(workdir, name)
    if is_remote(workdir):
      target = _remote(path)
      if target.exists():
        if target.is_dir():
          target.rmtree()
        else:
          target.unlink()
        removed.append(name)
    elif os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
      removed.append(name)
    elif os.path.lexists(path):
      os.unlink(path)
      removed.append(name)
  return removed


def _check_local_result(workdir: str, spec_hash: str, overwrite: bool, seed: int | None) -> None:
  existing = os.path.join(workdir, RESULT_FILE)
  text = None
  if os.path.lexists(existing) and not os.path.isfile(existing):
    # Never replaced, even with --overwrite: it is not a result memobench wrote.
    raise WorkdirError(f"{existing} is not a regular file; move it away or use another --workdir")
  if os.path.exists(existing):
    try:
      with open(existing) as f:
        text = f.read()
    except OSError:
      text = ""
  _check_previous_result(workdir, spec_hash, overwrite, text, seed)


def _prepare_remote(workdir: str) -> str | None:
  """Creates a remote workdir; returns the text of its result.json, if any."""
  path = _remote(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    existing = path / RESULT_FILE
    return existing.read_text() if existing.exists() else None
  except Exception as e:  # pylint: disable=broad-except  (backends raise their own types)
    raise WorkdirError(f"cannot use workdir {workdir}: {type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0]}") from None


def _check_previous_result(workdir: str, spec_hash: str, overwrite: bool,
                           text: str | None, seed: int | None = None) -> None:
  if text is not None and not overwrite:
    try:
      old = json.loads(text)
      old_hash, old_seed = old["spec"]["hash"], old["run"]["seed"]
    except (ValueError, KeyError, TypeError, RecursionError):
      old_hash, old_seed = None, None
    if old_hash != spec_hash:
      raise WorkdirError(f"workdir {workdir} holds a result of another spec "
                         f"(hash {old_hash}, this run {spec_hash}); use another "
                         "--workdir or pass --overwrite")
    # The spec hash leaves the seed out: another seed's result is another run.
    if seed is not None and old_seed != seed:
      raise WorkdirError(f"workdir {workdir} holds the result of seed {old_seed} (this run: "
                         f"seed {seed}); use another --workdir or pass --overwrite")


def git_commit() -> str | None:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=5, check=True)
    return out.stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def environment() -> dict[str, Any]:
  import flax  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  import numpy  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  devices = jax.devices()
  return {
      "python": sys.version.split()[0],
      "jax": jax.__version__,
      "jaxlib": getattr(jax.lib, "__version__", None) or _version("jaxlib"),
      "flax": flax.__version__,
      "optax": optax.__version__,
      "numpy": numpy.__version__,
      "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind,
      "device_count": jax.device_count(),
      "local_device_count": jax.local_device_count(),
      "process_count": jax.process_count(),
      "platform": platform.platform(),
      "git_commit": git_commit(),
  }


def _version(package: str) -> str | None:
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def make_result(*, spec_name: str, spec_hash: str, resolved_spec: dict[str, Any],
                nonstandard: dict[str, Any], seed: int, status: str, steps: int,
                epochs: float, metrics: dict[str, Any], timing: dict[str, Any],
                env: dict[str, Any] | None = None,
                run_info: dict[str, Any] | None = None) -> dict[str, Any]:
  """The result document; `run_info` adds resume fields to "run" (preemption_count, ...)."""
  if status not in STATUSES:
    raise ValueError(f"unknown run status {status!r}")
  return {
      "schema_version": SCHEMA_VERSION,
      "spec": {"name": spec_name, "hash": spec_hash, "resolved": resolved_spec,
               "nonstandard": nonstandard},
      "run": {"seed": seed, "status": status, "steps": steps, "epochs": epochs,
              **(run_info or {})},
      "metrics": metrics,
      "environment": env if env is not None else environment(),
      "timing": timing,
  }


def format_duration(seconds: float) -> str:
  """'4m05s', or '2h07m' past an hour (ETAs of runs and sweeps)."""
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def write_curve(workdir: str, rows: list[dict[str, Any]]) -> None:
  write_atomic(os.path.join(workdir, CURVE_FILE),
               "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
