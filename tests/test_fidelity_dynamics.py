"""Known answers for the definitions taken from the papers' released code (issue 12).

Forgetting events and cumulative accuracy (Toneva et al. 2019; Jiang et al.
2021), the effective-rank forms (Roy & Vetterli 2007; Huh et al. 2023), and
turn-over dropout's training step (Kobayashi et al. 2020).
"""

import dataclasses
import math
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import catalogue, metrics, prng, specs, workload
from memobench.metrics import dynamics, effective_rank, stats, turnover
from memobench.training import steps as steps_lib


# --------------------------------------------------------------------------
# Forgetting events, Toneva et al.'s convention; cumulative accuracy
# --------------------------------------------------------------------------

# Correctness at 5 evaluations (rows) of 5 examples (columns):
#   0 clean      learned at once, never forgotten            events 0, score 0
#   1 clean      1 0 1 0 1: forgotten twice                  events 2, score 2
#   2 clean      0 1 1 1 1: learned at the 2nd evaluation    events 0, score 0
#   3 corrupted  never learned                               events 0, score 5 (= evaluations)
#   4 corrupted  0 0 0 1 0: learned late, forgotten once     events 1, score 1
_CORRECT = np.array([[1, 1, 0, 0, 0],
                     [1, 0, 1, 0, 0],
                     [1, 1, 1, 0, 0],
                     [1, 0, 1, 0, 1],
                     [1, 1, 1, 0, 0]], bool)
_CORRUPTED = np.array([False, False, False, True, True])


def _tracked():
  y = np.arange(5) % 3
  tracker = dynamics.LearningDynamics(y)
  for e, row in enumerate(_CORRECT):
    tracker.update(10 * (e + 1), np.where(row, y, (y + 1) % 3))
  return tracker


def test_never_learned_examples_get_the_maximum_forgetting_score():
  a = _tracked().arrays()
  # The raw counts stay in the npz; the score is what Toneva et al. sort by.
  assert a["forgetting_events"].tolist() == [0, 2, 0, 0, 1]
  assert a["forgetting_score"].tolist() == [0, 2, 0, 5, 1]
  assert a["first_learned_step"].tolist() == [10, 10, 20, -1, 40]
  # Unforgettable: learned and never forgotten (not the never-learned example).
  assert a["stays_learned"].tolist() == [True, False, True, False, False]
  # Cumulative training accuracy: the mean correctness over the 5 evaluations.
  np.testing.assert_allclose(a["correct_fraction"], [1.0, 0.6, 0.8, 0.0, 0.2])


def test_forgetting_auc_follows_toneva_and_cumulative_accuracy_auc_follows_jiang():
  s = _tracked().summary(_CORRUPTED, steps_per_epoch=10)
  # Scores: corrupted (5, 1) vs clean (0, 2, 0). Pairs won: 5 beats all three
  # (3); 1 beats the two zeros (2), loses to 2. AUC = 5 / 6.
  assert s["forgetting_events_auc"] == pytest.approx(5 / 6)
  # The raw counts (0, 1) vs (0, 2, 0) would give (1/2 + 0 + 1/2 + 1 + 0 + 1) / 6 = 1/2:
  # the never-learned corrupted example would rank as unforgettable.
  assert stats.roc_auc(np.array([0, 2, 0, 0, 1]), _CORRUPTED) == pytest.approx(0.5)
  # 1 - cumulative accuracy: corrupted (1.0, 0.8) vs clean (0.0, 0.4, 0.2): all 6 pairs won.
  assert s["cumulative_accuracy_auc"] == pytest.approx(1.0)
  assert s["cumulative_accuracy_mean"]["corrupted"] == pytest.approx(0.1)
  assert s["cumulative_accuracy_mean"]["clean"] == pytest.approx(0.8)
  # The raw mean count is unchanged by the convention.
  assert s["forgetting_events_mean"]["corrupted"] == pytest.approx(0.5)


def test_forgetting_score_is_derived_from_the_checkpointed_state_alone():
  tracker = _tracked()
  state = tracker.checkpoint_state()
  assert set(state) == {"first_learned_step", "last_learned_step", "forgetting_events",
                        "correct_count", "correct", "evaluations", "last_step"}
  resumed = dynamics.LearningDynamics(np.arange(5) % 3)
  resumed.restore_checkpoint_state(jax.tree.map(np.copy, state))
  for k, v in tracker.arrays().items():
    np.testing.assert_array_equal(v, resumed.arrays()[k])
  # Before any evaluation nothing is learned and the maximum is 0 evaluations.
  assert dynamics.LearningDynamics(np.zeros(3)).arrays()["forgetting_score"].tolist() == [0] * 3


# --------------------------------------------------------------------------
# Effective rank: Roy & Vetterli vs Huh et al.'s Gram entropy
# --------------------------------------------------------------------------


