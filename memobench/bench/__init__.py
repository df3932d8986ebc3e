"""The performance harness, `python -m memobench.bench`, and the checkpoint benchmark.

  harness.py      the command line, the ordered table of sections, the report
  common.py       what sections share: Section, Context, Table
  timing.py       the fastest of a few repeats
  library.py      every call into the memobench library (the one file to adapt
                  when a library API changes)
  step_timing.py  memobench's train step timed in each fusion mode
  peak.py, mfu.py, breakdown.py, order.py, loop.py, pytorch.py, fusion.py,
  ensemble.py, seeds.py, estimator.py
                  one section each (harness.py lists what they measure)
  targets.py      the report's closing table of targets
  checkpoint.py   `python -m memobench.bench.checkpoint`: checkpoint save,
                  restore and compilation-cache times

Nothing is imported here, so that `python -m memobench.bench.checkpoint` does
not define the harness's flags (both have a --models flag).
"""
