"""The one training loop: 1..K members of one workload, alone or in one vmapped program.

`train_group(workload, members)` trains runs that differ only in their seed
(`train` is a group of one). The loop advances every member one evaluation
interval at a time (training/programs.py compiles the programs that do it),
evaluates it on its whole training and test sets, records the evaluation,
asks the workload's stopping rule (workload.stop_status) whether it has
stopped, and checkpoints. It knows no metric: per-example metrics see each
evaluation through the member's `on_eval` callback.

Checkpoints and preemption (checkpoint.py): the loop checkpoints at evaluation
boundaries, resumes from the latest good checkpoint, and on SIGTERM saves and
returns with status 'preempted'. A resumed run reproduces an uninterrupted one
exactly: batches, dropout keys and chunking are functions of the step alone.

Step fusion: models without convolutions run `eval_every_steps` steps fused in
one jitted loop; convolutional models on CPU run a Python loop of jitted
steps, because XLA:CPU runs convolutions inside loop bodies ~10x slower (see
docs/BENCHMARKS.md).

Multi-host: every process holds the same (deterministic) dataset; it becomes a
replicated global array (runtime.replicate), so each device gathers its
own slice of every global batch from its host's copy. Evaluation is sharded the
same way and its outputs are replicated, so every process can read them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Protocol, runtime_checkable

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from memobench import checkpoint, prng, results, runtime, specs
from memobench.data import corruptions
from memobench.training import programs
from memobench.training.evaluation import EVAL_BATCH, chunked
from memobench.training.steps import TrainState, make_steps
from memobench import workload as workload_lib
from memobench.workload import Schedule, Workload


@dataclasses.dataclass
class Evaluation:
  step: int
  epoch: float
  train_loss: float           # mean training-batch loss since the previous evaluation
  train_accuracy: float       # full training set, on the labels trained on
  train_eval_loss: float
  test_accuracy: float
  test_loss: float
  learning_rate: float
  images_per_sec: float
  wall_s: float
  train_predictions: np.ndarray = dataclasses.field(repr=False, default=None)
  test_predictions: np.ndarray = dataclasses.field(repr=False, default=None)
  # () -> (module, params, model_state) of the member at this evaluation, for
  # trackers that evaluate the model (critical sample ratio over training);
  # set only for the on_eval call. Not part of the curve.
  model: Callable[[], tuple[Any, Any, Any]] | None = dataclasses.field(
      repr=False, default=None, compare=False)

  def curve_row(self) -> dict[str, Any]:
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if not f.name.endswith("predictions") and f.name != "model"}


@dataclasses.dataclass
class RunOutcome:
  status: str                  # completed | budget_exhausted | diverged | preempted
  final: Evaluation
  curve: list[Evaluation]
  steps_to_fit: int | None
  time_to_fit_s: float | None
  compile_s: float
  wall_s: float
  images_per_sec: float
  state: TrainState
  data: corruptions.CorruptedData
  schedule: Schedule
  preemption_count: int = 0    # preemptions over the run's life, this one included
  resumed_from_step: int | None = None  # the checkpoint step this session started from
  checkpoint: dict[str, Any] | None = None  # Checkpointer.summary()
  # The seeds trained in the same vmapped program as this run (itself included),
  # whose wall and compile times it shares; None when it trained alone.
  vmapped_seeds: list[int] | None = None
  # That program's members per slice (programs.map_members; None: one vmap), which
  # its float results depend on; None when it trained alone.
  members_per_slice: int | None = None
  # Wall seconds in training chunks (checkpointed: the run's life), and this
  # process's CPU seconds in them (all threads; this session only). A vmapped
  # group's members share theirs.
  train_s: float = 0.0
  train_cpu_s: float = 0.0


def evaluate_split(eval_fn, state, x, y, n_devices, stacked=False):
  """Predictions and per-example losses over a whole split, in fixed-size chunks.

  stacked: `state`, `x` and `y` have a leading member axis (a vmapped group);
  the outputs are then (members, examples). Every chunk has one shape (the last
  is padded), so the evaluation compiles once.
  """
  axis = 1 if stacked else 0
  n = x.shape[axis]
  chunk = min(EVAL_BATCH, math.ceil(n / n_devices) * n_devices)
  chunk = math.ceil(chunk / n_devices) * n_devices

  def evaluate(start, stop):
    xs = jax.lax.slice_in_dim(x, start, stop, axis=axis)
    ys = jax.lax.slice_in_dim(y, start, stop, axis=axis)
    pad = chunk - xs.shape[axis]
    if pad:
      xs = jnp.concatenate([xs, jnp.zeros((*xs.shape[:axis], pad, *xs.shape[axis + 1:]),
                                          xs.dtype)], axis=axis)
      ys = jnp.concatenate([ys, jnp.zeros((*ys.shape[:axis], pad), ys.dtype)], axis=axis)
    p, l = eval_fn(state.params, state.model_state, xs, ys)
    # Replicated outputs: readable on every process of a multi-host run.
    return runtime.fetch(p)[..., :chunk - pad], runtime.fetch(l)[..., :chunk - pad]
  return chunked(evaluate, n, batch=chunk, axis=-1)


@runtime_checkable
class Resumable(Protocol):
  """An on_eval tracker whose state survives a resume (the loop checks isinstance).

  `checkpoint_state()` returns a pytree of arrays of fixed shapes (saved with
  each checkpoint, and used as the restore target on a fresh tracker), or None
  for nothing to save; `restore_checkpoint_state(tree)` loads it back.
  """

  def checkpoint_state(self) -> Any: ...

  def restore_checkpoint_state(self, tree: Any) -> None: ...


@dataclasses.dataclass(frozen=True)
class Stop:
  """Why and when a run stopped: the loop's stop decision.

  Checkpoints hold it as the dict `record()` gives under the loop record's
  "finished" key (None while the run goes on): the same JSON as before the
  record was typed, so older checkpoints restore and new ones read the same.
  """
  status: str                   # workload.COMPLETED | BUDGET_EXHAUSTED | DIVERGED
  steps_to_fit: int | None      # the step of the evaluation that fitted, if it fitted
  time_to_fit_s: float | None   # the run's wall clock then

  def record(self) -> dict[str, Any]:
    return {"status": self.status, "steps_to_fit": self.steps_to_fit,
            "time_to_fit_s": self.time_to_fit_s}

  @classmethod
  def from_record(cls, record: dict[str, Any] | None) -> Stop | None:
    return None if record is None else cls(record["status"], record["steps_to_fit"],
                                           record["time_to_fit_s"])


@dataclasses.dataclass
class Member:
  """One run of a group that `train_group` trains: its seed's spec, data and outputs.

  key: the run's root key, from which the loop derives its initialization,
  batch order and dropout (prng.INIT, SHUFFLE, DROPOUT); default
  prng.run_key(spec.seed). The subsample estimator's models pass their own.
  Members that pass the same `data` object share one copy of it on device.
  loss_weights: one weight per training example, or None (all 1). The batch
  loss is then sum_b w_b loss_b / sum_b w_b over the batch's slots, the batch
  order unchanged: weight 0 drops an example's slot from the loss, which is
  training without it on the same batch order (leave-one-out,
  estimators/leave_one_out.py). Members of one vmapped group may differ in it.
  """
  spec: specs.Spec
  data: corruptions.CorruptedData
  log: Callable[[str], None] = print
  on_eval: Callable[[Evaluation], None] | None = None
  checkpointer: checkpoint.Checkpointer | None = None
  key: jax.Array | None = None
  loss_weights: np.ndarray | None = None

  def run_key(self) -> jax.Array:
    return self.key if self.key is not None else prng.run_key(self.spec.seed)


def train(workload: Workload, data: corruptions.CorruptedData,
          log: Callable[[str], None] = print,
          on_eval: Callable[[Evaluation], None] | None = None,
          checkpointer: checkpoint.Checkpointer | None = None) -> RunOutcome:
  """Trains `workload` on `data` until its stopping rule or a preemption stops it.

  With a `checkpointer`, resumes from its latest good checkpoint and saves at
  evaluation boundaries when due, at the end, and on preemption (SIGTERM).
  """
  member = Member(workload.spec, data, log, on_eval, checkpointer)
  return train_group(workload, [member], vmapped=False)[0]


def train_group(workload: Workload, members: list[Member], vmapped: bool,
                members_per_slice: int | None | str = programs.AUTO) -> list[RunOutcome]:
  """Trains runs of `workload` that differ only in their seed; one outcome per member.

  vmapped=False: one after another, each with its own program (what `train` does).
  vmapped=True: side by side in ONE jitted program, `jax.vmap` over the members'
  keys, states and corrupted data (taken unbatched when every member passes
  the same data object), evaluated together. Each member keeps its own
  batches, dropout keys, chunking, stopping rule and checkpoints, so it ends as
  its single run would (bitwise in slices of one, the CPU default; up to float
  rounding in one vmap), and its checkpoints are a single
  run's: either way resumes them. (XLA may sum a batched matmul in another order
  than a single one: losses then drift in the 6th digit over hundreds of steps,
  and a discrete outcome such as the stopping step can move by one evaluation;
  tests/test_seeds.py and docs/BENCHMARKS.md measure it.) A member that
  has stopped keeps its final state while the others go on (its slot still
  computes, masked out: the price of one program); once half the slots are
  masked out, the rest go on in a smaller program (one recompilation). Members
  whose checkpoints resume from different steps train as separate vmapped
  groups, one per step.
  On preemption every member still training checkpoints; members of a group not
  reached yet then train one evaluation interval and checkpoint too.
  members_per_slice: a vmapped group's program runs its members in slices of
  this many, one slice after another (programs.map_members); None: all in one vmap;
  "auto" (the default): the backend's choice, programs.default_members_per_slice
  (slices of one on CPU, so that a vmapped member is its single run, bitwise).
  """
  spec = workload.spec
  base = dataclasses.replace(spec, seed=0)
  if any(dataclasses.replace(m.spec, seed=0) != base for m in members):
    raise ValueError("train_group: members must differ only in their seed")
  if vmapped and not workload.fused:
    raise specs.SpecError(f"{spec.model.name} steps are not fused on "
                          f"{jax.default_backend()}, so its seeds cannot share a vmapped "
                          "program; train them one after another")
  with runtime.PreemptionWatcher() as watcher:
    group = _Group(workload, members, members_per_slice)
    runs = [group.resume(m) for m in members]
    todo = [r for r in runs if r.finished is None and r.step < group.schedule.total_steps]
    if vmapped:
      by_step: dict[int, list[_MemberState]] = {}
      for r in todo:
        by_step.setdefault(r.step, []).append(r)
      if len(by_step) > 1:
        members[0].log("the seeds resume from different steps (" + ", ".join(
            f"step {s}: seeds {', '.join(str(r.seed) for r in rs)}"
            for s, rs in sorted(by_step.items())) + "); one vmapped program per step")
      partitions = list(by_step.values())
    else:
      partitions = [[r] for r in todo]
    for part in partitions:
      group.train(part, vmapped and len(part) > 1, watcher)
    return [group.outcome(r) for r in runs]


@dataclasses.dataclass
class _MemberState:
  """One member in the loop: its TrainState, data, and what its checkpoints' `loop` holds."""
  member: Member
  key: jax.Array
  state: TrainState
  data: corruptions.CorruptedData      # replicated on the mesh
  y_train: np.ndarray
  y_test: np.ndarray
  tracker: Any = None
  curve: list[Evaluation] = dataclasses.field(default_factory=list)
  finished: Stop | None = None
  train_time: float = 0.0
  train_cpu_time: float = 0.0  # this session's only (not checkpointed)
  trained_images: int = 0
  wall_before: float = 0.0
  preemption_count: int = 0
  resumed_from: int | None = None
  preempted: bool = False
  compile_s: float = 0.0
  vmapped_seeds: list[int] | None = None
  # This session's wall clock: from the group's start to the end of its training.
  t_start: float = 0.0
  t_end: float | None = None

  @property
  def seed(self) -> int:
    return self.member.spec.seed

  @property
  def step(self) -> int:
    return int(self.state.step)


