"""A small experiment for the driver's tests: computed cells that cost no training.

Cells `a0` ... `a{n-1}` compute i * scale (sleeping `sleep` seconds each); `b`
reads only `offset` and `total` needs every a-cell and b (a staged cell). With
`train_steps` > 0 a cell `train` trains digits_clean that many steps through the
training loop (for the SIGTERM test). Every computation appends its cell key to
the file named by $DRIVER_FIXTURE_LOG, so tests count computations across
processes. `python -m tests.driver_fixture --workdir=...` runs it.
"""

from __future__ import annotations

import dataclasses
import os
import time

from experiments import driver
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import knob


@dataclasses.dataclass(frozen=True)
class Config:
  n: int = knob(3, "a-cells", lo=1, hi=100)
  scale: float = knob(1.0, "what every a-cell multiplies by")
  offset: float = knob(0.0, "what b adds")
  sleep: float = knob(0.0, "seconds each a-cell sleeps", lo=0)
  train_steps: int = knob(0, "steps of the training cell (0: none)", lo=0)
  spec_seeds: int = knob(0, "seeds of a digits spec cell (0: none)", lo=0)
  spec_steps: int = knob(10, "steps of the spec cell's runs", lo=1)
  quick: bool = False


def _note(key: str) -> None:
  path = os.environ.get("DRIVER_FIXTURE_LOG")
  if path:
    with open(path, "a") as f:
      f.write(key + "\n")


@dataclasses.dataclass(frozen=True)
class ACell:
  i: int
  scale: float
  sleep: float


def compute_a(config: ACell, ctx) -> dict:
  _note(ctx.key)
  time.sleep(config.sleep)
  with open(os.path.join(ctx.folder, "artifact.txt"), "w") as f:
    f.write(str(config.i))
  return {"value": config.i * config.scale, "nan": float("nan")}


def compute_b(config: dict, ctx) -> dict:
  _note(ctx.key)
  return {"value": config["offset"]}


def compute_total(config: dict, ctx) -> dict:
  _note(ctx.key)
  artifacts = [open(os.path.join(ctx.inputs[k].folder, "artifact.txt")).read()
               for k in ctx.inputs if k.startswith("a")]
  return {"value": sum(v.record["value"] for v in ctx.inputs.values()),
          "artifacts": artifacts}


def compute_train(config: dict, ctx) -> dict:
  """Trains digits_clean `steps` steps through the one loop (no checkpoints)."""
  _note(ctx.key)
  from memobench import catalogue, specs, workload  # pylint: disable=import-outside-toplevel
  from memobench.training import loop  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      f"budget.max_steps={config['steps']}", "budget.eval_every_steps=5",
      "analysis.dynamics=false", "analysis.effective_rank=false"])
  wl = workload.resolve(spec, stops_on_fit=False)
  (outcome,) = loop.train_group(wl, [loop.Member(spec, wl.corrupted_data(0), ctx.log)],
                                vmapped=False)
  return {"status": outcome.status, "steps": outcome.final.step}


def grid(config: Config) -> list:
  out: list = [ComputedCell(f"a{i}", compute_a, ACell(i, config.scale, config.sleep))
               for i in range(config.n)]
  out.append(ComputedCell("b", compute_b, {"offset": config.offset}))
  out.append(ComputedCell("total", compute_total, {},
                          needs=tuple(f"a{i}" for i in range(config.n)) + ("b",)))
  if config.train_steps:
    out.append(ComputedCell("train", compute_train, {"steps": config.train_steps}))
  if config.spec_seeds:
    from memobench import catalogue  # pylint: disable=import-outside-toplevel
    out.append(SpecCell("digits", catalogue.get("digits_clean"), (
        f"budget.max_steps={config.spec_steps}", "budget.eval_every_steps=5",
        "analysis.dynamics=false",
        "analysis.effective_rank=false"), config.spec_seeds))
  return out


def summarize(config: Config, records: dict) -> dict:
  out = {"total": records["total"]["value"], "quick": config.quick}
  if "digits" in records:
    out["vmapped_seeds"] = [r["run"]["vmapped_seeds"] for r in records["digits"]]
  return out


EXPERIMENT = driver.Experiment(
    name="driver_fixture", doc=__doc__, config=Config(), quick=Config(n=2, quick=True),
    grid=grid, summarize=summarize, report=lambda config, summary: f"total {summary['total']}")

if __name__ == "__main__":
  driver.main(EXPERIMENT)
