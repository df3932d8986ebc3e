"""Keskar's eps-sharpness, Dinh's reparametrization, Granziol's batch Hessian: known answers.

Each measurement on a problem whose answer is analytic (quadratics over a
box, a two-layer linear model's Hessian, the convexity of the top
eigenvalue), plus the metric through a real run; each experiment's summary
on its recorded --quick cells (tests/data/experiments/), Granziol's --quick
end to end (the lr_stability program), and the resume rule of the trained
models (a changed training knob retrains, a changed measurement knob does not).
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from memobench import catalogue, run, schemas, specs
from memobench.metrics import batch_hessian, eps_sharpness
from memobench.models import mlp, rescaling
from memobench.training import losses
from tests.conftest import REPO
from tests.test_experiments import PNG, run_script

KEY = jax.random.key(0)


def _phi(max_loss, loss):
  return 100.0 * (max_loss - loss) / (1.0 + loss)


def test_eps_sharpness_of_a_separable_quadratic_at_its_minimum_is_the_box_corner():
  # f(w) = 1/2 sum h_i (w_i - c_i)^2 at x = c: the gradient vanishes there, and the
  # maximum over |y_i| <= eps (|c_i| + 1) is at a corner: 1/2 sum h_i b_i^2.
  rng = np.random.default_rng(0)
  c = jnp.asarray(rng.normal(size=40), jnp.float32)
  h = jnp.asarray(rng.uniform(0.5, 3.0, size=40), jnp.float32)
  f = lambda w: 0.5 * jnp.sum(h * (w - c) ** 2)
  eps = 0.05
  b = eps * (np.abs(np.asarray(c, np.float64)) + 1)
  expected = 0.5 * np.sum(np.asarray(h, np.float64) * b ** 2)
  out = eps_sharpness.eps_sharpness(f, c, eps, max_iters=20, key=KEY)
  assert out["loss"] == 0.0 and out["dim"] is None
  assert out["max_loss"] == pytest.approx(expected, rel=1e-4)
  assert out["sharpness"] == pytest.approx(_phi(expected, 0.0), rel=1e-4)
  assert 1 <= out["iterations"] <= 20


def test_eps_sharpness_of_a_rank_one_quadratic_away_from_its_minimum():
  # f(w) = 1/2 (u.(w - c))^2 at x = c + d (f(x) > 0: the 1 + f(x) denominator
  # matters). Max over the box: 1/2 (|u.d| + sum |u_i| b_i)^2, a coupled problem.
  rng = np.random.default_rng(1)
  u = rng.normal(size=30)
  c = rng.normal(size=30)
  d = 0.3 * np.sign(u)  # u.d far from 0: the ascent cannot cross to the other corner
  x = jnp.asarray(c + d, jnp.float32)
  uj, cj = jnp.asarray(u, jnp.float32), jnp.asarray(c, jnp.float32)
  f = lambda w: 0.5 * jnp.dot(uj, w - cj) ** 2
  eps = 0.02
  b = eps * (np.abs(c + d) + 1)
  loss = 0.5 * np.dot(u, d) ** 2
  expected = 0.5 * (abs(np.dot(u, d)) + np.sum(np.abs(u) * b)) ** 2
  out = eps_sharpness.eps_sharpness(f, x, eps, max_iters=30, key=KEY)
  assert out["loss"] == pytest.approx(loss, rel=1e-5)
  assert out["sharpness"] == pytest.approx(_phi(expected, loss), rel=1e-4)
  # The first-order term: sum_i b_i |g_i|, g = u (u.d); here the corner is the maximizer.
  first_order = np.sum(b * np.abs(u * np.dot(u, d)))
  assert out["first_order"] == pytest.approx(first_order, rel=1e-4)
  assert out["first_order_sharpness"] == pytest.approx(100 * first_order / (1 + loss), rel=1e-4)
  assert out["corner_loss"] == pytest.approx(expected, rel=1e-4)


def test_eps_sharpness_finds_an_interior_maximum_that_the_corner_misses():
  # Separable, curvature of both signs: f(x + t) = sum_i g_i t_i + k_i t_i^2 / 2. Where k_i < 0
  # and |g_i / k_i| < b_i the coordinate's maximum is inside the box (g_i^2 / (2 |k_i|)), below
  # which the gradient's corner falls; where k_i > 0 it is the corner b_i |g_i| + k_i b_i^2 / 2.
  rng = np.random.default_rng(3)
  n, eps = 24, 0.1
  x0 = rng.normal(size=n)
  b = eps * (np.abs(x0) + 1)
  g = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.0, n)
  k = np.where(np.arange(n) % 2 == 0, -4 * np.abs(g) / b, rng.uniform(0.5, 2.0, n))
  xj, gj, kj = (jnp.asarray(a, jnp.float32) for a in (x0, g, k))
  f = lambda w: 1.0 + jnp.sum(gj * (w - xj) + 0.5 * kj * (w - xj) ** 2)
  inside = k < 0  # t* = g / |k| = b / 4 sign(g): inside the box
  exact = 1.0 + np.sum(np.where(inside, g ** 2 / (2 * np.abs(k)), b * np.abs(g) + 0.5 * k * b ** 2))
  at_corner = 1.0 + np.sum(b * np.abs(g) + 0.5 * k * b ** 2)
  out = eps_sharpness.eps_sharpness(f, xj, eps, max_iters=30, key=KEY)
  assert out["loss"] == pytest.approx(1.0, rel=1e-6)
  assert out["corner_loss"] == pytest.approx(at_corner, rel=1e-5) and at_corner < exact - 0.1
  assert out["max_loss"] == pytest.approx(exact, rel=1e-4)
  assert out["sharpness"] == pytest.approx(_phi(exact, 1.0), rel=1e-3)
  assert out["sharpness"] > out["corner_sharpness"] and out["best_start"] != "x"
  assert [s["start"] for s in out["starts"]] == ["corner", "random0", "random1"]


def test_eps_sharpness_at_a_flat_converged_point_is_never_below_a_feasible_point():
  # A small MLP trained to a near-zero loss (a flat point: tiny gradient, small curvature), where
  # a few L-BFGS-B iterations from a random start stay far below the box's corners. The reported
  # max must be at least f at the gradient's corner, at random vertices and at random points of
  # the box, each evaluated here independently of the maximizer.
  import optax  # pylint: disable=import-outside-toplevel
  module = mlp.MLP(3, (32,))
  x = jax.random.normal(jax.random.key(4), (48, 6))
  y = jnp.arange(48) % 3
  params = module.init(jax.random.key(5), x, train=False)["params"]
  loss_fn = lambda p: losses.mean_cross_entropy(module.apply({"params": p}, x, train=False), y)
  opt = optax.adam(1e-2)

  @jax.jit
  def step(p, s):
    grads = jax.grad(loss_fn)(p)
    updates, s = opt.update(grads, s)
    return optax.apply_updates(p, updates), s

  state = opt.init(params)
  for _ in range(600):
    params, state = step(params, state)
  assert float(loss_fn(params)) < 1e-2  # converged: every example fitted with margin
  eps = 1e-3
  out = eps_sharpness.eps_sharpness(loss_fn, params, eps, max_iters=3, key=KEY, random_starts=1)
  flat, unravel = ravel_pytree(params)
  f = jax.jit(lambda w: loss_fn(unravel(w)))
  b = eps * (np.abs(np.asarray(flat, np.float64)) + 1)
  grad = np.asarray(jax.grad(f)(flat), np.float64)
  corner = np.where(grad < 0, -1.0, 1.0) * b
  rng = np.random.default_rng(6)
  points = ([corner] + [rng.choice([-1.0, 1.0], b.shape) * b for _ in range(50)]
            + [rng.uniform(-1, 1, b.shape) * b for _ in range(50)])
  values = [float(f(jnp.asarray(flat + p, jnp.float32))) for p in points]
  assert out["corner_loss"] == pytest.approx(values[0], rel=1e-5)
  assert out["max_loss"] >= max(values) * (1 - 1e-6)
  assert out["sharpness"] >= out["corner_sharpness"] > 0
  # What the max over starts is for: the random start's own run alone stays below the corner.
  random_run = next(s for s in out["starts"] if s["start"] == "random0")
  assert random_run["max_loss"] < values[0]
  assert out["first_order"] == pytest.approx(np.sum(b * np.abs(grad)), rel=1e-3)


def test_projected_form_with_the_identity_equals_the_full_form_and_a_scaled_A_its_own_box():
  module = mlp.MLP(3, (6,))
  x = jax.random.normal(jax.random.key(1), (20, 4))
  y = jnp.arange(20) % 3
  params = module.init(jax.random.key(2), x, train=False)["params"]
  loss_fn = lambda p: losses.mean_cross_entropy(module.apply({"params": p}, x, train=False), y)
  n = ravel_pytree(params)[0].shape[0]
  full = eps_sharpness.eps_sharpness(loss_fn, params, 1e-2, 15, KEY)
  eye = eps_sharpness.eps_sharpness(loss_fn, params, 1e-2, 15, KEY, projection=np.eye(n))
  assert full["sharpness"] > 0 and eye["dim"] == n
  assert eye["sharpness"] == pytest.approx(full["sharpness"], rel=1e-6)
  assert eye["iterations"] == full["iterations"]
  # A = 2 I: y's box is eps (|x_i| / 2 + 1), so A y moves w_i by up to eps (|x_i| + 2).
  c = jnp.asarray(np.linspace(-1, 1, 8), jnp.float32)
  f = lambda w: 0.5 * jnp.sum((w - c) ** 2)
  out = eps_sharpness.eps_sharpness(f, c, 0.05, 20, KEY, projection=2 * np.eye(8))
  expected = 0.5 * np.sum((0.05 * (np.abs(np.asarray(c, np.float64)) + 2)) ** 2)
  assert out["max_loss"] == pytest.approx(expected, rel=1e-4)


def test_eps_sharpness_through_a_run_is_a_result_section(tmp_path):
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [
      "budget.max_steps=22", "budget.eval_every_steps=22", "analysis.dynamics=false",
      "analysis.effective_rank=false", "analysis.eps_sharpness_iters=3",
      "analysis.eps_sharpness_dim=10", "analysis.eps_sharpness_examples=64"])
  assert specs.spec_hash(spec) != specs.spec_hash(
      specs.with_overrides(spec, ["analysis.eps_sharpness_iters=0"])[0])
  result = run.run_spec(spec, str(tmp_path), log=lambda _: None, checkpoint_every=0)
  section = result["memorization"]["eps_sharpness"]
  assert section["eps"] == 1e-3 and section["examples"] == 64 and section["max_iters"] == 3
  assert section["projected"]["dim"] == 10 and section["full"]["dim"] is None
  for form in ("full", "projected"):
    assert section[form]["sharpness"] > 0
    assert 1 <= section[form]["iterations"] <= 3 * (1 + section["random_starts"])  # per start
  schemas.validate(json.loads((tmp_path / "result.json").read_text()), "result")
  with pytest.raises(specs.SpecError, match="eps_sharpness_eps must be positive"):
    from memobench import workload  # pylint: disable=import-outside-toplevel
    workload.validate(specs.with_overrides(spec, ["analysis.eps_sharpness_eps=0"])[0])


def test_dinh_rescaling_keeps_a_relu_mlps_outputs():
  module = mlp.MLP(5, (16, 8))
  x = jax.random.normal(jax.random.key(3), (32, 7))
  params = module.init(jax.random.key(4), x, train=False)["params"]
  logits = module.apply({"params": params}, x, train=False)
  for layer in (0, 1):
    for alpha in (1e-3, 0.5, 1e3):
      new = rescaling.rescale(params, layer, alpha)
      np.testing.assert_allclose(module.apply({"params": new}, x, train=False), logits,
                                 rtol=1e-4, atol=1e-5)
      assert not np.allclose(new[f"Dense_{layer}"]["kernel"], params[f"Dense_{layer}"]["kernel"])
  with pytest.raises(ValueError, match="alpha must be positive"):
    rescaling.rescale(params, 0, -1.0)
  with pytest.raises(ValueError, match="layer must be in"):
    rescaling.rescale(params, 2, 2.0)


def test_dinh_rescaling_scales_a_two_layer_linear_models_hessian_as_predicted():
  # f = (x K0 + b0) K1 + b1, squared error: H(T theta) = T^-1 H(theta) T^-1 exactly, so
  # at large alpha the top eigenvalue is alpha^2 times the top of the K1-block's.
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)
  params = {"Dense_0": {"kernel": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
                        "bias": jnp.asarray(rng.normal(size=4), jnp.float32)},
            "Dense_1": {"kernel": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32),
                        "bias": jnp.asarray(rng.normal(size=2), jnp.float32)}}
  flat0, unravel = ravel_pytree(params)

  def loss(flat):
    p = unravel(flat)
    out = (x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]) @ p["Dense_1"]["kernel"]
    return 0.5 * jnp.mean(jnp.sum((out + p["Dense_1"]["bias"] - target) ** 2, -1))

  hessian = lambda p: np.asarray(jax.hessian(loss)(ravel_pytree(p)[0]), np.float64)
  h = hessian(params)
  second = np.asarray(ravel_pytree(jax.tree.map(jnp.zeros_like, params) | {
      "Dense_1": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}})[0], bool)
  top_second_block = np.linalg.eigvalsh(h[np.ix_(second, second)])[-1]
  for alpha in (10.0, 100.0):
    t = np.asarray(ravel_pytree(rescaling.scaling(params, 0, alpha))[0], np.float64)
    h_new = hessian(rescaling.rescale(params, 0, alpha))
    np.testing.assert_allclose(h_new, h / np.outer(t, t), rtol=2e-3, atol=1e-3 * alpha ** 2)
    assert loss(ravel_pytree(rescaling.rescale(params, 0, alpha))[0]) == pytest.approx(
        float(loss(flat0)), rel=1e-4)
  top = np.linalg.eigvalsh(hessian(rescaling.rescale(params, 0, 100.0)))[-1]
  assert top / 100.0 ** 2 == pytest.approx(top_second_block, rel=1e-2)
  assert top > 1e3 * np.linalg.eigvalsh(h)[-1]


def test_batch_hessian_of_the_whole_set_is_the_full_hessian_and_batches_bound_it_above():
  module = mlp.MLP(3, (6,))
  x = np.asarray(jax.random.normal(jax.random.key(6), (24, 4)))
  y = np.arange(24) % 3
  params = module.init(jax.random.key(7), x, train=False)["params"]
  flat, unravel = ravel_pytree(params)
  n_params = flat.shape[0]

  def dense_top(xs, ys):
    loss = lambda f: losses.mean_cross_entropy(
        module.apply({"params": unravel(f)}, xs, train=False), ys)
    return np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(flat), np.float64))[-1]

  top = batch_hessian.TopEigenvalue(module, {}, iters=n_params)
  full = batch_hessian.batch_top_eigenvalues(top, params, x, y, 24, 5, KEY)
  assert len(full) == 1 and full[0] == pytest.approx(dense_top(x, y), rel=1e-4)
  # H is the mean of the H_B of a partition, and lambda_max is convex: the mean of
  # the batches' top eigenvalues is at least the full one (each matches its dense value).
  parts = batch_hessian.batch_top_eigenvalues(top, params, x, y, 6, 10, KEY)
  assert len(parts) == 4 and np.mean(parts) >= full[0]
  order = np.asarray(jax.random.permutation(jax.random.split(KEY)[0], 24))
  assert parts[0] == pytest.approx(dense_top(x[order[:6]], y[order[:6]]), rel=1e-4)


def _recorded(name):
  """(experiment module, config, summary) of a script's recorded --quick cells."""
  import importlib  # pylint: disable=import-outside-toplevel
  from experiments import driver  # pylint: disable=import-outside-toplevel
  module = importlib.import_module(f"experiments.{name}")
  config, records, _ = driver.load_records(
      module.EXPERIMENT, os.path.join(REPO, "tests", "data", "experiments",
                                      f"{name}.records.json.gz"))
  return module, config, module.summarize(config, records)


