"""Per-example memorization metrics, each against a case with a known answer."""

import dataclasses
import itertools
import json
import math
import subprocess
import sys
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from jax.flatten_util import ravel_pytree

from memobench import catalogue, memorization, metrics, specs, workload
from memobench.estimators import subsample
from memobench.metrics import base, critical_sample_ratio, dynamics, effective_rank, runner
from memobench.metrics import sharpness, stats, turnover
from tests.conftest import REPO


# --------------------------------------------------------------------------
# ROC AUC
# --------------------------------------------------------------------------


def test_roc_auc_matches_pair_counting_with_ties():
  rng = np.random.RandomState(0)
  scores = rng.randint(0, 5, size=40).astype(float)  # many ties
  positive = rng.rand(40) < 0.3
  pairs = [1.0 if p > n else 0.5 if p == n else 0.0
           for p, n in itertools.product(scores[positive], scores[~positive])]
  assert stats.roc_auc(scores, positive) == pytest.approx(np.mean(pairs))
  assert stats.roc_auc(scores, positive) == pytest.approx(
      sklearn.metrics.roc_auc_score(positive, scores), rel=1e-12)
  assert stats.roc_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
  assert stats.roc_auc([4, 3, 2, 1], [False, False, True, True]) == 0.0
  assert stats.roc_auc([7, 7, 7, 7], [False, True, False, True]) == 0.5  # all tied
  assert stats.roc_auc([1, 2], [False, False]) is None  # no positives
  assert stats.roc_auc([1, 2], [True, True]) is None  # no negatives
  assert stats.roc_auc([1, np.nan], [False, True]) is None  # a score is not finite


# --------------------------------------------------------------------------
# Effective rank (Roy & Vetterli 2007)
# --------------------------------------------------------------------------


def _with_spectrum(singular_values, rows=30, cols=12, seed=0):
  """A rows x cols matrix with exactly these singular values (random singular vectors)."""
  rng = np.random.RandomState(seed)
  u, _ = np.linalg.qr(rng.randn(rows, rows))
  v, _ = np.linalg.qr(rng.randn(cols, cols))
  s = np.zeros((rows, cols))
  s[np.arange(len(singular_values)), np.arange(len(singular_values))] = singular_values
  return u @ s @ v.T


def test_effective_rank_of_known_spectra():
  assert effective_rank.effective_rank(np.eye(7)) == pytest.approx(7.0)
  # r equal singular values: exactly r, whatever their scale.
  assert effective_rank.effective_rank(_with_spectrum([5.0] * 4)) == pytest.approx(4.0, rel=1e-9)
  assert effective_rank.effective_rank(_with_spectrum([0.01] * 9)) == pytest.approx(9.0, rel=1e-9)
  # s = (3, 1): p = (3/4, 1/4), erank = exp(-(3/4 ln 3/4 + 1/4 ln 1/4)).
  p = np.array([0.75, 0.25])
  assert effective_rank.effective_rank(_with_spectrum([3.0, 1.0])) == pytest.approx(
      math.exp(-np.sum(p * np.log(p))), rel=1e-9)
  # Rank one (any scale): 1.
  assert effective_rank.effective_rank(np.outer(np.arange(1, 6), np.ones(4))) == pytest.approx(1.0)
  assert effective_rank.effective_rank(np.zeros((3, 3))) == 0.0
  assert math.isnan(effective_rank.effective_rank(np.array([[np.nan, 1.0]])))
  # Centering removes a shared offset: rows c * 1 + tiny noise are rank ~1 raw.
  rows = np.ones((50, 6)) * 10 + _with_spectrum([1.0] * 6, rows=50, cols=6) * 1e-3
  assert effective_rank.effective_rank(rows) < 1.1
  assert effective_rank.effective_rank(rows, center=True) > 5.0


# --------------------------------------------------------------------------
# Sharpness: power iteration vs a dense Hessian
# --------------------------------------------------------------------------


class _Tiny(nn.Module):
  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    return nn.Dense(2)(jnp.tanh(nn.Dense(4)(x)))


