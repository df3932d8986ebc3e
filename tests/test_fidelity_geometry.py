"""Known answers for the geometry metrics: sharpness (Lanczos) and the critical sample ratio's radius."""

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from memobench.data import preprocessing
from memobench.metrics import critical_sample_ratio as csr
from memobench.metrics import sharpness
from memobench.training import losses

# --------------------------------------------------------------------------
# Sharpness: Lanczos separates a near-degenerate top pair
# --------------------------------------------------------------------------


def _quadratic(eigenvalues, seed=0):
  """0.5 p^T A p with A = Q diag(eigenvalues) Q^T, Q a random rotation: its Hessian is A."""
  n = len(eigenvalues)
  q, _ = np.linalg.qr(np.random.RandomState(seed).randn(n, n))
  a = jnp.asarray(q @ np.diag(eigenvalues) @ q.T, jnp.float32)
  return (lambda p: 0.5 * p["w"] @ a @ p["w"]), {"w": jnp.zeros(n, jnp.float32)}


def test_lanczos_separates_a_near_degenerate_top_pair_that_power_iteration_does_not():
  eigenvalues = np.concatenate([[1.0, 0.97], np.linspace(0.8, 0.01, 58)])
  loss_fn, params = _quadratic(eigenvalues)
  key = jax.random.key(0)
  out = sharpness.lanczos_top_eigenpairs(loss_fn, params, key, iters=30, top_k=2)
  assert out["eigenvalues"] == pytest.approx([1.0, 0.97], abs=1e-4)
  assert sharpness.converged(out["eigenvalues"], out["residuals"])
  assert out["iterations"] == 30
  # Power iteration with as many Hessian-vector products sits between the pair:
  # more than 1e-3 low, while its residual is only a few percent.
  power, residual = jax.jit(lambda p: sharpness.power_iteration(loss_fn, p, key, 30))(params)
  assert 0.97 < float(power) < 1.0 - 1e-3
  assert float(residual) < 0.1


def test_lanczos_residual_test_refuses_too_few_steps():
  eigenvalues = np.concatenate([[1.0, 0.97], np.linspace(0.9, 0.01, 198)])
  loss_fn, params = _quadratic(eigenvalues, seed=1)
  out = sharpness.lanczos_top_eigenpairs(loss_fn, params, jax.random.key(1), iters=4, top_k=2)
  assert not sharpness.converged(out["eigenvalues"], out["residuals"])
  assert np.all(np.diff(out["eigenvalues"]) <= 0)  # descending


def test_lanczos_stops_exactly_on_an_invariant_krylov_space():
  # Three distinct eigenvalues: the Krylov space of any start vector has
  # dimension 3, so Lanczos breaks down after 3 steps with exact Ritz values.
  eigenvalues = np.array([2.0] * 5 + [1.5] * 5 + [0.5] * 10)
  loss_fn, params = _quadratic(eigenvalues, seed=2)
  out = sharpness.lanczos_top_eigenpairs(loss_fn, params, jax.random.key(2), iters=10, top_k=3)
  assert out["iterations"] == 3
  assert out["eigenvalues"] == pytest.approx([2.0, 1.5, 0.5], rel=1e-5)
  assert np.all(np.isfinite(out["residuals"])) and np.all(out["residuals"] < 1e-4)


class _TwoHeads(nn.Module):
  """Two copies of one tiny tanh MLP on the same inputs (losses weighted 1 and 1.01 below)."""

  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    a = nn.Dense(2, name="a_out")(jnp.tanh(nn.Dense(4, name="a_in")(x)))
    b = nn.Dense(2, name="b_out")(jnp.tanh(nn.Dense(4, name="b_in")(x)))
    return a, b


def test_lanczos_matches_the_dense_hessian_of_a_tiny_model_with_a_near_degenerate_top_pair():
  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.randn(32, 3), jnp.float32)
  y = jnp.asarray(rng.randint(0, 2, 32), jnp.int32)
  module = _TwoHeads()
  params = module.init(jax.random.key(0), x)["params"]
  # Both heads start from the same weights: the Hessian is block-diagonal
  # with blocks H and 1.01 H, so its top pair is 1.01 lambda_1, lambda_1.
  params = {**params, "b_in": params["a_in"], "b_out": params["a_out"]}

  def loss_fn(p):
    a, b = module.apply({"params": p}, x)
    return losses.mean_cross_entropy(a, y) + 1.01 * losses.mean_cross_entropy(b, y)

  flat, unravel = ravel_pytree(params)
  dense = np.asarray(jax.jit(jax.hessian(lambda f: loss_fn(unravel(f))))(flat), np.float64)
  exact = np.sort(np.linalg.eigvalsh((dense + dense.T) / 2))[::-1]
  assert exact[1] / exact[0] == pytest.approx(1 / 1.01, rel=1e-4)  # near-degenerate
  out = sharpness.lanczos_top_eigenpairs(loss_fn, params, jax.random.key(4), iters=40, top_k=2)
  assert out["eigenvalues"] == pytest.approx(exact[:2], rel=1e-4)
  assert sharpness.converged(out["eigenvalues"], out["residuals"])


