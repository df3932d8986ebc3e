"""Exact leave-one-out and the one-run estimators (EL2N, GraNd, TracIn) against known answers."""

import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from memobench import catalogue, prng
from memobench import workload as workload_lib
from memobench.estimators import data_pruning_scores as dps
from memobench.estimators import leave_one_out as loo
from memobench.training import loop
from memobench.training.steps import batch_indices, make_steps


@pytest.fixture(scope="module")
def tiny():
  """digits: 64 training examples, 40% label noise, batch 16, 2 epochs (8 steps)."""
  spec = catalogue.get("digits_partial40")
  spec = dataclasses.replace(
      spec, dataset=dataclasses.replace(spec.dataset, train_size=64),
      budget=dataclasses.replace(spec.budget, batch_size=16),
      analysis=dataclasses.replace(spec.analysis, dynamics=False, effective_rank=False))
  workload = workload_lib.resolve(spec)
  workload = loo.fixed_budget_workload(spec, 2, workload.dataset)
  return workload, workload.corrupted_data(0)


_UPDATES = {}  # id(workload) -> its jitted SGD step (compiled once per batch shape)
_APPLIES = {}  # id(module) -> its jitted forward pass


def reference_run(workload, data, key, drop=None):
  """Brute force: a plain loop of SGD steps on the training set WITHOUT example `drop`.

  Each batch is the one the full run sees at that step, less `drop` (the same
  batch order); its loss is the plain mean over what is left. Written apart
  from the loop and its loss weights. Returns the final parameters.
  """
  schedule, module, tx = workload.schedule, workload.module, workload.tx
  params = jax.jit(make_steps(workload, key).init)(jax.random.fold_in(key, prng.INIT)).params
  opt_state = tx.init(params)
  shuffle_key = jax.random.fold_in(key, prng.SHUFFLE)
  x, y = np.asarray(data.x_train), np.asarray(data.y_train)
  update = _UPDATES.get(id(workload))
  if update is None:
    @jax.jit
    def update(params, opt_state, xb, yb):
      def loss(p):
        logits = module.apply({"params": p}, xb, train=False)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))
      updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
      return optax.apply_updates(params, updates), opt_state
    _UPDATES[id(workload)] = update

  batches = np.asarray(jax.jit(jax.vmap(lambda step: batch_indices(shuffle_key, step, schedule)))(
      jnp.arange(schedule.total_steps)))
  for idx in batches:
    idx = idx[idx != drop] if drop is not None else idx
    params, opt_state = update(params, opt_state, x[idx], y[idx])
  return params


def predict(module, params, x, y):
  apply = _APPLIES.setdefault(id(module), jax.jit(
      lambda p, x: module.apply({"params": p}, x, train=False)))
  logits = apply(params, x)
  return (np.asarray(jnp.argmax(logits, -1)) == np.asarray(y),
          np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, y)))


