"""Huh et al. 2023 pieces: linear over-parameterization (collapse), linear MLPs, the experiment."""

import os

import jax
import numpy as np
import pytest

from memobench import catalogue, models, specs, workload
from memobench.models import mlp
from experiments import driver, huh2023_low_rank
from tests.conftest import REPO

FIXTURE = os.path.join(REPO, "tests", "data", "experiments", "huh2023_low_rank.records.json.gz")


def _init(module, x, seed=0):
  return module.init(jax.random.key(seed), x, train=False)["params"]


def test_collapsed_expansion_gives_the_expanded_models_outputs():
  x = np.random.RandomState(0).randn(7, 6).astype(np.float32)
  for activation in ("relu", "linear"):
    expanded = mlp.MLP(3, (5, 4), activation=activation, linear_expansion=3)
    params = _init(expanded, x)
    assert set(params) == {"ExpandedDense_0", "ExpandedDense_1", "ExpandedDense_2"}
    # Only the last factor of a layer has a bias.
    assert set(params["ExpandedDense_0"]["Dense_0"]) == {"kernel"}
    assert set(params["ExpandedDense_0"]["Dense_2"]) == {"kernel", "bias"}
    plain = mlp.MLP(3, (5, 4), activation=activation)
    collapsed = mlp.collapse(params)
    assert jax.tree.map(np.shape, collapsed) == jax.tree.map(np.shape, _init(plain, x))
    np.testing.assert_allclose(plain.apply({"params": collapsed}, x, train=False),
                               expanded.apply({"params": params}, x, train=False),
                               rtol=1e-5, atol=1e-5)


def test_collapse_multiplies_the_factors_known_answer():
  k0 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
  k1 = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)  # swaps the columns
  params = {"ExpandedDense_0": {"Dense_0": {"kernel": k0},
                                "Dense_1": {"kernel": k1, "bias": np.array([1.0, -1.0])}},
            "Dense_7": {"kernel": k0, "bias": np.zeros(2)}}
  out = mlp.collapse(params)
  np.testing.assert_array_equal(out["Dense_0"]["kernel"], [[2.0, 1.0], [4.0, 3.0]])
  np.testing.assert_array_equal(out["Dense_0"]["bias"], [1.0, -1.0])
  assert out["Dense_7"] is params["Dense_7"]  # an unexpanded layer comes back unchanged


def test_expansion_one_and_relu_keep_the_existing_parameters():
  x = np.ones((2, 64), np.float32)
  spec = catalogue.get("digits_clean")
  module = models.build(spec.model, 10)
  assert module.activation == "relu" and module.linear_expansion == 1
  params = _init(module, x)
  assert set(params) == {"Dense_0", "Dense_1"}
  # Model "mlp" at its defaults is mlp1x512, parameter for parameter.
  generic = models.build(specs.ModelSpec("mlp"), 10)
  np.testing.assert_array_equal(_init(generic, x)["Dense_0"]["kernel"],
                                params["Dense_0"]["kernel"])
  # The new fields enter the hash only when set.
  assert specs.spec_hash(spec) == specs.spec_hash(
      specs.with_overrides(spec, ["model.linear_expansion=1", "model.activation=relu"])[0])
  assert specs.spec_hash(spec) != specs.spec_hash(
      specs.with_overrides(spec, ["model.linear_expansion=2"])[0])


def test_a_linear_mlp_is_affine():
  module = mlp.MLP(4, (8, 8, 8), activation="linear")
  rs = np.random.RandomState(1)
  x1, x2 = rs.randn(3, 5).astype(np.float32), rs.randn(3, 5).astype(np.float32)
  params = _init(module, x1)
  f = lambda x: module.apply({"params": params}, x, train=False)  # noqa: E731
  np.testing.assert_allclose(f(0.3 * x1 + 0.7 * x2), 0.3 * f(x1) + 0.7 * f(x2),
                             rtol=1e-4, atol=1e-5)
  relu = mlp.MLP(4, (8, 8, 8))
  g = lambda x: relu.apply({"params": params}, x, train=False)  # noqa: E731
  assert not np.allclose(g(0.3 * x1 + 0.7 * x2), 0.3 * g(x1) + 0.7 * g(x2), atol=1e-3)


@pytest.mark.parametrize("overrides, message", [
    (["model.linear_expansion=0"], "model.linear_expansion must be >= 1"),
    (["model.activation=tanh"], "model.activation must be one of"),
    (["model.depth=3"], "read only by model 'mlp'"),
    (["model.name=mlp", "model.width=0"], "model.width must be >= 1"),
    (["model.name=alexnet", "model.linear_expansion=2"], "is an MLP option"),
])
def test_bad_mlp_options_are_refused_in_one_line(overrides, message):
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), overrides)
  with pytest.raises(specs.SpecError, match=message):
    workload.validate(spec)