def _with_spectrum(singular_values, rows=12, cols=8, seed=0, orthogonal_to_ones=False):
  """A (rows x cols) matrix with exactly these singular values (random singular vectors).

  orthogonal_to_ones: the left singular vectors are orthogonal to the all-ones
  vector, so the columns have zero mean and centering leaves the matrix as is.
  """
  rng = np.random.RandomState(seed)
  a = rng.randn(rows, rows)
  if orthogonal_to_ones:
    a = np.concatenate([np.ones((rows, 1)), a[:, 1:]], axis=1)
  u, _ = np.linalg.qr(a)
  if orthogonal_to_ones:
    u = u[:, 1:]
  v, _ = np.linalg.qr(rng.randn(cols, cols))
  k = len(singular_values)
  return u[:, :k] @ np.diag(singular_values) @ v[:, :k].T


def _entropy(p):
  p = np.asarray(p, np.float64) / np.sum(p)
  return float(-np.sum(p * np.log(p)))


def test_effective_rank_forms_on_a_known_spectrum():
  s = np.array([4.0, 2.0, 1.0, 1.0])
  m = _with_spectrum(s)
  ranks = effective_rank.spectra(m)
  # Roy & Vetterli: p = s / sum s = (1/2, 1/4, 1/8, 1/8), H = 1.75 ln 2.
  assert ranks["effective_rank"] == pytest.approx(math.exp(1.75 * math.log(2)), rel=1e-9)
  # Huh et al.: q = s^2 / sum s^2 = (16, 4, 1, 1) / 22; entropy without the exp.
  q = np.array([16, 4, 1, 1]) / 22
  assert ranks["gram_entropy"] == pytest.approx(-np.sum(q * np.log(q)), rel=1e-9)
  assert ranks["gram_effective_rank"] == pytest.approx(math.exp(ranks["gram_entropy"]), rel=1e-12)
  # The Gram matrix's normalized singular values are exactly q.
  gram_s = np.linalg.svd(m @ m.T, compute_uv=False)
  assert ranks["gram_entropy"] == pytest.approx(_entropy(gram_s[gram_s > 1e-9]), rel=1e-9)
  assert effective_rank.gram_entropy(m) == ranks["gram_entropy"]
  assert effective_rank.gram_effective_rank(m) == ranks["gram_effective_rank"]
  # Squaring weighs the large singular values more: the Gram form is smaller.
  assert ranks["gram_effective_rank"] < ranks["effective_rank"]
  # r equal singular values: both forms give r, the Gram entropy ln r.
  flat = _with_spectrum([0.3] * 5)
  assert effective_rank.effective_rank(flat) == pytest.approx(5.0, rel=1e-9)
  assert effective_rank.gram_effective_rank(flat) == pytest.approx(5.0, rel=1e-9)
  assert effective_rank.gram_entropy(flat) == pytest.approx(math.log(5), rel=1e-9)
  # A diagonal matrix: its singular values are its diagonal's magnitudes.
  d = np.diag([3.0, -1.0, 0.0])
  assert effective_rank.effective_rank(d) == pytest.approx(math.exp(_entropy([3, 1])), rel=1e-9)
  assert effective_rank.gram_entropy(d) == pytest.approx(_entropy([9, 1]), rel=1e-9)


def test_centering_removes_the_mean_row_and_nothing_else():
  s = np.array([3.0, 2.0, 1.0])
  centered = _with_spectrum(s, rows=10, cols=6, orthogonal_to_ones=True)
  np.testing.assert_allclose(centered.mean(axis=0), 0.0, atol=1e-12)
  # A large shared offset: raw, one direction dominates; centered, the known spectrum.
  offset = centered + 50.0 * np.linspace(1, 2, 6)[None, :]
  ranks = effective_rank.spectra(offset)
  assert ranks["effective_rank_centered"] == pytest.approx(math.exp(_entropy(s)), rel=1e-9)
  assert ranks["gram_entropy_centered"] == pytest.approx(_entropy(s ** 2), rel=1e-9)
  assert ranks["gram_effective_rank_centered"] == pytest.approx(
      math.exp(_entropy(s ** 2)), rel=1e-9)
  assert ranks["effective_rank"] < 1.2 and ranks["gram_effective_rank"] < 1.01
  assert ranks["gram_entropy"] < 0.05


def test_near_degenerate_and_degenerate_spectra():
  # A near-degenerate pair: continuous in the singular values, no jump.
  pair = effective_rank.spectra(_with_spectrum([1.0, 1.0 - 1e-7]))
  assert pair["effective_rank"] == pytest.approx(2.0, rel=1e-9)
  assert pair["gram_entropy"] == pytest.approx(math.log(2), rel=1e-9)
  # A near-zero singular value (rank 2 up to 1e-12, as float32 embeddings of a
  # collapsed unit give) counts for ~nothing in either form.
  tiny = effective_rank.spectra(_with_spectrum([2.0, 1.0, 1e-12]))
  assert tiny["effective_rank"] == pytest.approx(math.exp(_entropy([2, 1])), rel=1e-9)
  assert tiny["gram_entropy"] == pytest.approx(_entropy([4, 1]), rel=1e-9)
  # Rank one: 1 and entropy 0; the zero matrix: 0 (no dimension); not finite: NaN.
  one = effective_rank.spectra(np.outer(np.arange(1, 6), np.ones(4)))
  assert one["effective_rank"] == pytest.approx(1.0)
  assert one["gram_effective_rank"] == pytest.approx(1.0)
  assert one["gram_entropy"] == pytest.approx(0.0, abs=1e-9)
  zero = effective_rank.spectra(np.zeros((4, 3)))
  assert zero["effective_rank"] == zero["gram_effective_rank"] == zero["gram_entropy"] == 0.0
  # A constant matrix is rank one raw and zero centered.
  constant = effective_rank.spectra(np.ones((4, 3)))
  assert constant["effective_rank"] == pytest.approx(1.0)
  assert constant["effective_rank_centered"] == constant["gram_entropy_centered"] == 0.0
  bad = effective_rank.spectra(np.array([[np.nan, 1.0], [0.0, 1.0]]))
  assert all(math.isnan(v) for v in bad.values())