def test_dropping_a_slot_from_the_loss_is_training_without_the_example(tiny):
  workload, data = tiny
  key = loo.seed_keys(0, 1)[0]
  # An example that is in a batch of the first epoch (so its removal changes a step).
  order = np.asarray(batch_indices(jax.random.fold_in(key, prng.SHUFFLE), jnp.int32(0),
                                   workload.schedule))
  drop = int(order[3])
  member = loop.Member(workload.spec, data, log=lambda _: None, key=key,
                       loss_weights=loo.without(workload.dataset.num_train, drop))
  (masked,) = loop.train_group(workload, [member], vmapped=False)
  brute = reference_run(workload, data, key, drop)
  full = reference_run(workload, data, key)
  for a, b, c in zip(jax.tree.leaves(masked.state.params), jax.tree.leaves(brute),
                     jax.tree.leaves(full)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # ...and it is not simply the full run.
  assert max(float(jnp.max(jnp.abs(a - c))) for a, c in
             zip(jax.tree.leaves(brute), jax.tree.leaves(full))) > 1e-4


def test_vmapped_loo_equals_its_brute_force_definition(tiny):
  workload, data = tiny
  corrupted = np.asarray(data.label_changed)
  probe = loo.select_probe(corrupted, 3, 0)
  assert corrupted[probe].sum() == 1  # stratified: m // 2 corrupted
  keys = loo.seed_keys(0, 2)
  got = loo.train_seeds(workload, data, probe, keys)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  want = {k: np.zeros((2, 3)) for k in ("correct_with", "correct_without", "loss_with",
                                        "loss_without")}
  for s, key in enumerate(keys):
    c, l = predict(workload.module, reference_run(workload, data, key), x[probe], y[probe])
    want["correct_with"][s], want["loss_with"][s] = c, l
    for j, i in enumerate(probe):
      c, l = predict(workload.module, reference_run(workload, data, key, int(i)),
                     x[i:i + 1], y[i:i + 1])
      want["correct_without"][s, j], want["loss_without"][s, j] = c[0], l[0]
  np.testing.assert_array_equal(got["correct_with"], want["correct_with"])
  np.testing.assert_array_equal(got["correct_without"], want["correct_without"])
  np.testing.assert_allclose(got["loss_with"], want["loss_with"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got["loss_without"], want["loss_without"], rtol=1e-4, atol=1e-5)
  # mem_LOO is the definition's mean over seeds; removing i raises its loss here.
  mem = loo.memorization(**{k: got[k] for k in want})
  np.testing.assert_allclose(mem["mem"], (want["correct_with"]
                                          - want["correct_without"]).mean(0))
  np.testing.assert_allclose(mem["loss"], (want["loss_without"] - want["loss_with"]).mean(0),
                             rtol=1e-4, atol=1e-5)
  assert np.all(mem["loss"] > 0)
  assert int(got["model_steps"]) == 8 * workload.schedule.total_steps


def test_loo_statistics_known_answers():
  cw = np.array([[1, 1, 0], [1, 0, 0]])
  cwo = np.array([[0, 1, 0], [0, 1, 1]])
  mem = loo.memorization(cw, cwo, np.zeros((2, 3)), np.array([[1.0, 2, 3], [3, 2, 1]]))
  np.testing.assert_allclose(mem["mem"], [1, -0.5, -0.5])
  np.testing.assert_allclose(mem["mem_se"], [0, 0.5, 0.5])  # std ddof 1 / sqrt(2)
  np.testing.assert_allclose(mem["loss"], [2, 2, 2])
  # Two seeds: one split, r between them, Spearman-Brown 2r / (1 + r).
  a = np.array([0.0, 1, 2, 3, 5])
  b = np.array([0.0, 2, 1, 3, 4])
  r = np.corrcoef(a, b)[0, 1]
  rel = loo.split_half_reliability(np.stack([a, b]), bootstrap=50)
  assert rel["n"] == 1 and rel["mean"] == pytest.approx(2 * r / (1 + r))
  assert len(loo.balanced_splits(8)) == 35 and len(loo.balanced_splits(5)) == 10
  # Identical seeds: perfectly reliable; independent noise: ~0.
  same = loo.split_half_reliability(np.tile(a, (8, 1)), bootstrap=20)
  assert same["mean"] == pytest.approx(1.0)
  noise = np.random.default_rng(0).normal(size=(8, 400))
  assert abs(loo.split_half_reliability(noise, bootstrap=20)["mean"]) < 0.25


def test_top_fraction_overlap_shares_ties():
  truth = np.arange(20.0)  # top 10% = examples 18, 19
  assert loo.top_fraction_overlap(truth, truth) == 1.0
  assert loo.top_fraction_overlap(-truth, truth) == 0.0
  # Estimator: example 19 on top, then 18 tied with 3 others for the last place.
  score = np.zeros(20)
  score[19], score[[18, 0, 1, 2]] = 2.0, 1.0
  assert loo.top_fraction_overlap(score, truth) == pytest.approx((1 + 0.25) / 2)
  # The truth's own ties are broken by tie_break.
  flat = np.zeros(20)
  flat[[5, 6, 7]] = 1.0
  est = np.zeros(20)
  est[[6, 7]] = 1.0
  assert loo.top_fraction_overlap(est, flat, tie_break=-np.arange(20.0)) == 0.5


def test_select_probe_is_stratified_and_fixed_by_the_seed():
  corrupted = np.zeros(100, bool)
  corrupted[::10] = True  # 10 corrupted
  p = loo.select_probe(corrupted, 30, 3)
  assert corrupted[p].sum() == 10 and len(set(p)) == 30  # all 10 corrupted there are
  np.testing.assert_array_equal(p, loo.select_probe(corrupted, 30, 3))
  assert not np.array_equal(p, loo.select_probe(corrupted, 30, 4))
  assert corrupted[loo.select_probe(corrupted, 8, 0)].sum() == 4


def test_el2n_of_known_logits():
  logits = jnp.array([[0.0, 0.0, np.log(2.0)], [1000.0, 0.0, 0.0], [1000.0, 0.0, 0.0]])
  labels = jnp.array([2, 0, 1])
  # softmax (1/4, 1/4, 1/2) - e_2 = (1/4, 1/4, -1/2); a saturated softmax: 0 or sqrt(2).
  np.testing.assert_allclose(dps.el2n_from_logits(logits, labels),
                             [np.sqrt(0.375), 0.0, np.sqrt(2.0)], rtol=1e-6, atol=1e-7)


class Linear(nn.Module):
  """A linear model z = x W + b, with the `train` argument memobench's models take."""

  @nn.compact
  def __call__(self, x, *, train=False):
    del train
    return nn.Dense(3)(x)


def test_tracin_self_influence_of_a_linear_model():
  module = Linear()
  x = jnp.array([[1.0, 2.0], [0.5, -1.0]])
  y = jnp.array([0, 2])
  tracin = dps.TracInSelfInfluence(2)
  want = np.zeros(2)
  for lr, seed in ((0.1, 0), (0.05, 1)):
    params = module.init(jax.random.key(seed), x)["params"]
    dense = params["Dense_0"]
    w, b = np.asarray(dense["kernel"], np.float64), np.asarray(dense["bias"], np.float64)
    # By hand: d CE / d W = x (p - e_y)^T, d CE / d b = p - e_y, so
    # ||grad||^2 = (||x||^2 + 1) ||p - e_y||^2.
    z = np.asarray(x, np.float64) @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    r = p - np.eye(3)[np.asarray(y)]
    sq = (np.sum(np.asarray(x, np.float64) ** 2, 1) + 1) * np.sum(r ** 2, 1)
    want += lr * sq
    got = dps.per_example_grad_sq_norms(module, params, {}, x, y)
    np.testing.assert_allclose(got, sq, rtol=1e-5)
    scores = dps.scorer(module)(params, {}, x, y)
    np.testing.assert_allclose(scores["grand"], np.sqrt(sq), rtol=1e-5)
    np.testing.assert_allclose(scores["el2n"], np.sqrt(np.sum(r ** 2, 1)), rtol=1e-5)
    tracin.add(lr, got)
  np.testing.assert_allclose(tracin.value, want, rtol=1e-5)
  assert tracin.checkpoints == 2


def test_memorization_estimators_quick_in_process(tmp_path):
  """The benchmark's cells end to end at smoke size, in this process; a rerun keeps them all."""
  from experiments import driver, memorization_estimators as me  # pylint: disable=import-outside-toplevel
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  config = driver.configure(me.EXPERIMENT, True, [])
  lines = []
  summary = driver.run_experiment(me.EXPERIMENT, config,
                                  driver.Options(str(tmp_path), log=lines.append))
  d = summary["datasets"]["digits"]
  assert set(d["estimators"]) == set(me.ESTIMATORS)
  for e in d["estimators"].values():
    assert set(e["spearman"]) == {"pooled", "corrupted", "clean", "weighted"}
    assert e["cost"]["model_steps"] > 0
  assert d["estimators"]["fz_mem"]["cost"]["model_steps"] == 16 * 3 * 2  # K x epochs x steps
  assert d["task"]["probe_corrupted"] == 3
  assert set(d["fit_gated"]) == {*me.GATED, "one_run_fit"}
  assert [v["verdict"] in ("agrees", "partly", "inconclusive", "disagrees")
          for v in summary["verdicts"]] == [True, True]
  assert set(summary["spearman_vs_loo"]) == set(me.ESTIMATORS)
  table = example_table.read(str(tmp_path / "cells" / "digits_table" / "scores.parquet"))
  assert len(table) == 6 * (2 + 16) and (table["raw_key"] != "").all()
  for png in ("correlations.png", "compute.png"):
    assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
  again = []
  driver.run_experiment(me.EXPERIMENT, config, driver.Options(str(tmp_path), log=again.append))
  assert sum("kept existing record" in line for line in again) == len(me.grid(config))


def test_the_estimator_table_keys_its_rows_by_the_clean_inputs_under_pixel_corruption():
  """Issue 27 item 9: under randpix / shufpix a row's key is the clean example's, so it joins
  the same example's rows of any other run (and of the clean run)."""
  from experiments import memorization_estimators as me  # pylint: disable=import-outside-toplevel
  from memobench import example_table  # pylint: disable=import-outside-toplevel
  keyed = {}
  for corruption in ("clean", "randpix", "shufpix"):
    _, dataset, data, probe = me.load_task(me.Task("digits", corruption, 64, 32, 1, 6, 0, ()),
                                           None)
    x, original = np.asarray(dataset.x_train)[probe], np.asarray(data.y_train_original)[probe]
    columns = me.probe_columns(dataset, data, probe)
    assert columns["keys"] == example_table.example_key(x, original)
    if corruption != "clean":  # the corrupted inputs differ, and their hashes would too
      assert not np.array_equal(np.asarray(data.x_train)[probe], x)
      assert columns["keys"] != example_table.example_key(np.asarray(data.x_train)[probe],
                                                          original)
    keyed[corruption] = dict(zip(probe.tolist(), columns["keys"]))
  shared = set(keyed["clean"]) & set(keyed["randpix"]) & set(keyed["shufpix"])
  assert all(keyed["clean"][i] == keyed["randpix"][i] == keyed["shufpix"][i] for i in shared)


def test_one_run_estimators_train_their_shared_runs_once_and_score_the_examples_asked():
  from memobench.estimators import base, proxies, runner  # pylint: disable=import-outside-toplevel
  from memobench import specs  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  spec, _ = specs.with_overrides(catalogue.get("digits_partial40"), [
      "dataset.train_size=128", "budget.batch_size=32"])
  dataset = datasets.load(spec.dataset)
  data = workload_lib.resolve(spec, dataset=dataset).corrupted_data(0)
  examples = np.array([0, 5, 7, 40, 100])
  context = base.RunContext(spec, dataset, data, seed=0, epochs=3,
                            options={"proxy_seeds": 2, "early_epoch": 1, "examples": examples})
  records = {}
  scored = runner.score_runs(context, proxies.ESTIMATORS, records, log=lambda _: None)
  assert set(records) == {"proxy_runs", "turnover_run"}
  assert [e.name for e in proxies.ESTIMATORS] == list(scored.scores)
  for name, s in scored.scores.items():
    assert s.score.shape == (5,) and np.isfinite(s.score).all(), name
    assert s.summary["cost"]["model_steps"] > 0 and s.summary["cost"]["seconds"] > 0, name
  a = records["proxy_runs"].arrays
  # 3 epochs of 4 steps: learning steps are evaluation steps, on the epoch scale.
  first, stable = scored.scores["first_learned"].score, scored.scores["stable_learned"].score
  assert set(np.unique(first)) <= {1.0, 2.0, 3.0, 4.0} and (stable >= first).all()
  np.testing.assert_array_equal(scored.scores["cumulative_accuracy"].score,
                                1.0 - a["dyn_correct_fraction"][0])
  assert a["evaluations"] == 3 and a["tracin_checkpoints"] == 3
  assert a["tracin"].shape == a["final_loss"].shape == (2, 5)  # every run is recorded
  assert scored.scores["el2n"].summary["cost"]["model_steps"] == 2 * 4  # 2 runs x epoch 1
  assert (scored.scores["tracin"].score >= 0).all()
  # Another run is an independent replicate; EL2N averages the runs asked for.
  replicate = dataclasses.replace(context, options={**context.options, "run": 1,
                                                    "runs": (1,)})
  np.testing.assert_array_equal(
      proxies.FINAL_LOSS.from_runs(records["proxy_runs"], replicate).score, a["final_loss"][1])
  np.testing.assert_array_equal(
      proxies.EL2N.from_runs(records["proxy_runs"], replicate).score, a["el2n"][1])
  assert not np.array_equal(a["final_loss"][0], a["final_loss"][1])


def test_group_and_population_weighted_correlations_known_answers():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=40), rng.normal(size=40)
  a[:5] = a[0]  # ties
  # Integer weights are duplicated examples: the weighted correlations equal the plain ones
  # of the duplicated sample (Spearman: weighted mid-ranks are its mid-ranks minus 1/2).
  w = rng.integers(1, 4, 40).astype(float)
  dup_a, dup_b = np.repeat(a, w.astype(int)), np.repeat(b, w.astype(int))
  import scipy.stats  # pylint: disable=import-outside-toplevel
  assert loo.weighted_pearson(a, b, w) == pytest.approx(np.corrcoef(dup_a, dup_b)[0, 1])
  got = loo.weighted_pearson(loo.weighted_ranks(a, w), loo.weighted_ranks(b, w), w)
  assert got == pytest.approx(scipy.stats.spearmanr(dup_a, dup_b)[0])
  np.testing.assert_allclose(loo.weighted_ranks(np.array([2.0, 1.0, 2.0]), np.ones(3)),
                             [2.0, 0.5, 2.0])
  corrupted = np.arange(40) < 20
  weights = loo.population_weights(corrupted, 0.3)
  assert np.average(corrupted, weights=weights) == pytest.approx(0.3)
  cells = loo.group_correlations(a, b, corrupted, 0.5, bootstrap=50)
  # At the probe's own share (0.5) the weighted correlation is the pooled one.
  assert cells["spearman"]["weighted"]["mean"] == pytest.approx(
      cells["spearman"]["pooled"]["mean"])
  assert cells["pearson"]["corrupted"]["mean"] == pytest.approx(
      np.corrcoef(a[:20], b[:20])[0, 1])
  assert cells["spearman"]["clean"]["n"] == 20
  # Opposite relations inside the groups, a positive one pooled (the pattern).
  x = np.r_[np.linspace(1, 2, 20), np.linspace(0, 1, 20)]
  y = np.r_[np.linspace(2, 1, 20), np.linspace(0, 1, 20)]
  opposite = loo.group_correlations(x, y, corrupted, 0.5, bootstrap=20)["spearman"]
  assert opposite["pooled"]["mean"] > 0.3
  assert opposite["corrupted"]["mean"] == pytest.approx(-1.0)
  assert opposite["clean"]["mean"] == pytest.approx(1.0)


def test_fit_gating_reliability_and_the_attenuation_ceiling():
  gated = loo.fit_gated(np.array([0.5, 3.0, 2.0, np.nan]), np.array([True, False, True, False]))
  np.testing.assert_allclose(gated, [0.5, -0.5, 2.0, -0.5])
  x = np.arange(10.0)
  half = loo.half_reliability(x, 2 * x + 1)
  assert half["r"] == pytest.approx(1.0) and half["reliability"] == pytest.approx(1.0)
  rng = np.random.default_rng(1)
  truth = rng.normal(size=2000)
  one, two = truth + rng.normal(size=2000), truth + rng.normal(size=2000)
  got = loo.half_reliability(one, two)
  # Each half has reliability 1/2: r = 0.5, Spearman-Brown 2(0.5)/1.5 = 2/3.
  assert got["r"] == pytest.approx(0.5, abs=0.04)
  assert got["reliability"] == pytest.approx(2 / 3, abs=0.04)
  assert loo.half_reliability(one, two, halves=1)["reliability"] == got["r"]
  assert loo.attenuation_ceiling(0.81, 0.64) == pytest.approx(0.72)
  assert loo.attenuation_ceiling(None, 0.5) is None
