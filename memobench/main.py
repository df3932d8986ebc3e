"""memobench command line: train one spec and write its scores.

  python -m memobench.main                                  # offline default spec
  python -m memobench.main --spec=mnist5k_clean --workdir=/tmp/mb
  python -m memobench.main --spec=mnist5k_randlabels --set optimizer.lr=0.05
  python -m memobench.main --spec=mnist5k_clean --seeds=3   # seeds 0-2, vmapped for small models
  python -m memobench.main --list_specs

Bad input (unknown spec, bad --set, unusable workdir, missing data) prints one
line on stderr and exits non-zero: 2 for a bad command line, 1 otherwise.

Rerunning the same command on the same workdir resumes from its latest good
checkpoint (workdir/checkpoints, every --checkpoint_every steps and at the end).
SIGTERM (preemption) checkpoints, writes result.json with status 'preempted'
and exits with 143 (128 + SIGTERM); the rerun continues. On a TPU pod (or with
--coordinator_address/--num_processes/--process_id) every host runs this same
command and the processes form one JAX cluster (see launch/ and BUILD.md).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags, logging

from memobench import cli, specs

DEFAULT_SPEC = "mnist5k_randlabels"

_SPEC = flags.DEFINE_string("spec", DEFAULT_SPEC, "Registered spec name (see --list_specs).")
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Output folder; default /tmp/memobench/<spec>/seed<seed>.")
_SEED = flags.DEFINE_integer("seed", None, "Seed (default: the spec's).")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Run this many seeds (--seed, --seed+1, ...), one "
                              "result per seed in <workdir>/seed<N>/.", lower_bound=1,
                              upper_bound=specs.MAX_SEEDS)
_VMAP_SEEDS = flags.DEFINE_enum(
    "vmap_seeds", "auto", ["auto", "true", "false"], "With --seeds: train the seeds in one "
    "vmapped program (true), one after another (false), or vmapped where the model is small "
    "and its steps fuse on this backend (auto).")
_SHARD = flags.DEFINE_string(
    "shard", None, "With --seeds: run only this share of the seeds, INDEX/COUNT (e.g. "
    "$SLURM_ARRAY_TASK_ID/8): every COUNT-th seed from INDEX, so COUNT workers on one shared "
    "--workdir run each seed once.")
_SET = flags.DEFINE_multi_string("set", [], "Override a spec field: key=value "
                                 "(e.g. optimizer.lr=0.05); marks the run non-standard.")
_LIST = flags.DEFINE_boolean("list_specs", False, "Print every spec name and exit.")
_OVERWRITE = flags.DEFINE_boolean("overwrite", False,
                                  "Replace a workdir's result of a different spec.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default $TFDS_DATA_DIR).")
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every", 1000, "Checkpoint every this many steps (rounded up to an evaluation "
    "boundary) and at the end; 0 disables checkpoints and resuming. Not part of the spec.",
    lower_bound=0)
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache_dir", None, "Persistent JAX compilation cache, so restarts compile "
    "fast (default $MEMOBENCH_COMPILATION_CACHE_DIR or ~/.cache/memobench/jax; '' disables).")
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", None, ["auto", "true", "false"], "Form a multi-process JAX cluster "
    "(jax.runtime.initialize): auto (default, $MEMOBENCH_DISTRIBUTED) on Cloud TPU VMs "
    "or when --coordinator_address is given.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0, for an explicit cluster.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in an explicit cluster.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's id in an explicit cluster.")
PREEMPTED_EXIT_CODE = 143


class UsageError(Exception):
  """Bad command line: exit code 2."""


def _fail(message: str, code: int) -> None:
  cli.fail("memobench", message, code)


def main(argv):
  logging.set_verbosity(logging.WARNING)  # progress lines are printed, not logged
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  # Imported here so that --help and flag errors do not pay for JAX start-up.
  from memobench import catalogue, results, run, workload  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel

  if _LIST.value:
    for spec in catalogue.all_specs():
      print(f"{spec.name:32s} {spec.description}")
    return
  try:
    spec = catalogue.get(_SPEC.value)
    spec, overrides = specs.with_overrides(spec, _SET.value)
    if _SEED.value is not None:
      spec = dataclasses.replace(spec, seed=_SEED.value)
    workload.validate(spec)
  except specs.SpecError as e:
    _fail(str(e), 2)
  try:
    shard = cli.parse_shard(_SHARD.value)
  except ValueError as e:
    _fail(str(e), 2)
  if shard is not None and _SEEDS.value == 1:
    _fail("--shard needs --seeds > 1 (it splits the seeds between workers)", 2)
  workdir = _WORKDIR.value or os.path.join("/tmp/memobench", spec.name, f"seed{spec.seed}")
  from memobench import runtime  # pylint: disable=import-outside-toplevel
  cache = _COMPILATION_CACHE.value
  if cache is None:
    cache = os.environ.get("MEMOBENCH_COMPILATION_CACHE_DIR",
                           runtime.default_compilation_cache_dir())
  runtime.enable_compilation_cache(cache)
  try:
    runtime.initialize(runtime.ClusterConfig.from_env(
        _DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value))
  except runtime.DistributedError as e:
    _fail(str(e), 1)
  from memobench import sweep  # pylint: disable=import-outside-toplevel
  try:
    if _SEEDS.value > 1:
      sweep.run_jobs(sweep.seed_jobs(spec, _WORKDIR.value or os.path.dirname(workdir),
                                     _SEEDS.value, overrides),
                     resume=False, overwrite=_OVERWRITE.value, data_dir=_DATA_DIR.value,
                     log=print, vmap=_VMAP_SEEDS.value,
                     checkpoint_every=_CHECKPOINT_EVERY.value, shard=shard)
    else:
      result = run.run_spec(spec, workdir, nonstandard=overrides, data_dir=_DATA_DIR.value,
                            overwrite=_OVERWRITE.value, checkpoint_every=_CHECKPOINT_EVERY.value)
      if result["run"]["status"] == "preempted":
        raise sweep.Preempted()
  except sweep.Preempted:
    sys.stdout.flush()
    sys.exit(PREEMPTED_EXIT_CODE)
  except specs.SpecError as e:
    _fail(str(e), 2)
  except (datasets.DataError, results.WorkdirError) as e:
    _fail(str(e), 1)
  except OSError as e:  # a full disk, a vanished mount: nothing written is lost
    _fail(cli.os_error_line(e), 1)


def entry():
  app.run(main, flags_parser=cli.flags_parser("memobench"))


if __name__ == "__main__":
  entry()
