"""Leaderboard tracks: fixed tasks ranked within, schema v2 (v1 still read), the page's tables."""

import copy
import dataclasses
import json
import os
import re
import shutil

import pytest

from memobench import catalogue, leaderboard, page, schemas, specs, tracks
from tests.conftest import REPO
from tests.test_leaderboard import fake_result, write
from tests.test_page import _headless


def _spec(name, **model):
  spec = catalogue.get(name)
  if model:
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, **model))
  return spec


def _runs(tmp_path, rel, spec, accuracies, *, label=None, epochs_to_fit=None, status=None):
  """One result.json per seed of `spec`, its real hash and resolved spec."""
  for seed, acc in enumerate(accuracies):
    censored = epochs_to_fit is not None and epochs_to_fit[seed] is None
    doc = fake_result(label or spec.name, specs.spec_hash(spec), seed, acc,
                      status=(status or ("budget_exhausted" if censored else "completed")))
    doc["spec"]["resolved"] = dataclasses.asdict(spec)
    if epochs_to_fit is not None:
      e = epochs_to_fit[seed]
      doc["run"]["epochs"] = 50.0 if censored else e
      doc["run"]["steps"] = 500 if censored else int(e * 10)
      doc["metrics"].update(epochs_to_fit=e, steps_to_fit=None if censored else int(e * 10),
                            steps_to_fit_censored=censored,
                            steps_to_fit_lower_bound=500 if censored else None,
                            epochs_to_fit_lower_bound=50.0 if censored else None)
    write(tmp_path, f"{rel}/seed{seed}", doc)


def _nested(pairs):
  """(dotted path, value) pairs as the nested dict a summary's config holds."""
  out = {}
  for path, value in pairs:
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = list(value) if isinstance(value, tuple) else value
  return out


# The estimator benchmark's default task, as its summary's config records it.
TASK_CONFIG = {**_nested(tracks.ESTIMATOR_TASK), "regime": "fixed budget to fit"}
COMMITTED_SUMMARY = os.path.join(REPO, "experiments", "results",
                                 "memorization_estimators_digits_mnist1d", "summary.json")

ESTIMATOR_SUMMARY = {
    "schema_version": 2,
    "config": TASK_CONFIG,
    # plain numbers, {mean, std, ci95, n} cells, and one cell per LOO form
    "spearman_vs_loo": {
        "fz_K8": {"mean": 0.30, "std": 0.05, "ci95": [0.25, 0.35], "n": 3},
        "fz_K256": {"mean": 0.70, "std": 0.02, "ci95": [0.68, 0.72], "n": 3},
        "turnover_loss": 0.50,
        "el2n": {"accuracy": {"mean": 0.50, "std": 0.1, "ci95": [0.4, 0.6], "n": 3},
                 "loss": {"mean": 0.9, "std": 0.1, "ci95": [0.8, 1.0], "n": 3}},
        "broken": None,
    },
    "pearson_vs_loo": {"fz_K8": 0.2, "fz_K256": 0.6, "turnover_loss": 0.4},
    "auc_vs_corruption": {"fz_K8": {"mean": 0.8, "std": 0.01, "ci95": [0.79, 0.81], "n": 3}},
    "cost": {"fz_K8": {"model_steps": 8 * 400, "seconds": 4.0},
             "fz_K256": {"model_steps": 256 * 400, "seconds": 90.0},
             "turnover_loss": {"model_steps": 400, "seconds": {"mean": 1.5, "std": 0.1,
                                                               "ci95": [1.4, 1.6], "n": 3}},
             "el2n": {"model_steps": 4 * 40, "seconds": 0.5}},
    "loo": {"reliability": {"mean": 0.81, "std": 0.03, "ci95": [0.78, 0.84], "n": 3}},
}


