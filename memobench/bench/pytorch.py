"""Section `torch`: the same MLPs trained in PyTorch eager, against memobench's step.

mlp1x512 and mlp3x512 rebuilt layer by layer in PyTorch (same layers, SGD
momentum 0.9, random batches from same-sized resident tensors, the same thread
count), run eagerly, against memobench's train step as its loop runs it. Only
when torch is importable (``pip install -e '.[bench]'``). The two alternate so
that machine noise hits both alike; PyTorch's OpenMP threads spin while
waiting, so it suffers more than XLA when other processes share the cores.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math

from memobench.bench import library, mfu, step_timing
from memobench.bench.common import Context, Report, Section, Table, log
from memobench.bench.timing import best_time


@dataclasses.dataclass(frozen=True)
class TorchConfig:
  batch: int                  # a batch the models section measures, to reuse its figure
  num_train: int              # resident training set (as the models section's)
  chunk_steps: int            # memobench's fused chunk (as the models section's)
  torch_steps: int            # PyTorch steps per timed repeat
  rounds: int                 # alternating rounds of the two
  repeats: int
  budget_s: float


# memobench's side is timed as the models table times it (same data, same chunk),
# so that the models table's figure of the same model and batch is one more sample.
FULL = TorchConfig(batch=128, num_train=mfu.FULL.num_train, chunk_steps=mfu.FULL.chunk_steps,
                   torch_steps=50, rounds=2, repeats=5, budget_s=8.0)
QUICK = TorchConfig(batch=32, num_train=mfu.QUICK.num_train, chunk_steps=mfu.QUICK.chunk_steps,
                    torch_steps=4, rounds=1, repeats=2, budget_s=1.0)


def torch_mlp_images_per_s(hidden: tuple[int, ...], input_shape: tuple[int, ...], batch: int,
                           num_train: int, steps: int, repeats: int, budget_s: float,
                           threads: int) -> float:
  """Images/s of the same MLP trained by PyTorch eager (SGD momentum 0.9, resident data)."""
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  width = math.prod(input_shape)
  layers, d = [torch.nn.Flatten()], width
  for h in hidden:
    layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
    d = h
  model = torch.nn.Sequential(*layers, torch.nn.Linear(d, 10))
  opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
  x = torch.randn(num_train, *input_shape)
  y = torch.randint(0, 10, (num_train,))
  steps_per_epoch = num_train // batch
  counter = [0]
  order = [torch.randperm(num_train)]

  def step():
    i = counter[0] % steps_per_epoch
    if i == 0:
      order[0] = torch.randperm(num_train)
    idx = order[0][i * batch:(i + 1) * batch]
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
    loss.backward()
    opt.step()
    counter[0] += 1

  for _ in range(3):
    step()
  def run():
    for _ in range(steps):
      step()
  return batch * steps / best_time(run, repeats, budget_s)


def run(ctx: Context, cfg: TorchConfig) -> Report:
  table = Table("PyTorch (eager, same machine and thread count) against memobench",
                ["model", "batch", "PyTorch images/s", "memobench images/s", "memobench / PyTorch"])
  if importlib.util.find_spec("torch") is None:
    table.notes.append("Skipped: torch is not importable (pip install -e '.[bench]').")
    return table
  import torch  # pylint: disable=import-outside-toplevel
  threads = ctx.environment["cpu_count"]
  measured = {(m["model"], m["batch"]): m["images_per_s"] for m in ctx.out.get("models", [])}
  for model in ctx.models:
    if model not in step_timing.MLP_HIDDEN:
      continue
    batch = cfg.batch
    spec, data = library.bench_spec(model, batch), step_timing.model_data(cfg.num_train, batch)
    n = int(data.x_train.shape[0])
    # Alternate the two so that machine noise hits both alike; keep each one's best
    # (memobench's models-table figure counts as one more sample).
    ips, mb = 0.0, measured.get((model, batch), 0.0)
    for r in range(cfg.rounds):
      log(f"torch: {model} batch {batch} (round {r + 1}/{cfg.rounds})")
      t = step_timing.time_steps(spec, data, step_timing.memobench_mode(model),
                                 cfg.chunk_steps, cfg.repeats, cfg.budget_s)
      mb = max(mb, batch / t.sec_per_step)
      ips = max(ips, torch_mlp_images_per_s(step_timing.MLP_HIDDEN[model],
                                            step_timing.INPUT_SHAPE, batch, n,
                                            cfg.torch_steps, cfg.repeats, cfg.budget_s,
                                            threads))
    ctx.out.setdefault("torch", []).append(dict(
        model=model, batch=batch, torch_images_per_s=ips, memobench_images_per_s=mb,
        ratio=mb / ips))
    table.add(model, batch, ips, mb, f"{mb / ips:.2f}x")
  table.notes.append(f"torch {torch.__version__}, torch.set_num_threads({threads}); the same "
                     "layers, SGD momentum 0.9, random batches from the same-sized resident "
                     "tensors. memobench: its train step as its loop runs it (lax.fori_loop "
                     f"chunks of {cfg.chunk_steps} steps). Best of {cfg.rounds} alternating "
                     "rounds each. PyTorch's OpenMP threads spin while waiting, so it "
                     "suffers more than XLA when other processes share the cores.")
  return table


SECTION = Section(name="torch", title="the same MLPs trained in PyTorch eager, when torch "
                  "is importable", quick=QUICK, full=FULL, run=run)
