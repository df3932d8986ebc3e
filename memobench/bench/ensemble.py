"""Section `ensemble`: K models of mlp1x512 in one vmapped program against K sequential ones.

Each model is memobench's own init and train step with its own seed (own
initialisation and batch order, each epoch's order computed once), vmapped
over the models in one jitted program; the data is shared. Two baselines: K
times the steady-state time of the same program for one model (compilation
excluded on both sides), and K memobench.training.loop.train runs of the same spec
(what K seeds cost through memobench's loop: compilation, fused training, one
final evaluation each). A note explains the result on this backend: the rate
of the batched matmul that vmapping layer 1 produces against K single ones.
"""

from __future__ import annotations

import dataclasses
import time

from memobench.bench import library
from memobench.bench.common import Context, Report, Section, Table, log
from memobench.bench.timing import best_time


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
  datasets: tuple[str, ...]   # offline datasets
  ks: tuple[int, ...]         # models per program
  epochs: int
  repeats: int
  budget_s: float
  # The population program again with its models in slices of this many
  # (programs.map_members; train_group(members_per_slice=...)), None: not measured.
  members_per_slice: int | None = 1


FULL = EnsembleConfig(datasets=("mnist1d", "mnist5k"), ks=(1, 8, 32, 128), epochs=2,
                      repeats=5, budget_s=8.0)
QUICK = EnsembleConfig(datasets=("digits",), ks=(4,), epochs=1, repeats=2, budget_s=1.0)


def ensemble_program(spec, data, num_models: int, num_epochs: int, vmapped: bool = True,
                     members_per_slice: int | None = None):
  """A compiled program that trains `num_models` models of `spec` for `num_epochs` epochs.

  Each model is memobench's own init and train step with its own run key (so its
  own initialisation and batch order), vmapped over the models; the data is
  shared. Returns (compiled, args, compile_s). With vmapped=False (one model) the
  program is the plain single-model one, the baseline of a sequential run.
  members_per_slice: the models in slices of that many, one slice after another
  (programs.map_members, as train_group(members_per_slice=...) runs them).
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  shape, n = tuple(data.x_train.shape[1:]), int(data.x_train.shape[0])

  def one(key, data):
    steps = library.make_steps(spec, data.num_classes, shape, n, key)
    state = steps.init(library.init_key(key))
    spe = steps.schedule.steps_per_epoch
    # Epochs outside, steps inside: each model's order once per epoch. (Under vmap
    # the lax.cond of train.fused_steps would become a select that sorts every step.)
    def epoch(e, state):
      order = steps.epoch_order(e)
      return jax.lax.fori_loop(0, spe, lambda _, s: steps.train_step(s, data, order), state)
    state = jax.lax.fori_loop(0, num_epochs, epoch, state)
    # A scalar that depends on every final parameter, so nothing is dead code.
    checksum = sum(jnp.sum(p) for p in jax.tree.leaves(state.params))
    return state.loss_sum + 0.0 * checksum

  keys = jax.vmap(library.run_key)(jnp.arange(num_models, dtype=jnp.uint32)) \
      if vmapped else library.run_key(0)
  if not vmapped:
    fn = one
  else:
    def fn(keys, data):
      return library.map_members(one, (keys, data), (True, False), members_per_slice)
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(keys, data).compile()
  return compiled, (keys, data), time.perf_counter() - t0


def batched_matmul_rates(k: int, repeats: int, budget_s: float) -> tuple[float, float]:
  """FLOP/s of k batched (128x784 @ 784x512) products vs one such product.

  The batched product is what vmapping mlp1x512's first layer over k models
  with their own batches produces; this explains the ensembles' throughput.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  x, w = jnp.ones((k, 128, 784)), jnp.ones((k, 784, 512))
  flops = 2 * 128 * 784 * 512
  batched = jax.jit(lambda x, w: jnp.einsum("kbi,kio->kbo", x, w)).lower(x, w).compile()
  single = jax.jit(jnp.matmul).lower(x[0], w[0]).compile()
  def run_batched():
    jax.block_until_ready(batched(x, w))
  def run_single():
    for _ in range(k):
      r = single(x[0], w[0])
    jax.block_until_ready(r)
  run_batched()
  run_single()
  return (k * flops / best_time(run_batched, repeats, budget_s),
          k * flops / best_time(run_single, repeats, budget_s))


def interleaved_best(programs: dict, repeats: int, budget_s: float) -> dict[str, float]:
  """Each program's fastest call, the programs called in turn (after one warm-up each)."""
  times = {name: [] for name in programs}
  for fn in programs.values():
    fn()
  start = time.perf_counter()
  for _ in range(max(repeats, 1)):
    for name, fn in programs.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
    if time.perf_counter() - start > budget_s * len(programs):
      break
  return {name: min(t) for name, t in times.items()}