def test_keskar_quick_summary_compares_at_equal_epochs_and_at_matched_training_loss():
  from experiments import verdicts  # pylint: disable=import-outside-toplevel
  _, config, summary = _recorded("keskar2017_large_batch")
  points = summary["points"]
  assert list(points) == ["epoch2", "loss1", "loss0.8"]
  assert summary["settings"]["small_batch"] == 32 and summary["settings"]["large_batch"] == 144
  for name, p in points.items():
    for size in ("small", "large"):
      s = p[size]
      assert s["seeds"] == [0]  # --quick: one seed, and it reached every point
      e = s["eps_sharpness"]["0.001"]["full"]
      # The max counts the corner: phi is never below the corner's own phi.
      assert e["phi"]["mean"] >= e["corner"]["mean"] > 0 and e["first_order"]["mean"] > 0
      assert set(s["eps_sharpness"]) == {"0.001", "0.0005"}
      if name.startswith("loss"):  # the first evaluation at or below the level
        assert s["train_loss"]["mean"] <= float(name[len("loss"):])
  assert points["epoch2"]["small"]["epochs"]["mean"] == points["epoch2"]["large"]["epochs"]["mean"] == 2
  ratio = points["loss0.8"]["large_over_small"]["per_seed"]
  assert ratio["seed"] == [0] and 0.5 < ratio["train_loss_ratio"][0] < 2
  inter = summary["interpolation"]["epoch2"]
  assert inter["alpha"][0] == -1.0 and inter["alpha"][-1] == 2.0
  # alpha = 0 is the small-batch minimizer itself: its recorded test accuracy.
  zero = inter["alpha"].index(0.0)
  assert inter["test_accuracy"][zero]["mean"] == pytest.approx(
      points["epoch2"]["small"]["test_accuracy"]["mean"], abs=1e-6)
  assert set(summary["interpolation"]) == {"epoch2", "loss0.8"}
  assert len(summary["verdicts"]) == 3
  for v in summary["verdicts"]:
    assert v["verdict"] in verdicts.VERDICTS and "loss <= 0.8" in v["matched"]