@pytest.fixture
def board(tmp_path):
  res = tmp_path / "res"
  # label-noise: two variants of mnist5k partial40, one with too few seeds, one
  # with a smaller training set (another task) and a clean spec that beats them all.
  _runs(res, "ln_mlp", _spec("mnist5k_partial40"), [0.80, 0.82, 0.81])
  _runs(res, "ln_deep", _spec("mnist5k_partial40_mlp3x512"), [0.70, 0.71, 0.69])
  _runs(res, "ln_dropout", _spec("mnist5k_partial40", dropout=0.5), [0.90, 0.91],
        label="mnist5k_partial40_dropout")
  small = _spec("mnist5k_partial40")
  small = dataclasses.replace(small, dataset=dataclasses.replace(small.dataset, train_size=1000))
  _runs(res, "ln_small", small, [0.95, 0.95, 0.95], label="mnist5k_partial40_small")
  _runs(res, "clean", _spec("mnist5k_clean"), [0.99, 0.99, 0.99])
  # capacity: one model fits in ~10 epochs, the other is censored in 2 of 3 seeds.
  _runs(res, "cap_mlp", _spec("mnist5k_randlabels"), [0.1] * 3, epochs_to_fit=[10, 12, 11])
  _runs(res, "cap_deep", _spec("mnist5k_randlabels_mlp3x512"), [0.1] * 3,
        epochs_to_fit=[8, None, None])
  # estimators: the benchmark, and a mnist1d-only one that is another task.
  for folder, datasets in (("memorization_estimators", ["digits", "mnist1d"]),
                           ("memorization_estimators_mnist1d", ["mnist1d"])):
    (res / folder).mkdir()
    summary = {**ESTIMATOR_SUMMARY, "config": {**TASK_CONFIG, "datasets": datasets}}
    (res / folder / "summary.json").write_text(json.dumps(summary))
  (res / "other_experiment").mkdir()
  (res / "other_experiment" / "summary.json").write_text(json.dumps({"fig": {"mean": 1}}))
  out = leaderboard.build([str(res)], warn=lambda m: None)
  schemas.validate(out, "leaderboard")
  return out


def _ranks(section):
  return [(e["label"], e["rank"]) for e in section["ranked"]]


def _section(board, name):
  (section,) = [s for s in board["tracks"] if s["name"] == name]
  return section


def test_tracks_rank_within_their_task_only(board):
  assert board["schema_version"] == 2
  assert [s["name"] for s in board["tracks"]] == [t.name for t in tracks.TRACKS]
  # The catalogue view still ranks every spec against every other: clean first.
  assert board["ranked"][0]["spec_name"] == "mnist5k_clean"
  noise = _section(board, "label-noise")
  assert _ranks(noise) == [("mnist5k_partial40", 1), ("mnist5k_partial40_mlp3x512", 2)]
  assert noise["score"] == {"metric": "test_accuracy", "label": "clean test accuracy",
                            "higher_is_better": True, "statistic": "mean"}
  assert noise["ranked"][0]["score"]["mean"] == pytest.approx(0.81)
  # Too few seeds: listed, not ranked; the 1000-example run and the clean one are other tasks.
  assert [(e["label"], e["reason"]) for e in noise["unranked"]] == [
      ("mnist5k_partial40_dropout", "2 usable seed(s); ranking needs 3")]
  assert noise["unranked"][0]["cells"]["regularizers"] == "dropout 0.5"
  assert noise["ranked"][0]["cells"]["regularizers"] == "none"
  labels = {e["label"] for s in board["tracks"] for e in s["ranked"] + s["unranked"]}
  assert "mnist5k_clean" not in labels and "mnist5k_partial40_small" not in labels
  # Capacity: lower is better; the censored median (>= 50 epochs) ranks last.
  capacity = _section(board, "memorization-capacity")
  assert _ranks(capacity) == [("mnist5k_randlabels", 1), ("mnist5k_randlabels_mlp3x512", 2)]
  deep = capacity["ranked"][1]["score"]
  assert deep["median"] == 50.0 and deep["median_is_lower_bound"] and deep["censored"] == 2