def test_sharpness_section_reports_the_lanczos_fields():
  module = nn.Dense(3)
  rng = np.random.RandomState(0)
  x, y = rng.randn(64, 5).astype(np.float32), rng.randint(0, 3, 64).astype(np.int32)
  params = module.init(jax.random.key(0), x)["params"]
  wrapped = types.SimpleNamespace(apply=lambda v, xb, train: module.apply(v, xb))
  section = sharpness.sharpness(wrapped, params, {}, x, y, examples=32, iters=8,
                                key=jax.random.key(1), top_k=3)
  assert section["method"] == "lanczos" and section["examples"] == 32
  assert len(section["top_eigenvalues"]) == 3 == len(section["residuals"])
  assert section["top_hessian_eigenvalue"] == section["top_eigenvalues"][0]
  assert section["top_eigenvalues"] == sorted(section["top_eigenvalues"], reverse=True)
  assert isinstance(section["converged"], bool)


# --------------------------------------------------------------------------
# Critical sample ratio: the radius in [0, 1]-pixel units, whatever the preprocessing
# --------------------------------------------------------------------------


def test_whitening_scale_is_the_factor_per_image_standardization_applies():
  rng = np.random.RandomState(0)
  raw = rng.rand(6, 8, 8, 3).astype(np.float32) * rng.rand(6, 1, 1, 1).astype(np.float32)
  scale = preprocessing.whitening_scale(raw)
  d = np.zeros_like(raw)
  d[:, 2, 3, 1] = 0.01
  moved = preprocessing.per_image_standardization(raw + d)
  # Moving one pixel barely changes sigma: the whitened displacement is ~ d * scale.
  np.testing.assert_allclose(
      (moved - preprocessing.per_image_standardization(raw))[:, 2, 3, 1],
      0.01 * scale, rtol=2e-2)
  images = (rng.rand(4, 32, 32, 3) * 255).astype(np.uint8)
  np.testing.assert_allclose(preprocessing.zhang_input_scale(images),
                             preprocessing.whitening_scale(
                                 preprocessing.center_crop(images / 255.0, 28)), rtol=1e-6)


class _Mlp(nn.Module):
  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(4)(jnp.tanh(nn.Dense(16)(x)))


def test_csr_on_whitened_images_equals_csr_on_raw_images_through_the_whitening():
  rng = np.random.RandomState(0)
  # Raw [0, 1] images of different contrasts: sigma_i from ~0.03 to ~0.3.
  raw = (0.5 + (rng.rand(64, 6, 6, 1) - 0.5)
         * rng.uniform(0.1, 1.0, (64, 1, 1, 1))).astype(np.float32)
  mean = raw.mean(axis=(1, 2, 3), keepdims=True)
  scale = preprocessing.whitening_scale(raw)
  whitened = preprocessing.per_image_standardization(raw)
  np.testing.assert_allclose(whitened, (raw - mean) * scale[:, None, None, None], atol=1e-5)
  module = _Mlp()
  params = module.init(jax.random.key(0), whitened)["params"]
  # Large enough steps that some, not all, examples are critical.
  r, alpha, beta = 30 * csr.LASS_R, 30 * csr.LASS_ALPHA, 30 * csr.LASS_BETA
  key = jax.random.key(5)

  def on_whitened(xw):
    return module.apply({"params": params}, xw)

  s = jnp.asarray(scale)[:, None, None, None]
  # The same model composed with the (per-image, fixed) whitening map.
  on_raw = lambda xr: module.apply({"params": params}, (xr - mean) * s)
  crit_raw = csr.critical_samples(on_raw, jnp.asarray(raw), key, r, alpha, beta, iters=20)
  crit_white = csr.critical_samples(on_whitened, jnp.asarray(whitened), key, r * scale,
                                    alpha * scale, beta * scale, iters=20)
  crit_raw, crit_white = np.asarray(crit_raw), np.asarray(crit_white)
  assert 0 < crit_raw.sum() < len(raw)
  np.testing.assert_array_equal(crit_raw, crit_white)
  # The old global-range scaling searched a different box.
  span = float(whitened.max() - whitened.min())
  crit_range = np.asarray(csr.critical_samples(on_whitened, jnp.asarray(whitened), key,
                                               r * span, alpha * span, beta * span, iters=20))
  assert not np.array_equal(crit_range, crit_raw)


