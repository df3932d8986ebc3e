"""What checkpointing costs: save and restore times, and a checkpointing run's slowdown.

  python -m memobench.bench.checkpoint                 # ~1-2 min on 2 CPU cores
  python -m memobench.bench.checkpoint --models=mlp1x512 --steps=310

Measured in one process, one after the other, so the ratios are comparable on
a noisy machine (absolute times are not): for each model, the same training
run (loop.train, compile excluded) without checkpoints, with the default
interval (--checkpoint_every=1000: here the final save only), and with a save
at every evaluation (the worst case); each the fastest of `--repeats`. Then
the save time of the run's state (blocking part, and until written) and the
restore time (orbax StandardRestore into the abstract state). Finally the
persistent compilation cache: a run's compile time in a fresh process with an
empty cache against one with the cache filled by the first.
Prints a markdown section for docs/BENCHMARKS.md ("Checkpointing (orbax) and
restarts"). A command of its own, not a section of `python -m memobench.bench`:
its runs are whole loop.train runs with their own flags (--steps, --repeats),
and its report is that section of the doc, outside the harness's markers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from memobench import cli
from memobench.bench import library

# Checkpoint intervals of the slowdown table: (label, --checkpoint_every, row name).
EVERY_EVAL_STEPS = 31
ROW_NAMES = {"none": "none (--checkpoint_every=0)", "default": "default (every 1000 steps)",
             "every eval": f"every evaluation ({EVERY_EVAL_STEPS} steps)"}


def _spec(model: str, steps: int):
  spec = library.catalogue_spec("mnist5k", "randlabels", model)
  spec, _ = library.with_overrides(spec, [f"budget.max_steps={steps}",
                                          f"budget.eval_every_steps={EVERY_EVAL_STEPS}"])
  return spec


def _train_time(spec, data, every: int, root: str) -> tuple[float, float, dict]:
  """Training wall time without compilation, process CPU time, checkpointer summary.

  CPU time (all threads of this process, orbax's writers included) is the
  steadier figure on a machine shared with other jobs.
  """
  workdir = tempfile.mkdtemp(dir=root)
  ckpt = library.checkpointer(workdir, every, identity={"bench": 1}) if every else None
  t0, c0 = time.perf_counter(), time.process_time()
  outcome = library.train(spec, data, checkpointer=ckpt)
  if ckpt is not None:
    ckpt.close()
  return (time.perf_counter() - t0 - outcome.compile_s, time.process_time() - c0,
          (ckpt.summary() if ckpt else {}))


def _save_restore(spec, data, root: str) -> dict[str, float]:
  """Save (blocking part; until written) and restore times of the trained state."""
  import jax  # pylint: disable=import-outside-toplevel
  outcome = library.train(dataclasses.replace(spec), data)
  state = outcome.state
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
  blocking, written, restore = [], [], []
  for _ in range(3):
    workdir = tempfile.mkdtemp(dir=root)
    ckpt = library.checkpointer(workdir, 1, identity={"bench": 1})
    t0 = time.perf_counter()
    ckpt.save(1, state, {"curve": [], "finished": None})
    blocking.append(time.perf_counter() - t0)
    ckpt.wait()
    written.append(time.perf_counter() - t0)
    ckpt.close()
    fresh = library.checkpointer(workdir, 1, identity={"bench": 1})
    t0 = time.perf_counter()
    restored = fresh.restore_latest(library.abstract_like(state))
    restore.append(time.perf_counter() - t0)
    assert restored is not None
    fresh.close()
  return {"state_mb": nbytes / 1e6, "save_blocking_s": min(blocking),
          "save_written_s": min(written), "restore_s": min(restore)}


def _compile_cache(root: str) -> tuple[float, float, list[str]]:
  """compile_s of `memobench.main` with an empty cache, then with a filled one."""
  cache = os.path.join(root, "jax_cache")
  times, cmd = [], None
  for i in range(2):
    cmd = [sys.executable, "-m", "memobench.main", "--spec=mnist5k_randlabels",
           f"--workdir={os.path.join(root, f'cc{i}')}", "--set", "budget.max_steps=31",
           "--set", "budget.eval_every_steps=31", "--checkpoint_every=0",
           f"--compilation_cache_dir={cache}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(os.path.join(root, f"cc{i}", "result.json")) as f:
      times.append(json.load(f)["timing"]["compile_s"])
  return times[0], times[1], cmd


def measure(models: list[str], steps: int, repeats: int) -> dict[str, Any]:
  """The slowdown rows, the save/restore rows and the compilation-cache times."""
  library.enable_default_compilation_cache()
  rows, sr_rows = [], []
  with tempfile.TemporaryDirectory() as root:
    for model in models:
      spec = _spec(model, steps)
      data = library.prepare_data(spec)
      _train_time(spec, data, 0, root)  # warm-up: compile cache, page cache
      wall, cpu, saves = {}, {}, {}
      for _ in range(repeats):  # interleaved, so drifts in load hit all three
        for label, every in (("none", 0), ("default", library.default_checkpoint_every()),
                             ("every eval", EVERY_EVAL_STEPS)):
          w, c, summary = _train_time(spec, data, every, root)
          wall[label] = min(wall.get(label, float("inf")), w)
          cpu[label] = min(cpu.get(label, float("inf")), c)
          saves[label] = summary.get("saves", 0)
      rows.append((model, {k: (wall[k], cpu[k], saves[k], wall[k] / wall["none"],
                               cpu[k] / cpu["none"]) for k in wall}))
      sr_rows.append((model, _save_restore(spec, data, root)))
    cold, warm, cmd = _compile_cache(root)
  return {"rows": rows, "save_restore": sr_rows, "cache_cold_s": cold, "cache_warm_s": warm,
          "cache_command": cmd}


def render(measured: dict[str, Any], models: list[str], steps: int, repeats: int) -> str:
  """The "Checkpointing (orbax) and restarts" section of docs/BENCHMARKS.md."""
  cold, warm, cmd = measured["cache_cold_s"], measured["cache_warm_s"], measured["cache_command"]
  lines = ["## Checkpointing (orbax) and restarts", "",
           "Command: `python -m memobench.bench.checkpoint "
           f"--models={','.join(models)} --steps={steps} "
           f"--repeats={repeats}` (one process; fastest of the repeats; ratios are "
           "the comparable figures on a shared machine).", "",
           f"Training time of mnist5k random labels, {steps} steps, evaluation every "
           f"{EVERY_EVAL_STEPS} steps, compile excluded:", "",
           "| model | checkpoints | saves | wall (s) | wall ratio | CPU (s) | CPU ratio |",
           "|---|---|---|---|---|---|---|"]
  for model, by in measured["rows"]:
    for k, (w, c, n, wr, cr) in by.items():
      lines.append(f"| {model} | {ROW_NAMES[k]} | {n} | {w:.2f} | {wr:.3f}x | {c:.2f} | "
                   f"{cr:.3f}x |")
  lines += ["", "Save and restore of the trained TrainState (params + SGD momentum), "
            "fastest of 3:", "",
            "| model | state (MB) | save, blocking part (s) | save, until written (s) "
            "| restore (s) |", "|---|---|---|---|---|"]
  for model, m in measured["save_restore"]:
    lines.append(f"| {model} | {m['state_mb']:.1f} | {m['save_blocking_s']:.3f} | "
                 f"{m['save_written_s']:.3f} | {m['restore_s']:.3f} |")
  lines += ["", "Persistent compilation cache (`--compilation_cache_dir`), compile time of "
            f"`{' '.join(cmd[1:3])} ...` in a fresh process: empty cache {cold:.2f} s, filled "
            f"cache {warm:.2f} s ({cold / max(warm, 1e-9):.1f}x faster).", ""]
  return "\n".join(lines)


def main(argv):
  from absl import flags, logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  measured = measure(f.models, f.steps, f.repeats)
  print(render(measured, f.models, f.steps, f.repeats))


def _fail(message: str) -> None:
  cli.fail("memobench.bench.checkpoint", message, 2)


def _define_flags() -> None:
  # Defined only when run as a program: the harness (harness.py) has a --models
  # flag too, and absl refuses a flag defined twice in one process.
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_list("models", ["mlp1x512", "mlp3x512"], "Models (on mnist5k).")
  flags.DEFINE_integer("steps", 620, f"Training steps per run (eval every {EVERY_EVAL_STEPS}).")
  flags.DEFINE_integer("repeats", 3, "Repeats of each run (the fastest counts).")


def entry():
  from absl import app  # pylint: disable=import-outside-toplevel
  _define_flags()
  app.run(main, flags_parser=cli.flags_parser("memobench.bench.checkpoint"))


if __name__ == "__main__":
  entry()