def test_the_effective_rank_split_is_a_checked_spec_option_hashed_only_when_set():
  spec = catalogue.get("digits_clean")
  assert spec.analysis.effective_rank_split == "test"
  train = specs.with_overrides(spec, ["analysis.effective_rank_split=train"])[0]
  assert train.analysis.effective_rank_split == "train"
  # The default leaves every existing spec hash as it was; setting it changes the hash.
  fields = dataclasses.fields(specs.AnalysisSpec)
  assert [f for f in fields if f.name == "effective_rank_split"][0].metadata.get(
      "hashed_when_set")
  assert specs.spec_hash(train) != specs.spec_hash(spec)
  bad = dataclasses.replace(spec, analysis=dataclasses.replace(
      spec.analysis, effective_rank_split="validation"))
  with pytest.raises(specs.SpecError, match="effective_rank_split must be one of test, train"):
    metrics.check(bad)


def test_the_section_reports_every_form_of_the_chosen_split():
  spec = catalogue.get("digits_clean")
  resolved = workload.resolve(spec)
  module = resolved.module
  x = np.random.RandomState(0).rand(40, *resolved.dataset.input_shape).astype(np.float32)
  variables = module.init(jax.random.key(0), jnp.asarray(x[:1]), train=False)
  section = effective_rank.embedding_rank(module, variables["params"], {}, x, "train")
  assert section["split"] == "train" and section["examples"] == 40
  h = effective_rank.penultimate_features(module, variables["params"], {}, x)
  for key, value in effective_rank.spectra(h).items():
    assert section[key] == value


# --------------------------------------------------------------------------
# Turn-over dropout: one step updates only the example's own sub-network
# --------------------------------------------------------------------------


def test_one_step_at_batch_size_one_updates_only_the_units_of_the_examples_own_mask():
  spec = catalogue.get("digits_partial40")
  spec = dataclasses.replace(
      spec, budget=dataclasses.replace(spec.budget, batch_size=1),
      analysis=dataclasses.replace(spec.analysis, turnover_dropout=0.5))
  assert spec.optimizer.weight_decay == 0  # an update is then -lr * gradient at step 0
  resolved = workload.resolve(spec)
  data = resolved.corrupted_data(spec.seed)
  key = prng.run_key(spec.seed)
  steps = steps_lib.make_steps(resolved, key)
  state = steps.init(jax.random.fold_in(key, prng.INIT))
  after = jax.jit(steps.train_step)(state, data)
  # The example trained on at step 0, and its own mask over the 512 hidden units
  # of the one dropout layer (module path "Dropout_0").
  order = steps.epoch_order(jnp.zeros((), jnp.int32))
  idx = steps_lib.batch_indices(jax.random.fold_in(key, prng.SHUFFLE), jnp.zeros((), jnp.int32),
                                resolved.schedule, order)
  assert idx.shape == (1,)
  mask = np.asarray(turnover.example_masks(
      turnover.turnover_key(key), zlib.crc32(b"Dropout_0") & 0x7FFFFFFF, idx, (512,), 0.5))[0]
  assert 150 < mask.sum() < 362  # about half the units
  before_p, after_p = state.params, after.params
  changed_bias = np.asarray(after_p["Dense_0"]["bias"] != before_p["Dense_0"]["bias"])
  changed_kernel = np.asarray(
      (after_p["Dense_0"]["kernel"] != before_p["Dense_0"]["kernel"]).any(axis=0))
  changed_out = np.asarray(
      (after_p["Dense_1"]["kernel"] != before_p["Dense_1"]["kernel"]).any(axis=1))
  # Outside the own mask: no first-layer unit (kernel column, bias) and no
  # outgoing weight moves; the flipped sub-network is untouched by this example.
  assert not (changed_bias & ~mask).any()
  assert not (changed_kernel & ~mask).any()
  assert not (changed_out & ~mask).any()
  # Inside it, every unit the example activates (ReLU on) moves.
  x = np.asarray(data.x_train)[np.asarray(idx)].reshape(1, -1)
  active = (x @ np.asarray(before_p["Dense_0"]["kernel"])
            + np.asarray(before_p["Dense_0"]["bias"]))[0] > 0
  np.testing.assert_array_equal(changed_bias, mask & active)
  np.testing.assert_array_equal(changed_out, mask & active)
  assert (mask & active).sum() > 20
