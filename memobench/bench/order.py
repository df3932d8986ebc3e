"""Section `order`: what the epoch's batch order costs when every step computes it.

An epoch's order is jax.random.permutation of the training set (a sort on
device). memobench computed it inside every step before this harness; now
train.fused_steps (and the unfused loop) compute it once per epoch. This
section times mlp1x512's fused chunk both ways, at a mnist5k-sized and a
CIFAR-10-sized training set: the same batches, so the difference is the sort.
"""

from __future__ import annotations

import dataclasses

from memobench.bench import library, step_timing
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class OrderConfig:
  train_sizes: tuple[int, ...]  # training examples permuted
  batch: int
  chunk_steps: int              # steps of one fused chunk
  repeats: int
  budget_s: float


FULL = OrderConfig(train_sizes=(4_000, 50_000), batch=128, chunk_steps=32, repeats=5,
                   budget_s=8.0)
QUICK = OrderConfig(train_sizes=(256,), batch=32, chunk_steps=4, repeats=2, budget_s=1.0)


def run(ctx: Context, cfg: OrderConfig) -> Report:
  batch = cfg.batch
  table = Table(f"Batch order: computed by every step vs once per epoch (mlp1x512, batch "
                f"{batch}, lax.fori_loop of {cfg.chunk_steps} steps)",
                ["training examples", "order per step ms/step", "order per epoch ms/step",
                 "speed-up"])
  for n in cfg.train_sizes:
    log(f"order: {n} examples")
    spec = library.bench_spec("mlp1x512", batch)
    data = step_timing.synthetic_data(step_timing.INPUT_SHAPE, max(n, 4 * batch))
    per_step = step_timing.time_steps(spec, data, "scan_order_per_step", cfg.chunk_steps,
                                      cfg.repeats, cfg.budget_s)
    per_epoch = step_timing.time_steps(spec, data, "scan", cfg.chunk_steps, cfg.repeats,
                                       cfg.budget_s)
    ctx.out.setdefault("order", []).append(dict(
        num_train=n, per_step_sec=per_step.sec_per_step, per_epoch_sec=per_epoch.sec_per_step))
    table.add(f"{n:,}", per_step.sec_per_step * 1e3, per_epoch.sec_per_step * 1e3,
              f"{per_step.sec_per_step / per_epoch.sec_per_step:.2f}x")
  table.notes.append("An epoch's order is jax.random.permutation of the training set (a sort "
                     "on device). memobench computed it inside every step before this harness; "
                     "train.fused_steps (and the unfused loop) now compute it once per epoch. "
                     "Same batches either way.")
  return table


SECTION = Section(name="order", title="the epoch's batch order computed by every step vs "
                  "once per epoch", quick=QUICK, full=FULL, run=run)
