"""Hardt et al. 2016's neighbouring-dataset pairs and Barrett & Dherin 2021's gradient penalty."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import barrett2021_igr as barrett, driver, hardt2016_stability as hardt, knobs
from memobench import catalogue, prng, specs, workload
from memobench.training import loop, objectives
from memobench.training.losses import cross_entropy
from memobench.training.steps import make_steps
from tests.conftest import REPO


# -- the explicit gradient regularizer --------------------------------------------------------

def _quadratic():
  """L = 1/2 theta^T A theta, A symmetric and indefinite (an awkward, non-convex case),
  theta split over two leaves so the penalty must sum over the whole pytree."""
  rng = np.random.default_rng(0)
  m = rng.normal(size=(5, 5))
  a = (m + m.T) / 2
  assert np.linalg.eigvalsh(a).min() < 0 < np.linalg.eigvalsh(a).max()
  a = jnp.asarray(a, jnp.float32)

  def loss_fn(params):
    theta = jnp.concatenate([params["w"], params["b"]])
    return 0.5 * theta @ a @ theta, {"aux": 7}
  params = {"w": jnp.asarray(rng.normal(size=3), jnp.float32),
            "b": jnp.asarray(rng.normal(size=2), jnp.float32)}
  return a, loss_fn, params


def test_igr_term_on_a_quadratic_is_lambda_norm_of_a_theta_squared():
  a, loss_fn, params = _quadratic()
  lam = 0.37
  theta = jnp.concatenate([params["w"], params["b"]])
  value, aux = jax.jit(objectives.gradient_penalized(loss_fn, lam))(params)
  expected = 0.5 * theta @ a @ theta + lam * jnp.sum((a @ theta) ** 2)
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  assert int(aux["aux"]) == 7
  # lambda 0 is the loss itself.
  np.testing.assert_allclose(objectives.gradient_penalized(loss_fn, 0.0)(params)[0],
                             loss_fn(params)[0], rtol=1e-6)


def test_igr_gradient_matches_finite_differences_and_the_analytic_form():
  a, loss_fn, params = _quadratic()
  lam = 0.37
  penalized = objectives.gradient_penalized(loss_fn, lam)
  grads = jax.jit(jax.grad(lambda p: penalized(p)[0]))(params)
  flat = np.concatenate([grads["w"], grads["b"]])
  theta = np.concatenate([params["w"], params["b"]]).astype(np.float64)
  a64 = np.asarray(a, np.float64)
  # d/dtheta [1/2 t'At + lam |At|^2] = A t + 2 lam A^2 t (A symmetric).
  np.testing.assert_allclose(flat, a64 @ theta + 2 * lam * a64 @ a64 @ theta, rtol=1e-4,
                             atol=1e-5)
  f = lambda t: 0.5 * t @ a64 @ t + lam * np.sum((a64 @ t) ** 2)  # noqa: E731
  eps = 1e-4
  fd = [(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in np.eye(5)]
  np.testing.assert_allclose(flat, fd, rtol=1e-3, atol=1e-4)
  # The penalty changes the gradient: without it the gradient is A theta alone.
  assert not np.allclose(flat, a64 @ theta, atol=1e-3)


def test_igr_spec_field_hash_and_checks():
  base = catalogue.get("digits_clean")
  igr, _ = specs.with_overrides(base, ["analysis.objective=igr", "analysis.igr_lambda=0.1"])
  assert specs.spec_hash(igr) != specs.spec_hash(
      specs.with_overrides(base, ["analysis.objective=igr"])[0])
  # A new field at its default leaves every existing hash alone.
  assert "igr_lambda" not in json.dumps(specs._hashed_content(base))  # pylint: disable=protected-access
  workload.validate(igr)
  with pytest.raises(specs.SpecError, match="needs analysis.objective=igr"):
    workload.validate(specs.with_overrides(base, ["analysis.igr_lambda=0.1"])[0])
  with pytest.raises(specs.SpecError, match="igr_lambda must be finite and >= 0"):
    workload.validate(specs.with_overrides(base, ["analysis.objective=igr",
                                                  "analysis.igr_lambda=-1"])[0])


def _tiny(spec_name="digits_clean", extra=()):
  spec, _ = specs.with_overrides(catalogue.get(spec_name), [
      "dataset.train_size=64", "budget.batch_size=16", "optimizer.momentum=0",
      "optimizer.lr_decay_per_epoch=1", "optimizer.lr=0.1", "analysis.dynamics=false",
      "analysis.effective_rank=false", *extra])
  return spec


def test_igr_training_step_takes_the_penalized_gradient():
  """One step of objective=igr moves the parameters by -lr * grad(CE + lambda ||grad CE||^2)."""
  lam = 0.5
  igr_wl = workload.resolve(_tiny(extra=("analysis.objective=igr",
                                         f"analysis.igr_lambda={lam}")))
  key = prng.run_key(0)
  data = igr_wl.corrupted_data(0)
  igr_steps = make_steps(igr_wl, key)
  state = igr_steps.init(jax.random.fold_in(key, prng.INIT))
  idx = np.asarray(jax.random.permutation(jax.random.fold_in(
      jax.random.fold_in(key, prng.SHUFFLE), 0), 64))[:16]
  module = igr_wl.module

  def ce(p):
    return jnp.mean(cross_entropy(
        module.apply({"params": p}, data.x_train[idx], train=True), data.y_train[idx]))

  def penalized(p):
    g = jax.grad(ce)(p)
    return ce(p) + lam * sum(jnp.sum(x ** 2) for x in jax.tree.leaves(g))
  penalized_grad, plain_grad = jax.jit(lambda p: (jax.grad(penalized)(p), jax.grad(ce)(p)))(
      state.params)
  got = jax.jit(igr_steps.train_step)(state, data).params
  for p, g, gp in zip(jax.tree.leaves(state.params), jax.tree.leaves(got),
                      jax.tree.leaves(penalized_grad)):
    np.testing.assert_allclose(g, p - 0.1 * gp, rtol=1e-4, atol=1e-6)
  # ... which is not the plain step's.
  assert max(float(jnp.max(jnp.abs(a - b))) for a, b in
             zip(jax.tree.leaves(penalized_grad), jax.tree.leaves(plain_grad))) > 1e-4


# -- neighbouring-dataset pairs ---------------------------------------------------------------

def _pair_setup(seeds=1, positions=2, epochs=1, eval_every=1):
  cell = hardt.LrCell("digits", 0.1, seeds, positions, 64, epochs, eval_every)
  spec = hardt.build_spec(cell)
  spec = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, batch_size=16))
  return spec, hardt.members_for(spec, seeds, positions)
def test_neighbouring_pair_differs_in_one_example_and_starts_identical():
  spec, (wl, members, _, plan) = _pair_setup()
  base, others = members[0], members[1:]
  pool_x, pool_y, _ = objectives.heldout_pool(spec)
  x0, y0 = np.asarray(base.data.x_train), np.asarray(base.data.y_train)
  for m, (i, j) in zip(others, plan[0]):
    x1, y1 = np.asarray(m.data.x_train), np.asarray(m.data.y_train)
    differs = np.any((x1 != x0).reshape(len(x0), -1), axis=1) | (y1 != y0)
    assert np.flatnonzero(differs).tolist() == [i]
    np.testing.assert_array_equal(x1[i], pool_x[j])
    assert y1[i] == pool_y[j]
    np.testing.assert_array_equal(m.data.x_test, base.data.x_test)  # the test set is untouched
    # The fresh example comes from outside the training set.
    assert not np.any(np.all((x0 == pool_x[j]).reshape(len(x0), -1), axis=1))
    # Same key: same initialization (and batch order) as the base run.
    init = lambda mem: make_steps(wl, mem.run_key()).init(  # noqa: E731
        jax.random.fold_in(mem.run_key(), prng.INIT))
    for p, q in zip(jax.tree.leaves(init(base)), jax.tree.leaves(init(m))):
      np.testing.assert_array_equal(p, q)


def test_divergence_on_identical_datasets_is_exactly_zero():
  spec, (wl, members, trackers, _) = _pair_setup(positions=1, epochs=1, eval_every=2)
  base = members[0]
  # The "neighbour" gets its own copy of S itself (example i replaced by itself).
  i = 5
  twin = hardt.neighbour(base.data, i, np.asarray(base.data.x_train[i]),
                         int(base.data.y_train[i]))
  assert twin is not base.data
  members[1] = dataclasses.replace(members[1], data=twin)
  loop.train_group(wl, members, vmapped=True)
  rows = trackers[0].rows[0]
  assert len(rows) == 2
  assert all(r["distance"] == 0.0 and r["test_loss_difference"] == 0.0
             and r["replaced_loss_difference"] == 0.0 and r["test_loss_difference_max"] == 0.0
             and r["shared_loss_difference_max"] == 0.0 for r in rows)


def _pair_row(epoch, replaced, test_max=0.0, shared_max=0.0):
  return {"step": epoch * 10, "epoch": epoch, "replaced_loss_difference": replaced,
          "test_loss_difference": test_max / 2, "test_loss_difference_max": test_max,
          "shared_loss_difference_max": shared_max}


def test_pooled_lemma22_estimate_and_sup_known_answers():
  """Lemma 2.2's estimate pools every pair of every seed (mean, SE over pairs) against the
  base runs' gap (SE over seeds); the sup per pair is over test points, shared training
  points and z_i (|dCE|), reported as the mean and the max over pairs."""
  def seed(replaced, test_max, shared_max, gap):
    return {"pairs": [[_pair_row(1, r, t, m)] for r, t, m in zip(replaced, test_max, shared_max)],
            "curve": [{"epoch": 1, "step": 10, "train_loss": 0.1, "test_loss": 0.1 + gap}]}
  cell = {"seeds": [seed([0.1, 0.3], [0.05, 0.5], [0.2, 0.1], 0.10),
                    seed([0.2, -0.4], [0.05, 0.05], [0.01, 0.02], 0.30)]}
  out = hardt.pooled(cell, 1)
  values = np.array([0.1, 0.3, 0.2, -0.4])
  assert out["pairs"] == 4
  assert out["lemma22"]["estimate"] == pytest.approx(values.mean())
  assert out["lemma22"]["se"] == pytest.approx(values.std(ddof=1) / 2)
  assert out["lemma22"]["gap"]["mean"] == pytest.approx(0.2)
  se_gap = np.std([0.1, 0.3], ddof=1) / np.sqrt(2)
  assert out["lemma22"]["se_difference"] == pytest.approx(np.hypot(values.std(ddof=1) / 2, se_gap))
  assert out["lemma22"]["within_2se"] is True
  # Per pair: max(test, shared, |replaced|) = 0.2, 0.5, 0.2, 0.4.
  assert out["sup"]["any"] == {"mean_over_pairs": pytest.approx(1.3 / 4),
                               "max_over_pairs": pytest.approx(0.5)}
  assert out["sup"]["replaced"]["max_over_pairs"] == pytest.approx(0.4)  # |-0.4|
  assert out["sup"]["test"]["max_over_pairs"] == pytest.approx(0.5)
  # One seed: no standard error of the gap, so no verdict on Lemma 2.2 either way.
  one = hardt.pooled({"seeds": cell["seeds"][:1]}, 1)
  assert one["lemma22"]["se_difference"] is None and one["lemma22"]["within_2se"] is None


# -- Hardt end to end: the computed-cell kind, preempted and resumed ----------------------------

def test_hardt2016_stability_sigterm_resume_and_divergence_starts_at_the_first_visit(tmp_path):
  """The script's --quick command end to end (the suite's one computed-cell process): a
  SIGTERM while its cell trains exits 143 and saves nothing; the same command then
  finishes; and the known answer: w_t = w'_t exactly until the step whose batch first
  holds example i (same initialization, same batch order), w_t != w'_t from then on."""
  command = [sys.executable, os.path.join(REPO, "experiments", "hardt2016_stability.py"),
             "--quick", f"--workdir={tmp_path}", "--epochs=30"]
  proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
  deadline, lines = time.time() + 300, []
  while time.time() < deadline:
    line = proc.stderr.readline()
    lines.append(line)
    if not line or "lr0.05: step " in line:  # inside the training loop
      break
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  err = "".join(lines) + err
  assert proc.returncode == 143, err[-3000:]
  assert "preempted while computing cell lr0.05 (not saved)" in err
  assert not (tmp_path / "cells" / "lr0.05").exists() and not (tmp_path / "summary.json").exists()
  out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert (tmp_path / "stability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  h = json.loads((tmp_path / "summary.json").read_text())["hardt"]
  div = h["divergence"]["0.05"]
  assert div["step"] == list(range(2, 241, 2)) and div["distance"][-1]["mean"] > 0
  assert {"mean", "std", "ci95", "n"} <= set(h["gap_by_epochs"]["1"])
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert [v["verdict"] for v in summary["verdicts"]][1] == "inconclusive"  # one seed: no SE
  assert h["stability"]["0.05"][-1]["pairs"] == 2
  record = json.loads((tmp_path / "cells" / "lr0.05" / "record.json").read_text())["record"]
  assert record["status"] == "budget_exhausted"
  shuffle_key = jax.random.fold_in(prng.run_key(0), prng.SHUFFLE)
  order = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, 0), 256))
  (seed,) = record["seeds"]
  for (i, _), rows in zip(seed["plan"], seed["pairs"]):
    first_step = int(np.flatnonzero(order == i)[0]) // 32 + 1  # after that step's update
    for r in rows[:8]:  # the first epoch
      if r["step"] < first_step:
        assert r["distance"] == 0.0 and r["test_loss_difference"] == 0.0, (i, r)
      else:
        assert r["distance"] > 0.0, (i, r)