def test_keskar_matched_point_is_the_lowest_level_every_seed_of_both_reached():
  from experiments import keskar2017_large_batch as keskar  # pylint: disable=import-outside-toplevel
  per_seed = lambda seeds: {"large_over_small": {"per_seed": {"seed": seeds}}}  # pylint: disable=unnecessary-lambda-assignment
  summary = {"seeds": 3, "points": {"epoch30": per_seed([0, 1, 2]), "loss0.02": per_seed([0, 1, 2]),
                                    "loss0.002": per_seed([0, 1, 2]), "loss0.0006": per_seed([0, 2])}}
  assert keskar.matched_point(summary) == "loss0.002"
  summary["points"]["loss0.02"] = per_seed([1])
  summary["points"]["loss0.002"] = per_seed([])
  assert keskar.matched_point(summary) is None


TINY_KESKAR = ["epochs=1", "large_epochs=2", "examples=64", "dim=4", "lanczos_iters=3",
               "alphas=3", "eps_iters=2", "random_starts=0"]


def test_keskar_a_changed_training_knob_retrains_and_a_measurement_knob_only_remeasures(tmp_path):
  """Issue 27 item 4 / issue 23: the trained models are cells keyed by the hash of their
  config, so --lr retrains (and the summary's numbers are the new models'), while
  --eps_iters re-measures the same models."""
  from experiments import driver, keskar2017_large_batch as keskar  # pylint: disable=import-outside-toplevel
  lines = []
  options = driver.Options(str(tmp_path), log=lines.append)

  def run(*assignments):
    lines.clear()
    config = driver.configure(keskar.EXPERIMENT, True, [*TINY_KESKAR, *assignments])
    summary = driver.run_experiment(keskar.EXPERIMENT, config, options)
    return summary, {m.split(":")[0] for m in lines if m.endswith(": computing")}

  def training(key):
    return json.loads((tmp_path / "cells" / key / "record.json").read_text())["record"]

  trainings = {"small_b32", "large_b144"}
  measures = {f"measure_{size}_{point}" for size in ("small", "large")
              for point in ("epoch1", "loss1", "loss0.8")}
  a, computed = run("lr=0.001")
  assert computed == trainings | measures | {"interpolation_epoch1", "interpolation_loss0.8"}
  record_a = training("small_b32")
  b, computed = run("lr=0.05")
  assert trainings <= computed and "interpolation_epoch1" in computed
  record_b = training("small_b32")
  assert record_b["spec"]["optimizer"]["lr"] == 0.05 and record_a["spec"]["optimizer"]["lr"] == 0.001
  assert b["settings"]["optimizer"] == "adam lr 0.05 constant"
  # The summary's numbers are the lr 0.05 models', not the lr 0.001 ones left in the workdir.
  for size, key in (("small", "small_b32"), ("large", "large_b144")):
    assert b["final"][size]["train_loss"]["mean"] == training(key)["seeds"][0]["train_loss"]
    assert b["points"]["epoch1"][size]["train_loss"]["mean"] == (
        training(key)["seeds"][0]["snapshots"]["epoch1"]["train_loss"])
  assert b["final"]["small"]["train_loss"]["mean"] != a["final"]["small"]["train_loss"]["mean"]
  # A measurement knob: the measurements again, no training, no interpolation.
  c, computed = run("lr=0.05", "eps_iters=3")
  assert computed == measures
  assert training("small_b32") == record_b
  assert c["final"] == b["final"] and c["interpolation"] == b["interpolation"]
  # Back to lr 0.001: retrained, the same numbers as the first time (a pure function of the knobs).
  d, computed = run("lr=0.001")
  assert trainings <= computed
  assert d["final"] == a["final"] and d["points"] == a["points"]