def test_csr_per_example_radius_on_a_known_boundary():
  # Logits (x0, -x0): the boundary is x0 = 0. Example i's box has half-width
  # r * scale_i in input units, so it is critical iff |x0_i| < r * scale_i.
  logits_fn = lambda x: jnp.stack([x[:, 0], -x[:, 0]], -1)
  r = 0.1
  x0 = jnp.array([0.05, 0.05, 0.15, 0.15, -0.25, -0.25])
  scale = jnp.array([1.0, 0.4, 2.0, 1.0, 3.0, 2.0])
  x = jnp.stack([x0, jnp.ones_like(x0)], -1)
  critical = csr.critical_samples(logits_fn, x, jax.random.key(0), r=r * scale,
                                  alpha=r * scale / 4, beta=r * scale / 10, iters=50)
  assert np.asarray(critical).tolist() == [True, False, True, False, True, False]


def test_csr_section_uses_the_per_example_scale_and_reports_pixel_units():
  module = _Mlp()
  rng = np.random.RandomState(1)
  x = rng.randn(10, 4, 4, 1).astype(np.float32)
  params = module.init(jax.random.key(0), x)["params"]
  scale = np.linspace(1.0, 5.0, 10).astype(np.float32)
  section = csr.critical_sample_ratio(module, params, {}, x, 8, jax.random.key(2),
                                      input_scale=scale, split="train")
  assert section["samples"] == 8 and section["split"] == "train"
  assert section["r"] == csr.LASS_R
  assert section["input_scale"]["min"] == pytest.approx(1.0)
  assert section["input_scale"]["max"] == pytest.approx(scale[7])
  plain = csr.critical_sample_ratio(module, params, {}, x, 8, jax.random.key(2))
  assert plain["input_scale"] == {"min": 1.0, "mean": 1.0, "max": 1.0}


# --------------------------------------------------------------------------
# Critical sample ratio over training (analysis.csr_every_eval)
# --------------------------------------------------------------------------


def _spec(**analysis):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from memobench import catalogue  # pylint: disable=import-outside-toplevel
  spec = catalogue.get("digits_clean")
  return dataclasses.replace(spec, analysis=dataclasses.replace(spec.analysis, **analysis))


def test_csr_tracker_is_built_only_when_asked_and_resumes_exactly():
  from memobench.metrics import runner  # pylint: disable=import-outside-toplevel
  rng = np.random.RandomState(0)
  data = types.SimpleNamespace(
      x_train=jnp.asarray(rng.rand(40, 4, 4, 1), jnp.float32),
      y_train=jnp.asarray(rng.randint(0, 4, 40)),
      x_test=jnp.asarray(rng.rand(12, 4, 4, 1), jnp.float32),
      label_changed=jnp.zeros(40, bool), num_classes=4)
  module = _Mlp()
  params = module.init(jax.random.key(0), data.x_train)["params"]
  plain = runner.MetricsRunner(_spec(csr_samples=8), data, module=module)
  assert "critical_sample_ratio" not in plain.trackers  # the checkpoint keeps its structure
  spec = _spec(csr_samples=8, csr_every_eval=True, csr_split="train")
  scale = np.full(40, 50.0, np.float32)
  dataset = types.SimpleNamespace(input_scale_train=scale, input_scale_test=None)
  run = runner.MetricsRunner(spec, data, module=module, dataset=dataset)
  tracker = run.trackers["critical_sample_ratio"]
  np.testing.assert_array_equal(tracker.scale, scale)
  on_eval = run.on_eval()
  model = lambda: (module, params, {})
  for step in (5, 10):
    on_eval(types.SimpleNamespace(step=step, train_predictions=np.zeros(40, int), model=model))
  state = on_eval.checkpoint_state()
  assert {"csr_steps", "csr_ratios", "csr_count"} <= set(state)
  resumed = runner.MetricsRunner(spec, data, module=module, dataset=dataset)
  resumed.on_eval().restore_checkpoint_state(jax.tree.map(np.copy, state))
  for r in (run, resumed):
    r.on_eval()(types.SimpleNamespace(step=15, train_predictions=np.zeros(40, int), model=model))
  rows = run.trackers["critical_sample_ratio"].rows()
  assert [s for s, _ in rows] == [5, 10, 15]
  assert rows == resumed.trackers["critical_sample_ratio"].rows()
  # The tracker searched with the runner's per-example scale and the step's key.
  x, _ = csr._inputs(np.asarray(data.x_train), 8, scale)
  assert rows[0][1] == pytest.approx(float(csr._critical(
      module, params, {}, x, scale[:8], jax.random.fold_in(tracker.key, 5)).mean()))


