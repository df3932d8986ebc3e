"""Section `seeds`: ``--seeds=K`` end to end, one vmapped program against one run after another.

run.run_seeds (what `python -m memobench.main --spec=SPEC --seeds=K` runs:
data, compilation, training, evaluation, scores, result files) with the seeds
in one vmapped program (`vmap='true'`) against one run after another
(`'false'`), on real offline specs, in-process so that JAX start-up is
excluded. The two modes are interleaved so that both see the same
interference. A seed's run is the same up to float rounding (a batched
matmul's sums may be ordered differently), so a stopping step can move by one
evaluation interval; the table shows both where they differ.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from typing import Any

from memobench.bench import library
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class SeedsConfig:
  groups: tuple[tuple[str, int], ...]  # (registered spec, seeds K)
  overrides: tuple[str, ...]           # --set overrides of every run
  repeats: int                         # interleaved repeats; the best counts


FULL = SeedsConfig(groups=(("mnist1d_clean", 8), ("mnist5k_clean", 3), ("mnist5k_clean", 8),
                           ("mnist5k_randlabels", 3)),
                   overrides=(), repeats=2)
QUICK = SeedsConfig(groups=(("digits_clean", 2),),
                    overrides=("budget.max_steps=22", "budget.eval_every_steps=11",
                               "analysis.effective_rank=false"),
                    repeats=1)


def run(ctx: Context, cfg: SeedsConfig) -> Report:
  table = Table("--seeds=K end to end: one vmapped program vs one run after another",
                ["spec", "seeds K", "steps to fit per seed (sequential/vmapped where they "
                 "differ)", "vmapped s", "sequential s",
                 "speed-up", "vmapped compile s", "sequential compile s"])
  for name, k in cfg.groups:
    spec, applied = library.with_overrides(library.get_spec(name), list(cfg.overrides))
    seed_specs = [dataclasses.replace(spec, seed=s) for s in range(k)]
    walls: dict[str, list[float]] = {"true": [], "false": []}
    last: dict[str, list[dict[str, Any]]] = {}
    for _ in range(cfg.repeats):
      for mode in ("true", "false"):  # interleaved: both modes see the same interference
        log(f"seeds: {name} K={k} vmap={mode}")
        with tempfile.TemporaryDirectory() as root:
          t0 = time.perf_counter()
          last[mode] = library.run_seeds(
              seed_specs, [os.path.join(root, f"seed{s}") for s in range(k)],
              nonstandard=applied, vmap=mode)
          walls[mode].append(time.perf_counter() - t0)
    vm, seq = min(walls["true"]), min(walls["false"])
    fits = [r["metrics"]["steps_to_fit"] for r in last["false"]]
    fits_vmapped = [r["metrics"]["steps_to_fit"] for r in last["true"]]
    compile_vm = last["true"][0]["timing"]["compile_s"]
    compile_seq = sum(r["timing"]["compile_s"] for r in last["false"])
    ctx.out.setdefault("seeds", []).append(dict(
        spec=name, k=k, steps_to_fit=fits, steps_to_fit_vmapped=fits_vmapped, vmapped_s=vm,
        sequential_s=seq, speedup=seq / vm, vmapped_compile_s=compile_vm,
        sequential_compile_s=compile_seq))
    table.add(name, k, ", ".join(str(a) if a == b else f"{a}/{b}"
                                 for a, b in zip(fits, fits_vmapped)),
              vm, seq, f"{seq / vm:.2f}x", compile_vm, compile_seq)
  table.notes.append(
      "`run.run_seeds` (what `python -m memobench.main --spec=SPEC --seeds=K` runs) with "
      "`vmap='true'` against `'false'`, in-process, so JAX start-up is excluded; wall time "
      "from loading the data to the last result.json, default checkpointing and analyses "
      f"included. Best of {cfg.repeats} interleaved repeats. In the vmapped program "
      "a seed that has fitted keeps computing (masked out) until half the slots are idle, "
      "when the rest move to a smaller program. A seed's run is the same up to float "
      "rounding: XLA may order a batched matmul's sums differently from a single one, so "
      "over hundreds of steps a loss drifts in the 6th digit and a stopping step can move "
      "by one evaluation interval (shown as sequential/vmapped).")
  return table


SECTION = Section(name="seeds", title="--seeds=K end to end (run.run_seeds): vmapped vs "
                  "sequential", quick=QUICK, full=FULL, run=run)
