"""Section `loop`: memobench's training loop against a minimal hand-written jitted loop.

memobench.training.loop.train on a resident offline dataset against what a
user would write without memobench: the same model, data, optimizer and
evaluation schedule (train and test accuracy after every epoch) in a Python
loop of jitted SGD steps. The difference is the framework's overhead (or, with
its fused step chunks, its gain). Training images/s counts only time in
training steps; end to end adds compilation, initialisation and evaluation,
and its CPU seconds are less sensitive to other processes than wall time.
"""

from __future__ import annotations

import dataclasses
import functools
import time

from memobench.bench import library
from memobench.bench.common import Context, Report, Section, Table, log


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  spec: str                   # an offline spec of the registry
  epochs: int
  repeats: int                # alternating repeats of the two loops; each one's best counts


FULL = LoopConfig(spec="mnist5k_randlabels", epochs=10, repeats=3)
QUICK = LoopConfig(spec="digits_randlabels", epochs=1, repeats=1)


def hand_written_loop(spec, data, epochs: int) -> dict[str, float]:
  """A minimal jitted training loop of the same model, data, optimizer and evaluation.

  What a user would write without memobench: a jitted SGD step that gathers its
  batch from the resident arrays, one permutation per epoch, and a jitted
  full-set accuracy on train and test after every epoch (memobench evaluates
  every epoch on the offline specs too).
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel

  t_start = time.perf_counter()
  module = library.build_model(spec.model, data.num_classes)
  n, batch = int(data.x_train.shape[0]), spec.budget.batch_size
  steps_per_epoch = n // batch
  opt = spec.optimizer
  tx = optax.sgd(optax.exponential_decay(opt.lr, steps_per_epoch, opt.lr_decay_per_epoch,
                                         staircase=True), momentum=opt.momentum)
  key = jax.random.key(spec.seed)
  params = jax.jit(lambda k, x: module.init(k, x, train=False)["params"])(
      key, data.x_train[:1])
  opt_state = tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt_state, x, y, order, i):
    idx = jax.lax.dynamic_slice_in_dim(order, i * batch, batch)
    def loss_fn(p):
      logits = module.apply({"params": p}, x[idx], train=False)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(module.apply({"params": params}, x, train=False), -1) == y)

  permutation = jax.jit(lambda k, e: jax.random.permutation(jax.random.fold_in(k, e), n))
  # Compiled before the clock starts, as memobench's loop does, so that training
  # time is steady-state on both sides (end-to-end wall time includes it).
  step = step.lower(params, opt_state, data.x_train, data.y_train, permutation(key, 0),
                    0).compile()
  permutation = permutation.lower(key, 0).compile()
  train_s = 0.0
  for epoch in range(epochs):
    t0 = time.perf_counter()
    order = permutation(key, epoch)
    for i in range(steps_per_epoch):
      params, opt_state, loss = step(params, opt_state, data.x_train, data.y_train, order, i)
    float(loss)
    train_s += time.perf_counter() - t0
    float(accuracy(params, data.x_train, data.y_train))
    float(accuracy(params, data.x_test, data.y_test))
  return {"train_s": train_s, "wall_s": time.perf_counter() - t_start,
          "images": epochs * steps_per_epoch * batch}


def run(ctx: Context, cfg: LoopConfig) -> Report:
  base = library.get_spec(cfg.spec)
  spec = dataclasses.replace(base, budget=dataclasses.replace(
      base.budget, max_epochs=cfg.epochs, max_steps=None, fit_threshold=1.0))
  data = library.prepare_data(spec)
  best = {"memobench": None, "hand": None}
  # Alternate the two so that machine noise hits both alike; keep each one's best.
  for r in range(cfg.repeats):
    log(f"loop: repeat {r + 1}/{cfg.repeats}")
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = library.train(spec, data)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    images = outcome.final.step * spec.budget.batch_size
    mb = {"train_s": images / outcome.images_per_sec, "wall_s": wall, "cpu_s": cpu,
          "images": images}
    c0 = time.process_time()
    hand = hand_written_loop(spec, data, cfg.epochs)
    hand["cpu_s"] = time.process_time() - c0
    for name, m in (("memobench", mb), ("hand", hand)):
      prev = best[name] or m
      best[name] = {**(m if m["train_s"] <= prev["train_s"] else prev),
                    "wall_s": min(m["wall_s"], prev["wall_s"]),
                    "cpu_s": min(m["cpu_s"], prev["cpu_s"])}
  table = Table(f"memobench's loop against a hand-written jitted loop "
                f"({spec.name}, {cfg.epochs} epochs, {spec.model.name}, "
                f"batch {spec.budget.batch_size})",
                ["loop", "training images/s", "end-to-end s (incl. compile, evals)",
                 "end-to-end CPU s", "training speed vs hand-written"])
  ips = {k: v["images"] / v["train_s"] for k, v in best.items()}
  for name, label in (("hand", "hand-written jit (Python loop of jitted steps)"),
                      ("memobench", "memobench.training.loop.train")):
    table.add(label, ips[name], best[name]["wall_s"], best[name]["cpu_s"],
              f"{ips[name] / ips['hand']:.2f}x")
  ctx.out["loop"] = {"spec": spec.name, "epochs": cfg.epochs, **{
      f"{k}_{m}": v[m] for k, v in best.items()
      for m in ("train_s", "wall_s", "cpu_s", "images")},
                     "ratio_train": ips["memobench"] / ips["hand"],
                     "ratio_wall": best["hand"]["wall_s"] / best["memobench"]["wall_s"]}
  table.notes.append(
      "Both loops train the same model with the same optimizer and data (resident on "
      "device) and evaluate train and test accuracy after every epoch. Training images/s "
      "counts only time spent in training steps; end-to-end includes compilation, "
      "initialisation and evaluation; its CPU seconds (all threads of this process) are "
      "less sensitive to other processes than wall time. Best of "
      f"{cfg.repeats} alternating repeats.")
  return table


SECTION = Section(name="loop", title="memobench.training.loop.train against a hand-written "
                  "jitted loop: the framework's overhead", quick=QUICK, full=FULL, run=run)