def test_dinh_quick_summary_same_function_sharper_minimum():
  _, _, summary = _recorded("dinh2017_reparametrization")
  dinh = summary["dinh"]
  assert set(dinh) == {"0.1", "1", "10"}
  accuracy = {a: dinh[a]["test_accuracy"]["mean"] for a in dinh}
  assert accuracy["0.1"] == accuracy["1"] == accuracy["10"]
  for a in ("0.1", "10"):
    assert dinh[a]["max_abs_probability_change"]["mean"] < 1e-4
    assert dinh[a]["prediction_agreement"]["mean"] == 1.0
    assert dinh[a]["top_eigenvalue"]["mean"] > 5 * dinh["1"]["top_eigenvalue"]["mean"]
  assert summary["settings"]["layers"] == ["Dense_0", "Dense_1"]
  for a in ("0.1", "1", "10"):
    assert dinh[a]["eps_sharpness_full"]["mean"] >= dinh[a]["eps_sharpness_corner"]["mean"] > 0
  # The verdicts follow from the numbers: the same function, and a much larger top eigenvalue at
  # both ends of the alpha range (the quick range is 0.1 ... 10).
  assert [v["verdict"] for v in summary["verdicts"]][:2] == ["agrees", "agrees"]
  assert all(g > 10 for a in ("0.1", "10") for g in summary["growth_over_alpha_1"]["top_eigenvalue"][a])
  assert summary["growth_over_alpha_1"]["top_eigenvalue"]["1"] == [1.0]