def run(ctx: Context, cfg: EnsembleConfig) -> Report:
  import jax  # pylint: disable=import-outside-toplevel
  out = ctx.out
  table = Table("vmapped ensembles of mlp1x512 against sequential runs",
                ["dataset", "models K", "steps per model", "one program s", "compile s",
                 "K x single-model program s", "vs single-model programs",
                 f"slices of {cfg.members_per_slice} s", "slices vs single-model programs",
                 "K x memobench.training.loop.train s", "vs memobench.training.loop.train runs"])
  for ds_name in cfg.datasets:
    spec = library.bench_spec("mlp1x512", 128, ds_name)
    dataset = library.load_dataset(spec.dataset)
    batch = min(128, dataset.num_train)
    num_steps = cfg.epochs * (dataset.num_train // batch)
    spec = dataclasses.replace(spec, budget=dataclasses.replace(
        spec.budget, batch_size=batch, max_epochs=cfg.epochs, eval_every_steps=num_steps))
    data = jax.device_put(library.prepare_data(spec, dataset=dataset))
    # Baseline 1: the same single-model program, compiled once, run K times.
    single, args, _ = ensemble_program(spec, data, 1, cfg.epochs, vmapped=False)
    run_single = lambda: jax.block_until_ready(single(*args))  # noqa: E731
    # Baseline 2: what K seeds cost through memobench's loop today: one
    # loop.train run each (compile, fused training, one final evaluation).
    t_run = best_time(lambda: library.train(spec, data), 2, cfg.budget_s)
    for k in cfg.ks:
      log(f"ensemble: {ds_name} K={k}")
      compiled, args_k, compile_s = ensemble_program(spec, data, k, cfg.epochs)
      programs = {"single": run_single,
                  "vmapped": lambda c=compiled, a=args_k: jax.block_until_ready(c(*a))}
      if cfg.members_per_slice is not None:
        sliced, args_s, _ = ensemble_program(spec, data, k, cfg.epochs,
                                             members_per_slice=cfg.members_per_slice)
        programs["sliced"] = lambda c=sliced, a=args_s: jax.block_until_ready(c(*a))
      # Interleaved, each the best of its repeats: the baseline and the population
      # programs see the same interference from other processes.
      best = interleaved_best(programs, cfg.repeats, cfg.budget_s)
      t_one, t_k, t_sliced = best["single"], best["vmapped"], best.get("sliced")
      ratio, ratio_runs = k * t_one / t_k, k * t_run / (t_k + compile_s)
      out.setdefault("ensemble", []).append(dict(
          dataset=ds_name, k=k, steps=num_steps, sec=t_k, compile_s=compile_s,
          sequential_sec=k * t_one, ratio=ratio, train_run_sec=t_run,
          ratio_vs_train_runs=ratio_runs, sliced_sec=t_sliced,
          sliced_ratio=None if t_sliced is None else k * t_one / t_sliced))
      table.add(ds_name, k, num_steps, t_k, compile_s, k * t_one, f"{ratio:.2f}x", t_sliced,
                None if t_sliced is None else f"{k * t_one / t_sliced:.2f}x",
                k * t_run, f"{ratio_runs:.1f}x")
  table.notes.append(
      "Each model is memobench's init + train step with its own seed (own initialisation "
      "and batch order; each epoch's order computed once), batch 128, for `steps` steps; "
      "the ensemble vmaps it over K seeds in one jitted program. `vs single-model "
      "programs`: K x the steady-state time of the same program for one model, "
      "compilation excluded on both sides, the programs timed in turn (best of "
      f"{cfg.repeats} rounds). `vs memobench.training.loop.train runs`: K x one "
      "loop.train run of the same spec and epochs (compilation, fused training, one "
      "final evaluation), against the ensemble's compile + run time. `slices of c`: the same "
      "population program with its models mapped in slices of c (jax.lax.map over slices, "
      "each vmapped; training.loop.train_group(members_per_slice=c)): a slice's parameters, "
      "momentum and activations stay in the caches for its steps, where K stacked models "
      "stream through memory every step. With c = 1 each model's steps are the single "
      "program's, bitwise.")
  k = max(cfg.ks)
  batched, single = batched_matmul_rates(k, cfg.repeats, cfg.budget_s)
  out["batched_matmul"] = {"k": k, "batched_flops": batched, "single_flops": single}
  table.notes.append(
      f"Why on this backend: {k} batched 128x784 @ 784x512 products (vmapped mlp1x512 "
      f"layer 1) run at {batched / 1e9:.0f} GFLOP/s, against {single / 1e9:.0f} GFLOP/s for "
      f"{k} separate calls of the single product.")
  return table


SECTION = Section(name="ensemble", title="K vmapped mlp1x512 models in one program against "
                  "K sequential programs", quick=QUICK, full=FULL, run=run)