def test_power_iteration_matches_dense_hessian_top_eigenvalue():
  module = _Tiny()
  rng = np.random.RandomState(1)
  x = jnp.asarray(rng.randn(16, 3), jnp.float32)
  y = jnp.asarray(rng.randint(0, 2, 16), jnp.int32)
  params = module.init(jax.random.key(0), x)["params"]

  def loss_fn(p):
    import optax  # pylint: disable=import-outside-toplevel
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        module.apply({"params": p}, x), y))

  flat, unravel = ravel_pytree(params)
  dense = np.asarray(jax.jit(jax.hessian(lambda f: loss_fn(unravel(f))))(flat), np.float64)
  eigenvalues = np.linalg.eigvalsh((dense + dense.T) / 2)
  top = eigenvalues[np.argmax(np.abs(eigenvalues))]
  second = np.sort(np.abs(eigenvalues))[-2]
  assert second / abs(top) < 0.9  # a gap, so that 300 iterations converge
  eigenvalue, residual = jax.jit(
      lambda p: sharpness.power_iteration(loss_fn, p, jax.random.key(3), 300))(params)
  assert float(eigenvalue) == pytest.approx(top, rel=1e-3)
  assert float(residual) < 1e-2 * abs(top)
  lanczos = sharpness.lanczos_top_eigenpairs(loss_fn, params, jax.random.key(3), 12, 2)
  assert lanczos["eigenvalues"] == pytest.approx(np.sort(eigenvalues)[::-1][:2], rel=1e-4)


# --------------------------------------------------------------------------
# Critical sample ratio (LASS) on a classifier whose boundary is known
# --------------------------------------------------------------------------


def test_lass_finds_exactly_the_samples_within_r_of_the_boundary():
  r = 0.1
  # Two classes split by the hyperplane x0 = 0: logits (x0, -x0).
  logits_fn = lambda x: jnp.stack([x[:, 0], -x[:, 0]], -1)
  x0 = jnp.array([0.05, -0.05, 0.099, 0.3, -0.3, 0.11])
  x = jnp.stack([x0, jnp.ones_like(x0)], -1)
  critical = critical_sample_ratio.critical_samples(logits_fn, x, jax.random.key(0), r=r,
                                                    alpha=r / 4, beta=r / 10, iters=50)
  assert np.asarray(critical).tolist() == [True, True, True, False, False, False]


# --------------------------------------------------------------------------
# Learning dynamics
# --------------------------------------------------------------------------


def test_learning_dynamics_known_sequence_and_checkpoint_roundtrip():
  y = np.array([0, 1, 2, 3])
  # Correctness per evaluation (rows: steps 10, 20, 30, 40), columns = examples:
  #   0: learned at 10, never forgotten        1: learned 20, forgotten 30, relearned 40
  #   2: never learned                         3: learned 10, forgotten at 40
  correct = np.array([[1, 0, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 0]], bool)
  tracker = dynamics.LearningDynamics(y)
  for step, row in zip([10, 20, 30, 40], correct):
    tracker.update(step, np.where(row, y, (y + 1) % 4))
  a = tracker.arrays()
  assert a["first_learned_step"].tolist() == [10, 20, -1, 10]
  assert a["stable_learned_step"].tolist() == [10, 40, -1, -1]
  assert a["forgetting_events"].tolist() == [0, 1, 0, 1]
  assert a["stays_learned"].tolist() == [True, False, False, False]
  assert a["correct_fraction"].tolist() == [1.0, 0.5, 0.0, 0.75]
  corrupted = np.array([False, True, True, False])
  s = tracker.summary(corrupted, steps_per_epoch=10)
  assert s["first_learned_epoch_mean"]["clean"] == pytest.approx(1.0)
  assert s["first_learned_epoch_mean"]["corrupted"] == pytest.approx(2.0)
  assert s["never_learned_fraction"]["corrupted"] == pytest.approx(0.5)
  # AUC of the stable learning step (never stably learned ranks last, step 41):
  # corrupted (40, 41) vs clean (10, 41): pairs 1 + 0 + 1 + 1/2 over 4.
  assert s["learning_time_auc"] == pytest.approx(0.625)
  # A fresh tracker restored from the checkpointed state continues identically.
  resumed = dynamics.LearningDynamics(y)
  resumed.restore_checkpoint_state(jax.tree.map(np.copy, tracker.checkpoint_state()))
  for t in (tracker, resumed):
    t.update(50, np.where([0, 0, 1, 1], y, (y + 1) % 4))
  for k, v in tracker.arrays().items():
    np.testing.assert_array_equal(v, resumed.arrays()[k])


# --------------------------------------------------------------------------
# Turn-over dropout masks
# --------------------------------------------------------------------------