def test_estimator_track_reads_cells_numbers_and_forms(board):
  est = _section(board, "memorization-estimators")
  # Only the benchmark's summary (the track's fixed task); the mnist1d one is another task.
  assert [s["path"].split("/")[-2] for s in est["sources"]] == ["memorization_estimators"]
  assert est["sources"][0]["loo_reliability"]["mean"] == 0.81
  # el2n and turnover tie at 0.5 and share rank 2 (competition ranking).
  assert _ranks(est) == [("fz_K256", 1), ("el2n", 2), ("turnover_loss", 2), ("fz_K8", 4)]
  by_label = {e["label"]: e for e in est["ranked"]}
  assert by_label["el2n"]["loo_form"] == "accuracy"
  assert by_label["turnover_loss"]["score"] == {"mean": 0.5, "std": None, "ci95": None,
                                                "n": 1, "missing": 0}
  assert by_label["fz_K256"]["cells"]["model_steps"]["mean"] == 256 * 400
  assert by_label["turnover_loss"]["cells"]["seconds"]["std"] == 0.1
  assert by_label["fz_K8"]["cells"]["auc_vs_corruption"]["mean"] == 0.8
  assert by_label["el2n"]["cells"]["pearson_vs_loo"] is None
  assert [(e["label"], e["reason"]) for e in est["unranked"]] == [
      ("broken", "no value of the track's score spearman_vs_loo")]


def test_version_1_boards_still_read_and_render(board, tmp_path):
  old = {k: v for k, v in board.items() if k != "tracks"}
  old["schema_version"] = 1
  path = tmp_path / "v1.json"
  path.write_text(json.dumps(old))
  assert leaderboard.read(str(path))["schema_version"] == 1
  text = page.render(old)
  assert "<h2>Tracks</h2>" not in text and 'id="ranked"' in text
  with pytest.raises(schemas.SchemaError, match="tracks"):
    schemas.validate({**old, "schema_version": 2}, "leaderboard")


def test_track_table_is_escaped(board):
  est = _section(board, "memorization-estimators")
  est["ranked"][0]["label"] = '<img src=x onerror="alert(1)">'
  text = page.render(board)
  assert "<img" not in text and "&lt;img src=x" in text


def test_chromium_renders_one_table_per_track_and_the_compute_plot(board, tmp_path):
  target = tmp_path / "leaderboard.html"
  leaderboard.export(board, str(tmp_path / "leaderboard.json"), str(target))
  dom = _headless(tmp_path, f"file://{target}", "--dump-dom").stdout
  assert 'data-rendered="1"' in dom
  for section in board["tracks"]:
    table = re.search(rf'<table class="sortable track" id="track-{section["name"]}">(.*?)'
                      r"</table>", dom, re.S).group(1)
    shown = re.findall(r'<tr class="(ranked|unranked)" data-entry="([^"]*)"', table)
    assert shown == ([("ranked", e["label"]) for e in section["ranked"]]
                     + [("unranked", e["label"]) for e in section["unranked"]])
  # The estimator track's plot: one point per entry with a cost and a score.
  svg = re.search(r'<svg class="plot compute" data-track="memorization-estimators"(.*?)</svg>',
                  dom, re.S).group(1)
  assert svg.count('class="point"') == 4 and "(log scale)" in svg
  assert dom.count('class="plot compute"') == 1  # only the estimator track declares one


# --------------------------------------------------------------------------
# A track's task pins every field that defines its score (issue 27, items 1 and 2)
# --------------------------------------------------------------------------


def _capacity_runs(res, rel, overrides, epochs_to_fit, *, epochs_budget, steps_per_epoch=39):
  """Seeds of mnist5k_randlabels with `overrides` (--set), fitted at `epochs_to_fit`
  (None: censored at `epochs_budget`), as scores.standard_scores records them."""
  spec, applied = specs.with_overrides(catalogue.get("mnist5k_randlabels"), overrides)
  for seed, e in enumerate(epochs_to_fit):
    censored = e is None
    doc = fake_result(spec.name, specs.spec_hash(spec), seed, 0.1, nonstandard=applied,
                      status="budget_exhausted" if censored else "completed")
    epochs = epochs_budget if censored else e
    doc["spec"]["resolved"] = dataclasses.asdict(spec)
    doc["run"].update(steps=round(epochs * steps_per_epoch), epochs=epochs)
    doc["metrics"].update(
        epochs_to_fit=e, steps_to_fit=None if censored else round(e * steps_per_epoch),
        steps_to_fit_censored=censored,
        steps_to_fit_lower_bound=round(epochs * steps_per_epoch) if censored else None,
        epochs_to_fit_lower_bound=epochs if censored else None)
    write(res, f"{rel}/seed{seed}", doc)


