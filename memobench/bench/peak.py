"""Section `peak`: the device's matmul FLOP/s, the denominator of model-FLOPs utilisation.

One jitted n x n @ n x n product (2n^3 FLOPs) per call, ~2 GFLOP per timed
repeat, f32 and bf16 (where the backend runs bf16 dots); the peak of a dtype is
its best size. On a shared machine the best sample is the peak, so later
sections (models, breakdown) sample the f32 peak again with `remeasure` and
the MFU they report is against the best of all samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from memobench.bench.common import Context, Report, Section, Table
from memobench.bench.timing import best_time


@dataclasses.dataclass(frozen=True)
class PeakConfig:
  matmul_sizes: tuple[int, ...]
  # An accelerator's peak needs larger products than a CPU's (full runs only).
  accelerator_matmul_sizes: tuple[int, ...] | None
  repeats: int
  budget_s: float             # a measurement stops repeating after this long


FULL = PeakConfig(matmul_sizes=(512, 1024, 2048), accelerator_matmul_sizes=(2048, 4096, 8192),
                  repeats=5, budget_s=8.0)
QUICK = PeakConfig(matmul_sizes=(256,), accelerator_matmul_sizes=None, repeats=2, budget_s=1.0)


def matmul_sizes(cfg: PeakConfig) -> tuple[int, ...]:
  import jax  # pylint: disable=import-outside-toplevel
  if cfg.accelerator_matmul_sizes and jax.default_backend() != "cpu":
    return cfg.accelerator_matmul_sizes
  return cfg.matmul_sizes


def matmul_flops(n: int, dtype_name: str, repeats: int, budget_s: float) -> float:
  """FLOP/s of an n x n x n matmul (2 n^3 FLOPs), one jitted call per product."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  dtype = jnp.dtype(dtype_name)
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
  b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
  f = jax.jit(jnp.matmul).lower(a, b).compile()
  f(a, b).block_until_ready()
  calls = max(1, int(2e9 / (2 * n ** 3)))  # ~2 GFLOP per timed repeat
  def run():
    for _ in range(calls):
      c = f(a, b)
    c.block_until_ready()
  return 2 * n ** 3 * calls / best_time(run, repeats, budget_s)


def remeasure(ctx: Context) -> None:
  """Samples the f32 peak again (largest size): on a shared machine the best sample is the peak.

  Called by later sections after their measurements; nothing when this section
  did not run.
  """
  out = ctx.out
  if "float32" not in out.get("peak_flops", {}):
    return
  cfg = SECTION.config(ctx.quick)
  rate = matmul_flops(matmul_sizes(cfg)[-1], "float32", 2, cfg.budget_s)
  out.setdefault("peak_resamples", []).append(rate)
  out["peak_flops"]["float32"] = max(out["peak_flops"]["float32"], rate)


def f32_peak(out: dict[str, Any]) -> float | None:
  """The best f32 peak sampled so far (None when the peak section did not run)."""
  return out.get("peak_flops", {}).get("float32")


def run(ctx: Context, cfg: PeakConfig) -> Report:
  out, sizes = ctx.out, matmul_sizes(cfg)
  for dtype_name in ("float32", "bfloat16"):
    try:
      rates = [matmul_flops(n, dtype_name, cfg.repeats, cfg.budget_s) for n in sizes]
    except Exception as e:  # pylint: disable=broad-except  (a backend without bf16 dots)
      out.setdefault("peak_unsupported", {})[dtype_name] = type(e).__name__
      continue
    out.setdefault("peak_by_size", {})[dtype_name] = rates
    out.setdefault("peak_flops", {})[dtype_name] = max(rates)

  def table() -> Table:  # after every section, with the resamples of later ones
    t = Table("Peak matmul throughput (the MFU denominator)",
              ["dtype", *[f"n={n} GFLOP/s" for n in sizes], "peak GFLOP/s"])
    for dtype_name, rates in out.get("peak_by_size", {}).items():
      t.add(dtype_name, *[r / 1e9 for r in rates], out["peak_flops"][dtype_name] / 1e9)
    for dtype_name, error in out.get("peak_unsupported", {}).items():
      t.notes.append(f"{dtype_name}: not supported on this backend ({error}).")
    t.notes.append("One jitted n x n @ n x n product (2n^3 FLOPs), best of "
                   f"{cfg.repeats} repeats; the peak is the best size.")
    if out.get("peak_resamples"):
      t.notes.append(
          f"The f32 peak was sampled again after each model (n={sizes[-1]}: "
          + ", ".join(f"{r / 1e9:.0f}" for r in out["peak_resamples"])
          + " GFLOP/s); the peak used for MFU is the best of all samples, so that MFU is not "
          "inflated by a peak measured while the machine was busier.")
    return t
  return table


SECTION = Section(name="peak", title="the device's matmul FLOP/s (the MFU denominator)",
                  quick=QUICK, full=FULL, run=run)