_MASK_SNIPPET = """
import jax, numpy as np
from memobench import prng
from memobench.metrics import turnover
key = turnover.turnover_key(prng.run_key(7))
m = turnover.example_masks(key, 123, np.array([0, 5, 4000]), (64,), 0.5)
print(''.join('1' if b else '0' for b in np.asarray(m).ravel()))
"""


def test_turnover_masks_are_a_pure_function_of_the_index_and_the_same_across_runs():
  key = turnover.turnover_key(jax.random.key(7, impl="threefry2x32"))
  batch = np.asarray(turnover.example_masks(key, 123, jnp.array([5, 0, 5, 4000]), (64,), 0.5))
  alone = np.asarray(turnover.example_masks(key, 123, jnp.array([5]), (64,), 0.5))
  np.testing.assert_array_equal(batch[0], batch[2])  # same index, same mask
  np.testing.assert_array_equal(batch[0], alone[0])  # whatever else is in the batch
  assert not np.array_equal(batch[0], batch[1])  # different indices differ
  other_layer = np.asarray(turnover.example_masks(key, 124, jnp.array([5]), (64,), 0.5))
  assert not np.array_equal(alone, other_layer)
  keep = np.asarray(turnover.example_masks(key, 1, jnp.arange(200), (64,), 0.8)).mean()
  assert 0.77 < keep < 0.83
  # Another process (another "run" of the same spec) derives the same masks.
  out = subprocess.run([sys.executable, "-c", _MASK_SNIPPET], capture_output=True, text=True,
                       cwd=REPO, timeout=120, check=True)
  again = np.array([c == "1" for c in out.stdout.strip()]).reshape(3, 64)
  here = np.asarray(turnover.example_masks(turnover.turnover_key(
      jax.random.key(7, impl="threefry2x32")), 123, jnp.array([0, 5, 4000]), (64,), 0.5))
  np.testing.assert_array_equal(again, here)


def test_turnover_masks_reach_dropout_layers_and_flip():
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      return nn.Dropout(0.5, deterministic=not train)(x)

  key = jax.random.key(0)
  x = jnp.ones((3, 32))
  idx = jnp.array([0, 1, 2])
  with turnover.masks_applied(key, 0.5, idx):
    own = Net().apply({}, x, train=False)
  with turnover.masks_applied(key, 0.5, idx, flip=True):
    flipped = Net().apply({}, x, train=False)
  own, flipped = np.asarray(own), np.asarray(flipped)
  assert set(np.unique(own)) <= {0.0, 2.0}  # scaled by 1/keep
  np.testing.assert_array_equal(own + flipped, 2.0 * np.ones((3, 32)))  # complements

  class NoDropout(nn.Module):
    @nn.compact
    def __call__(self, x, *, train):
      return nn.Dense(2)(x)

  module = NoDropout()
  variables = module.init(jax.random.key(0), x, train=False)
  with pytest.raises(turnover.NoDropoutLayers):
    with turnover.masks_applied(key, 0.5, idx):
      module.apply(variables, x, train=True)


# --------------------------------------------------------------------------
# Feldman & Zhang subsample estimator
# --------------------------------------------------------------------------


def test_subsample_estimator_matches_its_brute_force_definition():
  rng = np.random.RandomState(0)
  k, n = 9, 6
  correct = rng.rand(k, n) < 0.6
  inside = rng.rand(k, n) < 0.7
  inside[:, 5] = True  # example 5 in every subset: no held-out models
  out = memorization.subsample_memorization(correct, inside)
  for i in range(n):
    ins = [float(correct[j, i]) for j in range(k) if inside[j, i]]
    outs = [float(correct[j, i]) for j in range(k) if not inside[j, i]]
    if not outs:
      assert math.isnan(out["mem"][i]) and math.isnan(out["heldout_accuracy"][i])
      continue
    assert out["mem"][i] == pytest.approx(np.mean(ins) - np.mean(outs))
    assert out["heldout_accuracy"][i] == pytest.approx(np.mean(outs))
    # Jeffreys proportions q = (k + 1/2) / (n + 1) in the binomial variance, any n >= 1.
    q_in, q_out = (sum(ins) + 0.5) / (len(ins) + 1), (sum(outs) + 0.5) / (len(outs) + 1)
    se = math.sqrt(q_in * (1 - q_in) / len(ins) + q_out * (1 - q_out) / len(outs))
    assert out["mem_se"][i] == pytest.approx(se)
    assert out["n_in"][i] == len(ins) and out["n_out"][i] == len(outs)