def test_spearman_known_answers():
  assert huh2023_low_rank.spearman([1, 2, 3, 4], [9.0, 5.0, 2.0, 1.0]) == pytest.approx(-1.0)
  assert huh2023_low_rank.spearman([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
  assert huh2023_low_rank.spearman([1, 2, 3], [1.0, 1.0, 1.0]) is None  # no ranking
  assert huh2023_low_rank.spearman([1, 2], [1.0, 2.0]) is None


@pytest.fixture(scope="module")
def recorded():
  """The --quick run's recorded cells and the summary made of them (no training)."""
  config, records, _ = driver.load_records(huh2023_low_rank.EXPERIMENT, FIXTURE)
  return config, records, huh2023_low_rank.summarize(config, records)


def test_huh2023_recorded_summary(recorded):
  config, records, summary = recorded
  assert config.quick and set(records) == {c.key for c in huh2023_low_rank.grid(config)}
  by_depth = summary["effective_rank_by_depth"]
  for act in ("linear", "relu"):
    for stage in ("init", "trained"):
      for form in huh2023_low_rank.FORMS:
        for depth in ("1", "3"):
          cell = by_depth[act][stage][form][depth]
          assert cell["n"] == 1 and cell["mean"] > 0
  # The Gram (squared) spectrum is more concentrated than the plain one: its exp-entropy is lower.
  init = by_depth["relu"]["init"]
  assert init["gram_effective_rank"]["1"]["mean"] <= init["effective_rank"]["1"]["mean"]
  over = summary["overparameterization"]["digits"]
  assert set(over) == {"1", "2"} and 0.1 < over["2"]["test_accuracy"]["mean"] <= 1.0
  for cell in over.values():  # each d at the grid's rate of lowest training loss
    assert set(cell["grid"]) == {"0.1", "0.01"} and cell["lr"] in (0.1, 0.01)
    losses = {float(lr): g["train_loss"]["mean"] for lr, g in cell["grid"].items()}
    assert cell["lr"] == min(losses, key=losses.get)
  words = [v["verdict"] for v in summary["verdicts"]]
  assert len(words) == 3 and set(words) <= {"agrees", "partly", "inconclusive", "disagrees"}
  assert "gram_entropy" in summary["verdicts"][0]["measured"].split(";")[0]  # the authors' form first


def _run(train_loss, test_accuracy, status="budget_exhausted"):
  ranks = {form: 1.0 for form in huh2023_low_rank.FORMS}
  return {"metrics": {"train_loss": train_loss, "test_accuracy": test_accuracy,
                      "train_accuracy": 1.0 if train_loss is not None else 0.1,
                      "steps_to_fit": None},
          "run": {"status": status}, "memorization": {"effective_rank": ranks}}


def test_each_expansion_is_compared_at_its_lowest_training_loss_never_a_diverged_rate():
  config = huh2023_low_rank.Config(overparam_lrs=(0.1, 0.03, 0.01))
  key = lambda lr: huh2023_low_rank.overparam_key("digits", 4, lr)  # noqa: E731
  records = {key(0.1): [_run(0.001, 0.9), _run(None, 0.1, "diverged")],  # lowest, but diverged
             key(0.03): [_run(0.01, 0.95), _run(0.02, 0.97)],
             key(0.01): [_run(0.05, 0.99), _run(0.05, 0.99)]}
  cell = huh2023_low_rank.overparam_cell(config, records, "digits", 4)
  assert cell["lr"] == 0.03 and not cell["lr_at_grid_edge"]
  assert cell["test_accuracy"]["values"] == [0.95, 0.97] and cell["grid"]["0.1"]["diverged"] == 1
  every = {k: [_run(None, 0.1, "diverged")] for k in records}
  assert huh2023_low_rank.overparam_cell(config, every, "digits", 4)["lr"] is None


def test_a_form_falls_with_depth_only_when_monotone_enough_and_resolved():
  cell = lambda mean, std=0.01: {"mean": mean, "std": std, "n": 3}  # noqa: E731
  falls = {"f": {"1": cell(2.0), "2": cell(2.1), "4": cell(1.8), "8": cell(1.7)}}  # rho -0.8
  assert huh2023_low_rank._falls(falls, [1, 2, 4, 8], "f") == 1
  noisy = {"f": {"1": cell(2.0, 0.5), "2": cell(1.9), "4": cell(1.8), "8": cell(1.7, 0.5)}}
  assert huh2023_low_rank._falls(noisy, [1, 2, 4, 8], "f") == 0  # monotone, within noise
  rises = {"f": {"1": cell(1.0), "2": cell(1.1), "4": cell(1.2), "8": cell(1.3)}}
  assert huh2023_low_rank._falls(rises, [1, 2, 4, 8], "f") == -1
  flat = {"f": {"1": cell(1.0), "2": cell(1.5), "4": cell(0.5), "8": cell(1.3)}}
  assert huh2023_low_rank._falls(flat, [1, 2, 4, 8], "f") == 0


def test_init_ranks_are_those_of_the_runs_initial_parameters(recorded):
  """The init cell recomputes the embedding ranks at exactly the parameters a run starts from:
  steps.init's key for the run's seed (recorded cells: the trained run's spec and seed)."""
  from memobench import models, prng  # pylint: disable=import-outside-toplevel
  from memobench.data import datasets  # pylint: disable=import-outside-toplevel
  from memobench.metrics import effective_rank  # pylint: disable=import-outside-toplevel
  from memobench.training import steps  # pylint: disable=import-outside-toplevel
  _, records, _ = recorded
  (run,) = records["depth_relu_3"]
  spec = specs.from_dict(run["spec"]["resolved"])
  init = records["init_relu_3"]
  assert init["seeds"] == [run["spec"]["resolved"]["seed"]]
  dataset = datasets.load(spec.dataset)
  wl = workload.resolve(spec, dataset=dataset)
  run_key = prng.run_key(spec.seed)
  params = jax.jit(steps.make_steps(wl, run_key).init)(
      jax.random.fold_in(run_key, prng.INIT)).params
  module = models.build(spec.model, dataset.num_classes)
  h = effective_rank.penultimate_features(module, params, {}, dataset.x_test)
  want = effective_rank.spectra(h)
  for form in huh2023_low_rank.FORMS:
    assert init["ranks"][0][form] == pytest.approx(want[form], rel=1e-5)
