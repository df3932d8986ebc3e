"""The runtime: the JAX cluster, host-local feeding, the mesh, the compilation cache, preemption.

Multi-host runs: one process per host forming one JAX cluster, and host-local feeding.

A pod slice runs the same command on every host; `initialize` turns those
processes into one JAX cluster (`jax.distributed.initialize`), after which
`jax.devices()` lists the devices of every host and a jit over a Mesh of all of
them is one data-parallel program (big_vision and init2winit work this way).

When to initialize (`--distributed`, or $MEMOBENCH_DISTRIBUTED):
  auto   (default) on a Cloud TPU VM (a TPU device node and libtpu present), or
         when a coordinator address is given; JAX then finds the coordinator,
         process count and id itself (TPU metadata, SLURM, Open MPI, k8s).
  true   always (an error when JAX cannot find the cluster).
  false  never: a single-process run.
Explicit clusters (e.g. N processes on one machine, launch/local_cluster.sh)
pass --coordinator_address, --num_processes and --process_id, or
$MEMOBENCH_COORDINATOR_ADDRESS, $MEMOBENCH_NUM_PROCESSES, $MEMOBENCH_PROCESS_ID.
On CPU the cross-process collectives are gloo's (JAX's CPU default).

Feeding: every process builds the same corrupted dataset (the corruption is a
pure function of (seed, example index), so the host count never changes the
data) and hands its process-local copy to `jax.make_array_from_process_local_data`;
the training step then gathers each global batch inside the jitted program, and
with the batch sharded over the 'data' axis every device materializes only its
own slice of it, from its own host's copy: each host feeds its part of the
global batch without any cross-host data traffic. (Feeding host-gathered
batches instead would cost a host-to-device copy per step and break step
fusion; the datasets memobench trains on fit in device memory.)

The persistent compilation cache lets a restarted (preempted) run skip
compiling; `PreemptionWatcher` turns SIGTERM into a flag the training loop
checks at every evaluation boundary (it then checkpoints and returns).
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

MODES = ("auto", "true", "false")
_ENV = "MEMOBENCH_"


class DistributedError(RuntimeError):
  """A cluster that cannot be formed; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
  mode: str = "auto"
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None

  @classmethod
  def from_env(cls, mode: str | None = None, coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               environ: dict[str, str] | None = None) -> ClusterConfig:
    """Flags win over $MEMOBENCH_* environment variables."""
    env = os.environ if environ is None else environ

    def pick(value, name, cast):
      if value is not None:
        return value
      raw = env.get(_ENV + name)
      if raw in (None, ""):
        return None
      try:
        return cast(raw)
      except ValueError:
        raise DistributedError(f"${_ENV}{name}={raw!r} is not a valid {cast.__name__}") from None

    mode = (pick(mode, "DISTRIBUTED", str) or "auto").lower()
    if mode not in MODES:
      raise DistributedError(f"--distributed={mode!r}: expected one of {', '.join(MODES)}")
    return cls(mode, pick(coordinator_address, "COORDINATOR_ADDRESS", str),
               pick(num_processes, "NUM_PROCESSES", int), pick(process_id, "PROCESS_ID", int))

  def wanted(self) -> bool:
    if self.mode == "false":
      return False
    return self.mode == "true" or self.coordinator_address is not None or on_cloud_tpu_vm()


def on_cloud_tpu_vm() -> bool:
  """A TPU device node and libtpu: a Cloud TPU VM (checked without starting JAX's backend)."""
  has_chips = bool(glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"))
  return has_chips and importlib.util.find_spec("libtpu") is not None


def initialize(config: ClusterConfig) -> bool:
  """Joins the JAX cluster when `config` asks for one; returns whether it did.

  Must run before anything touches a JAX device.
  """
  if not config.wanted():
    return False
  if jax.distributed.is_initialized():
    return True
  explicit = (config.coordinator_address, config.num_processes, config.process_id)
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise DistributedError("an explicit cluster needs all of --coordinator_address, "
                           "--num_processes and --process_id")
  try:
    jax.distributed.initialize(coordinator_address=config.coordinator_address,
                               num_processes=config.num_processes,
                               process_id=config.process_id)
  except (RuntimeError, ValueError) as e:
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise DistributedError(f"could not form the JAX cluster: {first_line}") from None
  return True


def is_primary() -> bool:
  """Process 0 writes result.json and metrics.jsonl, and logs progress."""
  return jax.process_index() == 0


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Global arrays, replicated on every device of `mesh`, from each process's local copy.

  Every process must pass the same values (here: the deterministic dataset and
  the init state computed from the same key).
  """
  sharding = NamedSharding(mesh, P())

  def put(leaf):
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
      return leaf
    return jax.make_array_from_process_local_data(sharding, np.asarray(leaf))

  return jax.tree.map(put, tree)


def fetch(x: jax.Array) -> np.ndarray:
  """A replicated global array as a host numpy array, on any process."""
  if x.is_fully_addressable:
    return np.asarray(x)
  return np.asarray(x.addressable_data(0))


def make_mesh() -> jax.sharding.Mesh:
  """The 1-D data-parallel mesh over every device of every process (axis 'data')."""
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


# --------------------------------------------------------------------------
# Compilation cache and preemption
# --------------------------------------------------------------------------


def default_compilation_cache_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "memobench", "jax")


def enable_compilation_cache(path: str | None) -> None:
  """Persists compiled programs under `path` so a restarted run skips compilation.

  Every program is cached, however fast it compiled: a resumed run recompiles
  the same train and eval programs, and on a pod that is minutes.
  """
  if not path:
    return
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# --------------------------------------------------------------------------
# Preemption
# --------------------------------------------------------------------------


class PreemptionWatcher:
  """Tells the loop, at chunk boundaries, that the job is being preempted.

  Single process: a SIGTERM handler sets a flag (installed only while the loop
  runs, from the main thread). Multi-process: jax.distributed installs its own
  SIGTERM notifier and agrees on a common sync point across hosts
  (multihost_utils.reached_preemption_sync_point), which every process calls
  with the same consecutive ids, so all hosts checkpoint at the same step.
  """

  def __init__(self):
    self._flag = False
    self._previous = None
    self._sync_id = 0
    self.multi_process = jax.process_count() > 1

  def __enter__(self) -> PreemptionWatcher:
    import signal  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel
    if not self.multi_process and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc) -> None:
    import signal  # pylint: disable=import-outside-toplevel
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_sigterm(self, signum, frame) -> None:  # pylint: disable=unused-argument
    from memobench import signals  # pylint: disable=import-outside-toplevel
    self._flag = True
    signals.note_sigterm()  # for a caller that outlives this watcher (experiments' driver)

  def preempted(self) -> bool:
    """Call once per chunk boundary, on every process."""
    if self.multi_process:
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      self._sync_id += 1
      return multihost_utils.reached_preemption_sync_point(self._sync_id)
    return self._flag