# -- bad input: one line before anything trains (in-process) -----------------------------------

@pytest.mark.parametrize("experiment,assignments,needle", [
    (hardt.EXPERIMENT, ["positions=-3"], "positions=-3: expected in [1, 10000]"),
    (hardt.EXPERIMENT, ["train_size=100000"], "digits has 1437 training examples"),
    (hardt.EXPERIMENT, ["train_size=1436", "positions=2"], "expected train_size <= 1435"),
    (hardt.EXPERIMENT, ["lrs=0"], "lrs=0.0: expected each value in"),
    (barrett.EXPERIMENT, ["flow_time=nan"], "flow_time=nan: expected a finite number"),
    (barrett.EXPERIMENT, ["lrs="], "lrs=: expected comma-separated numbers, at least one"),
    (barrett.EXPERIMENT, ["lambdas=-1"], "lambdas=-1.0: expected each value in"),
    (barrett.EXPERIMENT, ["flow_time=1e7", "lrs=1e-6"], "expected at most 10,000,000"),
])
def test_bad_input_is_one_line(experiment, assignments, needle):
  with pytest.raises(knobs.KnobError) as e:
    driver.configure(experiment, False, assignments)
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_bad_command_line_exits_with_one_line(capsys):
  with pytest.raises(SystemExit) as e:
    driver.main(hardt.EXPERIMENT, ["--quick", "--positions=-3"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and ": error: " in err and "Traceback" not in err


# -- Barrett & Dherin: recorded cells (tests/test_experiments.py runs summarize and plot) -------

RECORDS = os.path.join(REPO, "tests", "data", "experiments", "barrett2021_igr.records.json.gz")


def test_barrett2021_igr_recorded_quick_run():
  config, records, summary = driver.load_records(barrett.EXPERIMENT, RECORDS)
  igr = summary["igr"]
  # lambda 0 at h0 = 0.5 is the lr 0.5 cell: one training cell.
  assert [c.key for c in barrett.grid(config)] == ["init", "lr0.5"]
  assert set(records) == {"init", "lr0.5"} and len(records["init"]["sharpness"]) == 1
  assert summary["initial_sharpness"]["mean"] == records["init"]["sharpness"][0] > 0
  assert set(igr["by_lr"]) == {"0.5"} and set(igr["by_lambda"]) == {"0"}
  assert igr["by_lr"]["0.5"]["implicit_lambda"] == 0.125
  assert igr["by_lambda"]["0"]["total_lambda"] == 0.125
  cell = igr["by_lr"]["0.5"]
  end = cell["at_flow_time"]
  assert 0 < end["test_accuracy"]["mean"] <= 1 and end["grad_norm_sq"]["mean"] > 0
  assert igr["by_lambda"]["0"]["at_flow_time"] == end
  (run,) = records["lr0.5"]["runs"]
  assert records["lr0.5"]["max_steps"] == 8 and run["steps"] == 8  # flow time 4 at h = 0.5
  assert [r["step"] for r in run["trajectory"]] == list(range(1, 9))
  assert [r["flow_time"] for r in run["trajectory"]] == [0.5 * s for s in range(1, 9)]
  # The sharpness at every SHARPNESS_EVERY-th evaluation and the last.
  assert [r["sharpness"] is not None for r in run["trajectory"]] == [True] + [False] * 6 + [True]
  # Equal loss: the one run is its own target, reached at its last evaluation.
  assert summary["equal_loss_target"] == run["trajectory"][-1]["train_loss"]
  assert cell["at_loss"]["reached"] == 1 and cell["at_loss"]["flow_time"]["mean"] == 4.0
  assert summary["verdicts"] == []  # one cell: nothing to compare


def test_barrett2021_igr_cells_and_specs():
  """The explicit cells: the igr objective with lambda, plain GD at h0, the step budget
  flow_time / h, no fit stop; lambda 0 at h0 shares h0's plain-GD cell; a changed knob
  changes exactly the configs of the cells that read it."""
  config = driver.configure(barrett.EXPERIMENT, False, ["train_size=200"])
  cells = {c.key: c for c in barrett.grid(config)}
  assert list(cells) == ["init", "lr0.2", "lr0.5", "lr1", "lr1.2", "lr0.2_lambda0.3",
                         "lr0.2_lambda1"]
  spec = barrett.cell_spec(cells["lr0.2_lambda0.3"].config)
  assert (spec.analysis.objective, spec.analysis.igr_lambda) == ("igr", 0.3)
  assert (spec.optimizer.momentum, spec.optimizer.lr_decay_per_epoch) == (0.0, 1.0)
  assert spec.budget.batch_size == 200 and spec.budget.max_steps == 5000
  assert spec.budget.eval_every_steps == 50
  assert barrett.cell_spec(cells["lr1.2"].config).budget.max_steps == 834
  other = {c.key: c for c in barrett.grid(dataclasses.replace(config, lrs=(0.2, 0.5, 2.0)))}
  assert {k for k in cells if k in other and other[k].config == cells[k].config} == {
      "init", "lr0.2", "lr0.5", "lr0.2_lambda0.3", "lr0.2_lambda1"}


def test_barrett_equal_loss_and_the_paired_rule():
  trajectory = [{"train_loss": v, "test_accuracy": a} for v, a in
                ((2.0, 0.1), (0.5, 0.8), (0.1, 0.9), (0.12, 0.95))]
  assert barrett.at_loss(trajectory, 0.5)["test_accuracy"] == 0.8  # <=, the first one
  assert barrett.at_loss(trajectory, 0.11)["test_accuracy"] == 0.9
  assert barrett.at_loss(trajectory, 0.01) is None
  a = {"per_seed": {"test_accuracy": [0.90, 0.91], "grad_norm_sq": [1.0, 2.0]}}
  b = {"per_seed": {"test_accuracy": [0.92, 0.91], "grad_norm_sq": [0.5, 1.0]}}
  pair = barrett.paired(a, b, "")
  assert pair["accuracy_difference"] == pytest.approx([0.02, 0.0])
  assert pair["grad_norm_sq_ratio"] == [0.5, 0.5]
  assert barrett.rule(pair) == "partly"  # flatter in every seed, not more accurate in every
  assert barrett.rule({"accuracy_difference": [0.01, 0.02],
                       "grad_norm_sq_ratio": [0.9, 0.8]}) == "agrees"
  assert barrett.rule({"accuracy_difference": [-0.01, -0.02],
                       "grad_norm_sq_ratio": [0.9, 0.8]}) == "disagrees"
  assert barrett.rule({"accuracy_difference": [0.01, None],
                       "grad_norm_sq_ratio": [0.9, 0.8]}) == "inconclusive"


def test_barrett_top_eigenvalue_matches_the_dense_hessian():
  """Lanczos' largest Ritz value against eigvalsh of the dense Hessian of a tiny MLP's CE."""
  from memobench.models import mlp  # pylint: disable=import-outside-toplevel
  from jax.flatten_util import ravel_pytree  # pylint: disable=import-outside-toplevel
  module = mlp.MLP(num_classes=3, hidden=(4,))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(40, 5)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, 40), jnp.int32)
  params = module.init(jax.random.key(0), x[:1], train=False)["params"]
  flat, unravel = ravel_pytree(params)  # 5*4 + 4 + 4*3 + 3 = 39 parameters
  loss = lambda q: jnp.mean(cross_entropy(module.apply({"params": unravel(q)}, x, train=False), y))  # noqa: E731
  dense = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(flat), np.float64))
  got = barrett.top_eigenvalue(module, params, {}, x, y)
  assert got == pytest.approx(dense[-1], rel=1e-3)
  assert barrett.grad_norm_sq(module, params, {}, x, y) == pytest.approx(
      float(jnp.sum(jax.grad(loss)(flat) ** 2)), rel=1e-5)