class _Group:
  """What the members of a group share: the workload, the mesh and the jitted programs."""

  def __init__(self, workload: Workload, members: list[Member],
               members_per_slice: int | None | str = programs.AUTO):
    self.t_start = time.perf_counter()
    self.workload = workload
    if members_per_slice == programs.AUTO:
      members_per_slice = programs.default_members_per_slice()
    elif members_per_slice is not None and (isinstance(members_per_slice, bool) or
                                            not isinstance(members_per_slice, int) or
                                            members_per_slice < 1):
      raise ValueError(f"members_per_slice={members_per_slice!r}: a positive integer, "
                       f"None (one vmap) or {programs.AUTO!r}")
    self.members_per_slice = members_per_slice
    self.spec = spec = members[0].spec
    self.mesh = mesh = runtime.make_mesh()
    self.n_dev = mesh.size
    if spec.budget.batch_size % self.n_dev:
      raise specs.SpecError(f"budget.batch_size={spec.budget.batch_size} does not divide "
                            f"over {self.n_dev} devices")
    self.first = members[0]
    self.template = make_steps(workload, self.first.run_key(), mesh,
                               loss_weights=self.first.loss_weights)
    self.schedule = workload.schedule
    self.replicated = NamedSharding(mesh, P())
    self.init = jax.jit(self.template.init, out_shardings=self.replicated)
    self.eval_fn, self.stacked_eval_fn = programs.eval_programs(self.template, mesh)
    self.shared_eval_fn = programs.eval_programs(self.template, mesh, shared_data=True)[1]
    # Members' data replicated on the mesh, and its labels on the host, once per
    # data object (members that share one keep one copy): id -> (data, y_train, y_test).
    self._data: dict[int, tuple[corruptions.CorruptedData, np.ndarray, np.ndarray]] = {}

  def _member_data(self, member: Member):
    if id(member.data) not in self._data:
      d = member.data  # the loop's input boundary: one integer label per example
      chex.assert_equal_shape_prefix([d.x_train, d.y_train], 1)
      chex.assert_equal_shape_prefix([d.x_test, d.y_test], 1)
      chex.assert_type([d.y_train, d.y_test], int)
      data = runtime.replicate(member.data, self.mesh)
      self._data[id(member.data)] = (data, runtime.fetch(data.y_train),
                                     runtime.fetch(data.y_test))
    return self._data[id(member.data)]

  def _is_template(self, member: Member) -> bool:
    """Whether `member`'s steps are the template's (built with the first member's key)."""
    if member.loss_weights is not None or self.first.loss_weights is not None:
      return member is self.first
    if member.key is None and self.first.key is None:
      return member.spec.seed == self.spec.seed
    return member is self.first

  # -- resume ----------------------------------------------------------------

  def resume(self, member: Member) -> _MemberState:
    """A member's fresh state, or the state and loop of its latest good checkpoint."""
    key = member.run_key()
    data, y_train, y_test = self._member_data(member)
    run = _MemberState(member, key, self.init(jax.random.fold_in(key, prng.INIT)), data,
               y_train, y_test,
               tracker=member.on_eval if isinstance(member.on_eval, Resumable) else None,
               t_start=self.t_start)
    if member.checkpointer is None:
      return run
    restored = checkpoint.restore_or_none(
        member.checkpointer, checkpoint.abstract_like(run.state),
        run.tracker.checkpoint_state() if run.tracker is not None else None)
    if restored is None:
      return run
    # The learning curve, time and images trained so far, and the stop
    # decision if the checkpoint was taken at the end, come back with the state.
    run.state, loop, tracker_state = restored
    run.curve = [Evaluation(**row) for row in loop["curve"]]
    run.train_time, run.trained_images = loop["train_time_s"], loop["trained_images"]
    run.wall_before, run.preemption_count = loop["wall_s"], loop["preemption_count"]
    run.finished = Stop.from_record(loop["finished"])
    if tracker_state is not None:
      run.tracker.restore_checkpoint_state(tracker_state)
    run.resumed_from = run.step
    member.log(f"resumed from the checkpoint of step {run.resumed_from} "
               f"({run.preemption_count} preemption(s) so far)")
    return run

  # -- training --------------------------------------------------------------

  def _wall(self, run: _MemberState) -> float:
    end = time.perf_counter() if run.t_end is None else run.t_end
    return run.wall_before + end - run.t_start

  def _loop_record(self, run: _MemberState) -> dict[str, Any]:
    return {"curve": [e.curve_row() for e in run.curve], "train_time_s": run.train_time,
            "trained_images": run.trained_images, "wall_s": self._wall(run),
            "preemption_count": run.preemption_count,
            "finished": None if run.finished is None else run.finished.record()}

  def train(self, runs: list[_MemberState], vmapped: bool, watcher) -> None:
    """Trains `runs` (all at the same step) side by side until each stops or a preemption."""
    schedule, batch = self.schedule, self.schedule.batch_size
    # Every member trains on the same data object: one copy, unbatched, not K.
    shared = vmapped and all(r.data is runs[0].data for r in runs)
    if vmapped:
      stack = jax.jit(lambda *trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees),
                      out_shardings=self.replicated)
      state = stack(*[r.state for r in runs])
      data = runs[0].data if shared else stack(*[r.data for r in runs])
      weighted = any(r.member.loss_weights is not None for r in runs)
      loss_weights = np.stack([
          np.ones(self.workload.dataset.num_train, np.float32) if r.member.loss_weights is None
          else np.asarray(r.member.loss_weights, np.float32) for r in runs]) if weighted else None
      compile_s, advance = programs.vmapped_program(
          self.workload, self.mesh, [r.key for r in runs], state, data, shared_data=shared,
          loss_weights=loss_weights, members_per_slice=self.members_per_slice)
      member_state = jax.jit(lambda tree, k: jax.tree.map(lambda x: x[k], tree),
                             out_shardings=self.replicated)
      eval_fn = self.shared_eval_fn if shared else self.stacked_eval_fn
      seeds = [r.seed for r in runs]
    else:
      (run,) = runs
      state, data = run.state, run.data
      # The template is member 0's steps: not built twice.
      steps = (self.template if self._is_template(run.member)
               else make_steps(self.workload, run.key, self.mesh,
                               loss_weights=run.member.loss_weights))
      compile_s, advance = programs.single_program(self.workload, steps, self.replicated,
                                                   run.state, data)
      member_state = lambda state, k: state  # pylint: disable=unnecessary-lambda-assignment
      eval_fn, seeds = self.eval_fn, None
    for r in runs:
      r.compile_s += compile_s
      r.vmapped_seeds = r.vmapped_seeds or seeds
    active = [True] * len(runs)
    step = runs[0].step
    while any(active) and step < schedule.total_steps:
      # Chunks end on multiples of eval_every_steps, so a resumed run cuts the
      # schedule exactly where an uninterrupted one does.
      n = min(self.spec.budget.eval_every_steps, schedule.total_steps - step)
      t0, c0 = time.perf_counter(), time.process_time()
      state = advance(state, step, n, active)
      loss_sums = np.atleast_1d(runtime.fetch(state.loss_sum))  # syncs
      chunk_s, chunk_cpu_s = time.perf_counter() - t0, time.process_time() - c0
      step += n
      state = state.replace(loss_sum=jnp.zeros_like(state.loss_sum))
      # Shared data has no member axis (the outputs still have one).
      stacked = vmapped and not shared
      train_pred, train_losses = evaluate_split(eval_fn, state, data.x_train, data.y_train,
                                                 self.n_dev, stacked)
      test_pred, test_losses = evaluate_split(eval_fn, state, data.x_test, data.y_test,
                                               self.n_dev, stacked)
      if not vmapped:
        train_pred, train_losses, test_pred, test_losses = (
            a[None] for a in (train_pred, train_losses, test_pred, test_losses))
      for k, r in enumerate(runs):
        if active[k]:
          r.train_time += chunk_s
          r.train_cpu_time += chunk_cpu_s
          r.trained_images += n * batch
          self._record(r, step, n, float(loss_sums[k]), train_pred[k], train_losses[k],
                       test_pred[k], test_losses[k],
                       model=lambda k=k: self._model_of(member_state(state, k)))
      # Every process asks at every boundary (the multi-host sync point needs it).
      preempted = watcher.preempted()
      for k, r in enumerate(runs):
        if not active[k]:
          continue
        r.preempted = preempted and r.finished is None
        if r.preempted:
          r.preemption_count += 1
        ckpt = r.member.checkpointer
        if ckpt is not None and (r.finished is not None or r.preempted or ckpt.due(step)):
          ckpt.save(step, member_state(state, k), self._loop_record(r),
                    r.tracker.checkpoint_state() if r.tracker is not None else None)
        if r.preempted:
          r.member.log(f"preempted at step {step}: checkpointed; rerun the same command "
                       "to resume")
        active[k] = r.finished is None and not r.preempted
      if vmapped and 0 < sum(active) <= len(runs) // 2:
        break  # most slots are masked out: the rest go on in a smaller program
    for k, r in enumerate(runs):
      r.state = member_state(state, k)
      if not active[k]:  # the active ones go on below: their clock keeps running
        r.t_end = time.perf_counter()
    rest = [r for k, r in enumerate(runs) if active[k]]
    if rest and len(rest) < len(runs):
      self.train(rest, len(rest) > 1, watcher)

  def _model_of(self, state: TrainState) -> tuple[Any, Any, Any]:
    return self.workload.module, state.params, state.model_state

  def _record(self, run: _MemberState, step: int, n: int, loss_sum: float, train_pred, train_losses,
              test_pred, test_losses, model=None) -> None:
    """A member's evaluation after a chunk: curve, on_eval, log line, stop decision."""
    schedule = self.schedule
    # The output boundary: one prediction per example (a broadcast would skew accuracy).
    chex.assert_equal_shape([train_pred, run.y_train])
    chex.assert_equal_shape([test_pred, run.y_test])
    ips = run.trained_images / max(run.train_time, 1e-9)
    ev = Evaluation(
        step=step, epoch=step / schedule.steps_per_epoch, train_loss=loss_sum / n,
        train_accuracy=float(np.mean(train_pred == run.y_train)),
        train_eval_loss=float(np.mean(train_losses)),
        test_accuracy=float(np.mean(test_pred == run.y_test)),
        test_loss=float(np.mean(test_losses)),
        learning_rate=float(self.workload.learning_rate(step - 1)),
        images_per_sec=ips, wall_s=self._wall(run),
        train_predictions=train_pred, test_predictions=test_pred)
    run.curve.append(ev)
    if run.member.on_eval is not None:
      run.member.on_eval(dataclasses.replace(ev, model=model))
    eta = (schedule.total_steps - step) * schedule.batch_size / max(ips, 1e-9)
    run.member.log(f"step {step}/{schedule.total_steps} (epoch {ev.epoch:.1f}) | "
                   f"train acc {ev.train_accuracy:.4f} test acc {ev.test_accuracy:.4f} | "
                   f"loss {ev.train_loss:.4f} | {ips:,.0f} img/s | "
                   f"ETA {results.format_duration(eta)}")
    status = self.workload.stop_status(step, ev.train_loss, ev.train_eval_loss,
                                       ev.train_accuracy)
    if status is not None:
      fitted = status == workload_lib.COMPLETED
      run.finished = Stop(status, step if fitted else None, ev.wall_s if fitted else None)
    if status == workload_lib.DIVERGED:
      run.member.log(f"loss is not finite at step {step}: run diverged")

  # -- outcome ---------------------------------------------------------------

  def outcome(self, run: _MemberState) -> RunOutcome:
    ckpt = run.member.checkpointer
    if ckpt is not None:
      ckpt.wait()
    final = run.curve[-1]
    if final.train_predictions is None:
      # Resumed from the final checkpoint: recompute the final predictions (the
      # same program on the same parameters gives the same values).
      train_pred, _ = evaluate_split(self.eval_fn, run.state, run.data.x_train,
                                      run.data.y_train, self.n_dev)
      test_pred, _ = evaluate_split(self.eval_fn, run.state, run.data.x_test,
                                     run.data.y_test, self.n_dev)
      final = dataclasses.replace(final, train_predictions=train_pred,
                                  test_predictions=test_pred)
      run.curve[-1] = final
    done = run.finished if not run.preempted else None
    return RunOutcome(
        "preempted" if done is None else done.status, final, run.curve,
        None if done is None else done.steps_to_fit,
        None if done is None else done.time_to_fit_s, run.compile_s, self._wall(run),
        run.trained_images / max(run.train_time, 1e-9), run.state, run.data, self.schedule,
        preemption_count=run.preemption_count, resumed_from_step=run.resumed_from,
        checkpoint=ckpt.summary() if ckpt is not None else None,
        vmapped_seeds=run.vmapped_seeds,
        members_per_slice=self.members_per_slice if run.vmapped_seeds else None,
        train_s=run.train_time,
        train_cpu_s=run.train_cpu_time)