def test_capacity_track_never_ranks_a_short_budget_or_a_low_threshold_first(tmp_path):
  # The reproduction: the real run fits in ~59 epochs; a 20-step run
  # fits in none of 3 seeds (>= 0.65 epochs); a fit threshold of 0.15 "fits" at once.
  _capacity_runs(tmp_path, "real", [], [59.0, 60.0, 58.0], epochs_budget=300)
  _capacity_runs(tmp_path, "quick", ["budget.max_steps=20", "budget.eval_every_steps=10"],
                 [None, None, None], epochs_budget=20 / 39)
  _capacity_runs(tmp_path, "thresh", ["budget.fit_threshold=0.15"], [0.8, 0.8, 0.8],
                 epochs_budget=300)
  board = leaderboard.build([str(tmp_path)], warn=lambda m: None)
  capacity = _section(board, "memorization-capacity")
  # Only the run under the track's budget and threshold is its task.
  assert _ranks(capacity) == [("mnist5k_randlabels", 1)] and capacity["unranked"] == []
  assert capacity["ranked"][0]["score"]["median"] == 59.0
  assert capacity["task_fields"]["budget.fit_threshold"] == 0.99
  assert capacity["task_fields"]["budget.max_steps"] is None
  # In the catalogue view by epochs to fit, the censored >= 0.51 is not ranked
  # ahead of the exact 59 either (--set runs are unranked there anyway).
  board = leaderboard.build([str(tmp_path)], rank_by="epochs_to_fit", warn=lambda m: None)
  assert [e["spec_name"] for e in board["ranked"]] == ["mnist5k_randlabels"]


def test_label_noise_track_pins_the_budget_too(tmp_path):
  spec = _spec("mnist5k_partial40")
  _runs(tmp_path, "real", spec, [0.80, 0.82, 0.81])
  for rel, override in (("short", "budget.max_epochs=5"), ("loose", "budget.fit_threshold=0.5"),
                        ("coarse", "budget.eval_every_steps=1000")):
    other, _ = specs.with_overrides(spec, [override])
    _runs(tmp_path, rel, other, [0.9, 0.9, 0.9], label=f"{rel}_variant")
  noise = _section(leaderboard.build([str(tmp_path)], warn=lambda m: None), "label-noise")
  assert _ranks(noise) == [("mnist5k_partial40", 1)] and noise["unranked"] == []


@pytest.mark.parametrize("name", ["mnist5k_randlabels", "mnist5k_partial40",
                                  "mnist5k_randlabels_mlp3x512", "mnist5k_partial40_mlp3x512"])
def test_run_tracks_declare_the_catalogue_budget(name):
  """A changed catalogue budget must be a decision about the tracks, not a silent change."""
  spec = catalogue.get(name)
  assert {k: v for k, v in tracks.RUN_TASK_BUDGET} == {
      f"budget.{f.name}": getattr(spec.budget, f.name) for f in dataclasses.fields(spec.budget)}
  accepting = [t.name for t in tracks.TRACKS if t.accepts(dataclasses.asdict(spec))]
  assert accepting == ["memorization-capacity" if "randlabels" in name else "label-noise"]


def test_the_estimator_task_is_the_committed_benchmark():
  with open(COMMITTED_SUMMARY) as f:
    doc = json.load(f)
  schemas.validate(doc, "estimator_summary", version=tracks.ESTIMATOR_SUMMARY_VERSION)
  assert tracks.get("memorization-estimators").accepts(doc["config"])
  # The declared spec hashes are the benchmark's training specs, built as it builds them.
  from experiments import memorization_estimators as me  # pylint: disable=import-outside-toplevel
  task = dict(tracks.ESTIMATOR_TASK)
  for t in me.tasks(me.Config()):
    assert task[f"spec_hashes.{t.dataset}"] == specs.spec_hash(me.spec_of(t))
    assert task[f"epochs.{t.dataset}"] == t.epochs
    assert task["batch_size"] == me.spec_of(t).budget.batch_size
  spec, _ = specs.with_overrides(catalogue.get("digits_partial40"), [
      "dataset.train_size=500", "budget.batch_size=64", "analysis.dynamics=false",
      "analysis.effective_rank=false"])
  assert task["spec_hashes.digits"] == specs.spec_hash(spec)