@pytest.mark.parametrize("assignments,needle", [
    (["layer=1"], "--layer must be in [0, 0] for mlp1x512, got 1"),
    (["dataset=nosuchset"], "unknown spec 'nosuchset_clean'"),
])
def test_dinh_bad_input_is_one_failure_before_training(tmp_path, assignments, needle):
  from experiments import driver, dinh2017_reparametrization as dinh  # pylint: disable=import-outside-toplevel
  config = driver.configure(dinh.EXPERIMENT, True, assignments)
  with pytest.raises(driver.Failure) as e:
    driver.run_experiment(dinh.EXPERIMENT, config, driver.Options(str(tmp_path)))
  assert e.value.code == 2 and needle in str(e.value) and not (tmp_path / "cells").exists()


@pytest.mark.parametrize("assignment", ["eps=inf", "eps=0", "alphas=1,-2", "seeds=0"])
def test_dinh_bad_knobs_are_refused(assignment):
  from experiments import driver, dinh2017_reparametrization as dinh, knobs  # pylint: disable=import-outside-toplevel
  with pytest.raises(knobs.KnobError):
    driver.configure(dinh.EXPERIMENT, False, [assignment])


def test_granziol_stable_means_learned_and_the_max_rate_ignores_too_slow_rates():
  from experiments import granziol_batch_spectrum as granziol  # pylint: disable=import-outside-toplevel
  ln10 = np.log(10)
  # A constant predictor's loss: below the initial one (the old rule's "stable"), not learned.
  assert granziol.old_rule(True, 2.45, 2.31) and not granziol.learned(True, 2.45, 2.31, 10)
  assert granziol.learned(True, 2.4, 0.5, 10) and not granziol.learned(True, 2.4, 2.2, 10)
  assert not granziol.learned(False, 2.4, 0.5, 10) and not granziol.learned(True, 2.4, None, 10)
  assert not granziol.learned(True, 3.0, ln10, 10)  # 0.77 x initial, but no better than ln K
  grid = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
  # Too slow at 0.25, learned 0.5-2, then unstable; 8.0 learning again (chaos) is not counted.
  assert granziol.max_stable_lr([0, 1, 1, 1, 0, 1], grid) == 2.0
  assert granziol.max_stable_lr([0, 0, 0, 0, 0, 0], grid) is None
  assert granziol.max_stable_lr([1] * 6, grid) == 8.0
  record = {"lrs": list(grid), "num_classes": 10,
            "finite": [[True, True, True, True, True, False]],
            "initial": [[2.4] * 6],
            "final": [[2.3, 0.9, 0.6, 0.5, 2.31, None]]}
  out = granziol.grid_summary(record)
  assert out["stable"] == [[0, 1, 1, 1, 0, 0]] and out["max_lr"] == [2.0]
  # 2.31 at rate 4 collapsed (the old rule passed it); 2.3 at 0.25 is too slow, not collapsed.
  assert out["collapsed"] == [[0, 0, 0, 0, 1, 0]] and out["old_rule_stable"] == 5
  assert out["collapsed_runs"] == 1 and out["censored"] == 0