def test_subset_masks_have_exact_size_and_do_not_depend_on_the_ensemble_size():
  keys3, keys5 = memorization.model_keys(0, 3), memorization.model_keys(0, 5)
  masks = [np.asarray(subsample.subset_mask(k, 100, 70)) for k in keys5]
  assert all(m.sum() == 70 for m in masks)
  assert not np.array_equal(masks[0], masks[1])
  np.testing.assert_array_equal(np.asarray(subsample.subset_mask(keys3[2], 100, 70)),
                                masks[2])


# --------------------------------------------------------------------------
# Spec options
# --------------------------------------------------------------------------


def _with_analysis(spec: specs.Spec, **fields) -> specs.Spec:
  return dataclasses.replace(spec, analysis=dataclasses.replace(spec.analysis, **fields))


@pytest.mark.parametrize("fields,message", [
    ({"turnover_dropout": 1.0}, "analysis.turnover_dropout must be in [0, 1), got 1.0"),
    ({"turnover_dropout": -0.1}, "analysis.turnover_dropout must be in [0, 1), got -0.1"),
    ({"csr_samples": -1}, "analysis.csr_samples must be >= 0, got -1"),
    ({"sharpness_iters": -2}, "analysis.sharpness_iters must be >= 0, got -2"),
    ({"sharpness_examples": 0}, "analysis.sharpness_examples must be positive, got 0"),
    ({"sharpness_top_k": 0}, "analysis.sharpness_top_k must be >= 1, got 0"),
    ({"sharpness_iters": 2, "sharpness_top_k": 3},
     "analysis.sharpness_top_k=3 needs analysis.sharpness_iters >= 3 Lanczos steps, got 2"),
    ({"csr_split": "val"}, "analysis.csr_split must be one of test, train, got 'val'"),
])
def test_metric_checks_refuse_bad_analysis_fields_in_one_line(fields, message):
  spec = catalogue.get("digits_clean")
  metrics.check(spec)
  with pytest.raises(specs.SpecError) as e:
    metrics.check(_with_analysis(spec, **fields))
  assert str(e.value) == message


def test_turnover_dropout_with_model_dropout_is_refused():
  spec = catalogue.get("digits_clean")
  spec = dataclasses.replace(_with_analysis(spec, turnover_dropout=0.5),
                             model=dataclasses.replace(spec.model, dropout=0.1))
  with pytest.raises(specs.SpecError, match="replaces the model's random dropout"):
    metrics.check(spec)


@pytest.mark.parametrize("override,needle", [
    ("analysis.objective=nope", "unknown objective"),
    ("analysis.objective=forced_memorization", "needs dataset.train_size"),
])
def test_bad_objectives_are_refused(override, needle):
  with pytest.raises(specs.SpecError, match=needle):
    workload.validate(specs.with_overrides(catalogue.get("digits_clean"), [override])[0])


def test_default_analysis_changes_nothing_trained():
  a = specs.AnalysisSpec()
  assert a.turnover_dropout == 0 and a.objective == "ce"
  spec = catalogue.get("mnist5k_partial20")
  assert turnover.model_spec(spec) == spec.model
  assert json.dumps(specs.to_dict(spec)["analysis"], sort_keys=True)  # serializable


# --------------------------------------------------------------------------
# The metric table: a metric is found only through it
# --------------------------------------------------------------------------


def test_the_table_declares_every_analysis_field_once_and_distinct_outputs():
  declared = [f for metric in metrics.TABLE for f in metric.fields]
  # analysis.objective (and igr's lambda) change what is trained: training/objectives.py's,
  # no metric's.
  fields = {f"analysis.{f.name}" for f in dataclasses.fields(specs.AnalysisSpec)} - {
      "analysis.objective", "analysis.igr_lambda"}
  assert sorted(declared) == sorted(fields)
  sections = [metric.section for metric in metrics.TABLE]
  assert len(set(sections)) == len(sections) and "timing_s" not in sections
  files = [metric.arrays_file for metric in metrics.TABLE if metric.arrays_file]
  assert len(set(files)) == len(files)
  keys = [metric.timing_key for metric in metrics.TABLE if metric.timing_key]
  assert len(set(keys)) == len(keys)
  default = catalogue.get("digits_clean")
  assert [m.section for m in metrics.enabled(default)] == ["learning_dynamics", "effective_rank"]
  everything = _with_analysis(default, turnover_dropout=0.5, csr_samples=4, sharpness_iters=2,
                              input_stability_samples=4, eps_sharpness_iters=2,
                              loss_sensitivity=True)
  assert [m.section for m in metrics.enabled(everything)] == sections