def _summary(root, rel, doc):
  folder = root / rel
  folder.mkdir(parents=True)
  path = folder / "summary.json"
  path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
  return str(path)


def test_estimator_track_ranks_only_the_declared_task_and_refuses_bad_summaries(tmp_path):
  with open(COMMITTED_SUMMARY) as f:
    real = json.load(f)
  shutil.copy(COMMITTED_SUMMARY, _summary(tmp_path, "real", "{}"))
  # A --quick smoke test under the same labels, and one run with fewer LOO seeds.
  quick = copy.deepcopy(real)
  quick["config"].update(quick=True, train_size=128, epochs={"digits": 3}, probe=6, models=16,
                         seeds=2, datasets=["digits"])
  quick["spearman_vs_loo"]["el2n"] = 0.99
  _summary(tmp_path, "quick", quick)
  fewer = copy.deepcopy(real)
  fewer["config"]["seeds"] = 4
  _summary(tmp_path, "fewer_seeds", fewer)
  # Hostile values: each file is skipped with its reason, the rest is exported.
  bad = {}
  for rel, value in (("rho5", 5.0), ("rho_huge", 1e308), ("n_negative", {"mean": 0.5, "n": -5})):
    doc = copy.deepcopy(real)
    doc["spearman_vs_loo"]["el2n"] = value
    bad[rel] = _summary(tmp_path, rel, doc)
  big_int = re.sub(r'"model_steps": \d+', '"model_steps": ' + "9" * 400, json.dumps(real),
                   count=1)
  bad["big_int"] = _summary(tmp_path, "big_int", big_int)
  bad["surrogate"] = _summary(tmp_path, "surrogate",
                              json.dumps(real).replace('"el2n"', '"el2n\\ud800"', 1))
  long_name = copy.deepcopy(real)
  long_name["config"]["regime"] = "the same task, another file"
  long_name["spearman_vs_loo"]["x" * 1_000_000] = 0.5
  _summary(tmp_path, "long_name", long_name)
  (tmp_path / "fifo").mkdir()
  os.mkfifo(tmp_path / "fifo" / "summary.json")
  bad["fifo"] = str(tmp_path / "fifo" / "summary.json")

  board = leaderboard.build([str(tmp_path)], warn=lambda m: None)
  est = _section(board, "memorization-estimators")
  assert sorted(os.path.basename(os.path.dirname(s["path"])) for s in est["sources"]) == [
      "long_name", "real"]
  by_source = {}
  for e in est["ranked"]:
    by_source.setdefault(os.path.basename(os.path.dirname(e["source"])), []).append(e)
  # The committed benchmark's best: fz_mem, population-weighted Spearman 0.839 (cscore 0.837).
  assert [e["label"] for e in by_source["real"][:2]] == ["fz_mem", "cscore"]
  assert by_source["real"][0]["score"]["mean"] == pytest.approx(0.839, abs=1e-3)
  assert max(len(e["label"]) for e in est["ranked"]) == 200
  reasons = {os.path.basename(os.path.dirname(s["path"])): s["reason"] for s in board["skipped"]}
  assert reasons == {
      "rho5": "not a valid estimator summary: spearman_vs_loo.el2n: 5.0 is greater than "
              "the maximum of 1",
      "rho_huge": "not a valid estimator summary: spearman_vs_loo.el2n: 1e+308 is greater "
                  "than the maximum of 1",
      "n_negative": "not a valid estimator summary: spearman_vs_loo.el2n.n: -5 is less than "
                    "the minimum of 0",
      "big_int": "an integer of 400 digits is beyond the range of a float",
      "surrogate": "holds a string that is not valid Unicode (an unpaired surrogate escape "
                   "such as \\ud800)",
      "fifo": "not a regular file"}
  leaderboard.export(board, str(tmp_path / "lb.json"), str(tmp_path / "lb.html"))
  assert "lira_online" in (tmp_path / "lb.html").read_text()