def test_lr_stability_runs_every_seed_and_rate_alike_in_one_program_or_one_per_seed():
  """The named program: another vmap width changes float rounding only (here: nothing that
  moves a flag in a few steps), and each member starts from its seed's initialization."""
  from experiments.programs import lr_stability  # pylint: disable=import-outside-toplevel
  from memobench import workload  # pylint: disable=import-outside-toplevel
  wl = workload.resolve(catalogue.get("digits_clean"))
  lrs = [0.01, 0.5, 100.0]
  one = lr_stability.run_grid(wl, [0, 1], lrs, 32, 10, "sgd")
  per_seed = lr_stability.run_grid(wl, [0, 1], lrs, 32, 10, "sgd", seeds_per_program=1)
  assert one["finite"] == per_seed["finite"] and np.shape(one["final"]) == (2, 3)
  np.testing.assert_allclose(np.asarray(one["initial"], float),
                             np.asarray(per_seed["initial"], float), rtol=1e-5)
  assert one["initial"][0][0] == one["initial"][0][2] != one["initial"][1][0]
  x = np.asarray(wl.dataset.x_train)
  start = wl.module.apply({"params": lr_stability.init_params(wl, 1)}, x, train=False)
  expected = float(losses.mean_cross_entropy(start, np.asarray(wl.dataset.y_train)))
  assert one["initial"][1][0] == pytest.approx(expected, rel=1e-5)
  assert one["final"][0][1] < 0.9 * one["initial"][0][1]    # a sane rate learns
  assert not one["finite"][0][2] or one["final"][0][2] > one["initial"][0][2]  # 100 does not


