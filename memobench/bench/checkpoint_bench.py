"""What checkpointing costs: save and restore times, and a checkpointing run's slowdown.

  python -m memobench.bench.checkpoint_bench                 # ~1-2 min on 2 CPU cores
  python -m memobench.bench.checkpoint_bench --models=mlp1x512 --steps=310

Measured in one process, one after the other, so the ratios are comparable on
a noisy machine (absolute times are not): for each model, the same training
run (train.train, compile excluded) without checkpoints, with the default
interval (--checkpoint_every=1000: here the final save only), and with a save
at every evaluation (the worst case); each the fastest of `--repeats`. Then
the save time of the run's state (blocking part, and until written) and the
restore time (orbax StandardRestore into the abstract state). Finally the
persistent compilation cache: a run's compile time in a fresh process with an
empty cache against one with the cache filled by the first.
Prints a markdown section for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags, logging

_MODELS = flags.DEFINE_list("models", ["mlp1x512", "mlp3x512"], "Models (on mnist5k).")
_STEPS = flags.DEFINE_integer("steps", 620, "Training steps per run (eval every 31).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats of each run (the fastest counts).")


def _spec(model: str, steps: int):
  from memobench import catalogue, specs  # pylint: disable=import-outside-toplevel
  spec = catalogue.make_spec("mnist5k", "randlabels", model)
  spec, _ = specs.with_overrides(spec, [f"budget.max_steps={steps}",
                                        "budget.eval_every_steps=31"])
  return spec


def _train_time(spec, data, every: int, root: str) -> tuple[float, float, dict]:
  """Training wall time without compilation, process CPU time, checkpointer summary.

  CPU time (all threads of this process, orbax's writers included) is the
  steadier figure on a machine shared with other jobs.
  """
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  from memobench.training import train
  workdir = tempfile.mkdtemp(dir=root)
  ckpt = checkpoint.Checkpointer(workdir, every, identity={"bench": 1}) if every else None
  t0, c0 = time.perf_counter(), time.process_time()
  outcome = train.train(spec, data, log=lambda _: None, checkpointer=ckpt)
  if ckpt is not None:
    ckpt.close()
  return (time.perf_counter() - t0 - outcome.compile_s, time.process_time() - c0,
          (ckpt.summary() if ckpt else {}))


def _save_restore(spec, data, root: str) -> dict[str, float]:
  """Save (blocking part; until written) and restore times of the trained state."""
  import jax  # pylint: disable=import-outside-toplevel
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  from memobench.training import train
  outcome = train.train(dataclasses.replace(spec), data, log=lambda _: None)
  state = outcome.state
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
  blocking, written, restore = [], [], []
  for _ in range(3):
    workdir = tempfile.mkdtemp(dir=root)
    ckpt = checkpoint.Checkpointer(workdir, 1, identity={"bench": 1})
    t0 = time.perf_counter()
    ckpt.save(1, state, {"curve": [], "finished": None})
    blocking.append(time.perf_counter() - t0)
    ckpt.wait()
    written.append(time.perf_counter() - t0)
    ckpt.close()
    fresh = checkpoint.Checkpointer(workdir, 1, identity={"bench": 1})
    t0 = time.perf_counter()
    restored = fresh.restore_latest(checkpoint.abstract_like(state))
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


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from memobench import checkpoint  # pylint: disable=import-outside-toplevel
  from memobench.training import train
  checkpoint.enable_compilation_cache(checkpoint.default_compilation_cache_dir())
  rows, sr_rows = [], []
  with tempfile.TemporaryDirectory() as root:
    for model in _MODELS.value:
      spec = _spec(model, _STEPS.value)
      data = train.prepare_data(spec)
      _train_time(spec, data, 0, root)  # warm-up: compile cache, page cache
      wall, cpu, saves = {}, {}, {}
      for _ in range(_REPEATS.value):  # interleaved, so drifts in load hit all three
        for label, every in (("none", 0), ("default", checkpoint.DEFAULT_EVERY_STEPS),
                             ("every eval", 31)):
          w, c, summary = _train_time(spec, data, every, root)
          wall[label] = min(wall.get(label, float("inf")), w)
          cpu[label] = min(cpu.get(label, float("inf")), c)
          saves[label] = summary.get("saves", 0)
      rows.append((model, {k: (wall[k], cpu[k], saves[k], wall[k] / wall["none"],
                               cpu[k] / cpu["none"]) for k in wall}))
      sr_rows.append((model, _save_restore(spec, data, root)))
    cold, warm, cmd = _compile_cache(root)

  lines = ["## Checkpointing (orbax) and restarts", "",
           "Command: `python -m memobench.bench.checkpoint_bench "
           f"--models={','.join(_MODELS.value)} --steps={_STEPS.value} "
           f"--repeats={_REPEATS.value}` (one process; fastest of the repeats; ratios are "
           "the comparable figures on a shared machine).", "",
           f"Training time of mnist5k random labels, {_STEPS.value} steps, evaluation every "
           "31 steps, compile excluded:", "",
           "| model | checkpoints | saves | wall (s) | wall ratio | CPU (s) | CPU ratio |",
           "|---|---|---|---|---|---|---|"]
  names = {"none": "none (--checkpoint_every=0)", "default": "default (every 1000 steps)",
           "every eval": "every evaluation (31 steps)"}
  for model, by in rows:
    for k, (w, c, n, wr, cr) in by.items():
      lines.append(f"| {model} | {names[k]} | {n} | {w:.2f} | {wr:.3f}x | {c:.2f} | {cr:.3f}x |")
  lines += ["", "Save and restore of the trained TrainState (params + SGD momentum), "
            "fastest of 3:", "",
            "| model | state (MB) | save, blocking part (s) | save, until written (s) "
            "| restore (s) |", "|---|---|---|---|---|"]
  for model, m in sr_rows:
    lines.append(f"| {model} | {m['state_mb']:.1f} | {m['save_blocking_s']:.3f} | "
                 f"{m['save_written_s']:.3f} | {m['restore_s']:.3f} |")
  lines += ["", "Persistent compilation cache (`--compilation_cache_dir`), compile time of "
            f"`{' '.join(cmd[1:3])} ...` in a fresh process: empty cache {cold:.2f} s, filled "
            f"cache {warm:.2f} s ({cold / max(warm, 1e-9):.1f}x faster).", ""]
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
