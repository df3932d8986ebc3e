"""<Author> <year>: <the paper's finding, in one line>. (Copy this file to experiments/<paper>.py.)

Command:

    python experiments/_template.py            # <dataset>, <seeds> seeds
    python experiments/_template.py --quick    # smoke test: seconds

Runtime: <wall time and CPU seconds of the default, measured on this machine, with the date>.

The paper (<title, venue>), in its terms: <what it claims, with the section/figure>.

Here: <the protocol: what is trained, what is matched between the settings compared
(training loss, epochs, flow time or fit, and how), what is measured>.

Measured (<dataset, model, seeds, mean +- sample std>): <the table of the summary's numbers>.

Verdict: <agrees / partly / inconclusive under this protocol (and what would decide it) /
disagrees>, and why; the departures from the paper's protocol, each with its reason.

Outputs in the workdir: template.png, summary.json, runs/<cell>/seed<N>/ (spec cells),
cells/<cell>/record.json (computed cells). `--print_config` lists the knobs.

This template runs as it is (a clean vs random-labels pair of spec cells and one
computed cell that reads them); replace its body with the experiment's.
"""

from __future__ import annotations

import dataclasses

from experiments import driver, summaries
from experiments.cells import ComputedCell, SpecCell
from experiments.knobs import knob


@dataclasses.dataclass(frozen=True)
class Config:
  """Every setting the experiment's results depend on: one knob each, typed and bounded."""
  dataset: str = knob("digits", "catalogue dataset")
  seeds: int = knob(3, "seeds per spec cell, trained together", lo=1)
  spec_overrides: tuple[str, ...] = knob((), "spec --set overrides of every spec cell")
  quick: bool = False


QUICK = Config(seeds=1, spec_overrides=summaries.QUICK_SET, quick=True)


@dataclasses.dataclass(frozen=True)
class GapConfig:
  """A computed cell's config: exactly what its compute function reads (hashed for resume)."""
  metric: str


def compute_gap(config: GapConfig, ctx) -> dict:
  """A computed cell: a pure function of its config and its inputs' records."""
  clean, random = ctx.inputs["clean"].record, ctx.inputs["randlabels"].record
  return {"gap": [a["metrics"][config.metric] - b["metrics"][config.metric]
                  for a, b in zip(clean, random)]}


def grid(config: Config) -> list:
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  return [
      *(SpecCell(c, catalogue.get(f"{config.dataset}_{c}"), config.spec_overrides, config.seeds)
        for c in ("clean", "randlabels")),
      ComputedCell("gap", compute_gap, GapConfig("test_accuracy"),
                   needs=("clean", "randlabels")),
  ]


def summarize(config: Config, records: dict) -> dict:
  """Pure: the records of every cell -> summary.json (everything the figures need)."""
  return {"experiment": "template", "dataset": config.dataset, "seeds": config.seeds,
          "quick": config.quick,
          "test_accuracy": {c: summaries.stat(records[c], "test_accuracy")
                            for c in ("clean", "randlabels")},
          "gap": summaries.summarize(records["gap"]["gap"])}


def plot(config: Config, summary: dict) -> dict:
  """Pure: the summary -> {file name: figure}; the driver saves them."""
  from experiments.figures import errorbar, plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(4, 3))
  errorbar(ax, [0, 1], list(summary["test_accuracy"].values()))
  ax.set(xticks=[0, 1], xticklabels=list(summary["test_accuracy"]), ylabel="test accuracy")
  return {"template.png": fig}


def report(config: Config, summary: dict) -> str:
  return f"test accuracy gap, clean - random labels: {summary['gap']['mean']:.3f}"


EXPERIMENT = driver.Experiment(name="template", doc=__doc__, config=Config(), quick=QUICK,
                               grid=grid, summarize=summarize, plot=plot, report=report)

if __name__ == "__main__":
  driver.main(EXPERIMENT)