class _CountingTracker:
  """A toy tracker: how many evaluations saw each example predicted as class 0."""

  def __init__(self, n):
    self.zeros = np.zeros(n, np.int32)

  def __call__(self, evaluation):
    self.zeros += (np.asarray(evaluation.train_predictions) == 0).astype(np.int32)

  def checkpoint_state(self):
    return {"toy_zeros": self.zeros}

  def restore_checkpoint_state(self, tree):
    self.zeros = np.array(tree["toy_zeros"], np.int32)


def _toy_finish(context):
  zeros = context.tracker.zeros
  section = {"predicted_zero_mean": stats.split_summary(zeros, context.corrupted),
             "train_examples": int(context.x_train.shape[0])}
  return base.Result(section, {"zeros": zeros}, ("toy zeros", float(zeros.mean())))


_TOY = base.Metric(section="toy", fields=(), enabled=lambda spec: True, finish=_toy_finish,
                   timing_key="toy", tracker=lambda spec, data: _CountingTracker(
                       data.y_train.shape[0]), arrays_file="toy.npz")


class _Embedder(nn.Module):
  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    h = jnp.tanh(nn.Dense(6)(x))
    self.sow("intermediates", "features", h)
    return nn.Dense(3)(h)


def test_a_metric_added_to_a_copy_of_the_table_runs_through_the_runner(tmp_path):
  rng = np.random.RandomState(0)
  n, spec = 20, catalogue.get("digits_clean")
  data = types.SimpleNamespace(
      x_train=jnp.asarray(rng.randn(n, 4), jnp.float32), y_train=jnp.asarray(rng.randint(0, 3, n)),
      x_test=jnp.asarray(rng.randn(12, 4), jnp.float32),
      label_changed=jnp.asarray(np.arange(n) % 4 == 0), num_classes=3)
  data.y_train_original = data.y_train
  module = _Embedder()
  params = module.init(jax.random.key(0), data.x_train)["params"]
  table = (*metrics.TABLE, _TOY)
  run = runner.MetricsRunner(spec, data, module=module, table=table)
  hooked = []
  on_eval = run.on_eval(hooked.append, None)
  predictions = [np.zeros(n, int), np.asarray(data.y_train), np.arange(n) % 3]
  for step, pred in zip([10, 20, 30], predictions):
    on_eval(types.SimpleNamespace(step=step, train_predictions=pred))
  assert len(hooked) == 3  # the other hooks see every evaluation too
  # The checkpoint state is the trackers' dicts merged: learning dynamics' keys
  # (as before the table) plus the toy's; a fresh runner resumes from it.
  state = on_eval.checkpoint_state()
  assert set(state) == set(dynamics.LearningDynamics(np.zeros(n)).checkpoint_state()) | {
      "toy_zeros"}
  resumed = runner.MetricsRunner(spec, data, module=module, table=table)
  resumed.on_eval().restore_checkpoint_state(jax.tree.map(np.copy, state))
  np.testing.assert_array_equal(resumed.trackers["toy"].zeros, run.trackers["toy"].zeros)

  outcome = types.SimpleNamespace(
      status="completed", data=data, schedule=types.SimpleNamespace(steps_per_epoch=10),
      state=types.SimpleNamespace(params=params, model_state={}),
      final=types.SimpleNamespace(epoch=3.0, step=30))
  lines = []
  section = run.finish(outcome, str(tmp_path), log=lines.append)
  assert list(section) == ["learning_dynamics", "effective_rank", "toy", "timing_s"]
  assert list(section["timing_s"]) == ["effective_rank", "toy"]
  assert section["learning_dynamics"]["evaluations"] == 3
  assert section["toy"]["train_examples"] == n
  with np.load(tmp_path / "toy.npz") as z:
    np.testing.assert_array_equal(z["zeros"], run.trackers["toy"].zeros)
    np.testing.assert_array_equal(z["label_changed"], np.arange(n) % 4 == 0)
  assert (tmp_path / "dynamics.npz").exists()
  assert len(lines) == 1 and lines[0].startswith("memorization: learning-time AUC ")
  toy_mean = run.trackers["toy"].zeros.mean()
  assert ", effective rank " in lines[0] and lines[0].endswith(f", toy zeros {toy_mean:.4g}")
  # A preempted run reports nothing (the resumed one does).
  preempted = types.SimpleNamespace(**{**vars(outcome), "status": "preempted"})
  assert run.finish(preempted, None) == {}