def test_csr_every_eval_through_the_command_line(tmp_path):
  import json  # pylint: disable=import-outside-toplevel
  from tests.conftest import run_main  # pylint: disable=import-outside-toplevel
  args = ("--spec=digits_partial40", "--set", "budget.max_epochs=2",
          "--set", "budget.eval_every_steps=11", "--set", "analysis.csr_samples=16",
          "--set", "analysis.csr_every_eval=true", "--checkpoint_every=22",
          "--compilation_cache_dir=", f"--workdir={tmp_path}")
  proc = run_main(*args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  section = json.load(open(tmp_path / "result.json"))["memorization"]["critical_sample_ratio"]
  rows = section["over_training"]
  assert [s for s, _ in rows] == [11, 22, 33, 44]
  assert all(0.0 <= ratio <= 1.0 for _, ratio in rows)
  assert section["split"] == "test" and section["input_scale"]["max"] == 1.0
  # Rerun: resumes from the final checkpoint, the tracker's rows with it.
  proc = run_main(*args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "resumed from the checkpoint of step 44" in proc.stdout
  again = json.load(open(tmp_path / "result.json"))["memorization"]["critical_sample_ratio"]
  assert again["over_training"] == rows


def test_prepared_cifar10_carries_its_whitening_scale_per_example(tmp_path):
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  from tests.tfds_fakes import write_prepared  # pylint: disable=import-outside-toplevel
  written = write_prepared("cifar10", str(tmp_path), num_train=20, num_test=8)
  ds = datasets.load(specs.DatasetSpec("cifar10"), str(tmp_path))
  np.testing.assert_allclose(ds.input_scale_train,
                             preprocessing.zhang_input_scale(written["train"][0]), rtol=1e-6)
  np.testing.assert_allclose(ds.input_scale_test,
                             preprocessing.zhang_input_scale(written["test"][0]), rtol=1e-6)
  # A [0, 1]-pixel displacement d of the raw crop is d * scale in whitened units.
  raw = preprocessing.center_crop(written["test"][0] / 255.0, 28)
  np.testing.assert_allclose(ds.x_test, (raw - raw.mean(axis=(1, 2, 3), keepdims=True))
                             * ds.input_scale_test[:, None, None, None], atol=1e-4)
  sub = datasets.load(specs.DatasetSpec("cifar10", train_size=5), str(tmp_path))
  np.testing.assert_array_equal(sub.input_scale_train, ds.input_scale_train[:5])
  mnist = write_prepared("mnist", str(tmp_path), num_train=4, num_test=4)
  del mnist
  assert datasets.load(specs.DatasetSpec("mnist"), str(tmp_path)).input_scale_test is None


def test_result_schema_checks_the_sharpness_and_csr_sections():
  import copy  # pylint: disable=import-outside-toplevel
  sharp = {"top_hessian_eigenvalue": 3.6, "top_eigenvalues": [3.6, 3.5],
           "residuals": [1e-4, 1e-3], "converged": True, "residual_tol": 1e-3,
           "method": "lanczos", "iterations": 20, "examples": 1024}
  crit = {"critical_sample_ratio": 0.25, "samples": 16, "split": "test", "r": csr.LASS_R,
          "alpha": csr.LASS_ALPHA, "beta": csr.LASS_BETA, "iterations": 100,
          "over_training": [[11, 0.5], [22, 0.25]]}
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import jsonschema  # pylint: disable=import-outside-toplevel
  import memobench.schemas  # pylint: disable=import-outside-toplevel
  with open(os.path.join(os.path.dirname(memobench.schemas.__file__),
                         "result.v1.schema.json")) as f:
    root = json.load(f)
  # The whole schema, with only the memorization section required to be there.
  schema = {**root, "required": ["memorization"]}
  validate = lambda d: jsonschema.Draft202012Validator(schema).validate(d)
  doc = {"memorization": {"sharpness": sharp, "critical_sample_ratio": crit}}
  validate(doc)
  for section, key, bad in (("sharpness", "method", "power"),
                            ("critical_sample_ratio", "split", "val"),
                            ("critical_sample_ratio", "over_training", [[11, 1.5]])):
    broken = copy.deepcopy(doc)
    broken["memorization"][section][key] = bad
    with pytest.raises(jsonschema.ValidationError):
      validate(broken)