def test_granziol_runs_quick_and_writes_what_it_promises(tmp_path):
  """Granziol's --quick end to end: the one subprocess of these experiments (the named
  program experiments/programs/lr_stability.py, beside the trained-models cells)."""
  from experiments import driver, granziol_batch_spectrum as granziol, verdicts  # pylint: disable=import-outside-toplevel
  out = run_script("granziol_batch_spectrum.py", tmp_path)
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert (tmp_path / "granziol.png").read_bytes()[:8] == PNG
  g = summary["granziol"]
  assert set(g["batch_top_eigenvalue"]) == {"16"} and g["full_top_eigenvalue"]["mean"] > 0
  assert set(g["at_init"]["batch_top_eigenvalue"]) == {"16"}
  grids = summary["settings"]["lr_grids"]
  for kind in ("sgd", "adam"):
    assert set(g["max_lr"][kind]) == {"16", "64"} and set(g["rerun"][kind]["max_lr"]) == {"16", "64"}
    for b in ("16", "64"):
      # One vmapped grid per (optimizer, B): one row per seed, one flag per rate.
      assert np.shape(g["stable"][kind][b]) == (2, len(grids[kind]))
      record = json.loads((tmp_path / "cells" / f"{kind}_b{b}" / "record.json").read_text())
      assert record["record"]["lrs"] == grids[kind] and record["record"]["num_classes"] == 10
    share = g["collapsed_share"][kind]
    assert 0 <= share["collapsed"] <= share["old_rule_stable"] <= share["runs"]
  assert set(g["two_over_lambda"]["trained"]) == {"16"}
  assert [v["verdict"] in verdicts.VERDICTS for v in summary["verdicts"]] == [True] * 3
  assert (tmp_path / "cells" / "clean" / "seed1.msgpack").stat().st_size > 10_000
  assert "full Hessian top eigenvalue" in out.stdout
  # Resumable: a rerun in-process (as python -m experiments.granziol_batch_spectrum) keeps
  # every cell the script computed.
  run = driver.Run(granziol.EXPERIMENT, granziol.QUICK, driver.Options(str(tmp_path)))
  assert all(r is not None for r in run.records().values())
