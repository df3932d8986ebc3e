"""Leaderboard tracks: fixed tasks ranked within, schema v2 (v1 still read), the page's tables."""

import dataclasses
import json
import re

import pytest

from memobench import catalogue, leaderboard, page, schemas, specs, tracks
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
      doc["metrics"].update(epochs_to_fit=e, steps_to_fit=None if censored else int(e * 10),
                            steps_to_fit_censored=censored,
                            steps_to_fit_lower_bound=500 if censored else None,
                            epochs_to_fit_lower_bound=50.0 if censored else None)
    write(tmp_path, f"{rel}/seed{seed}", doc)


ESTIMATOR_SUMMARY = {
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
  # estimators: the digits benchmark, and a mnist1d one that is another task.
  for folder in ("memorization_estimators_digits", "memorization_estimators_mnist1d"):
    (res / folder).mkdir()
    (res / folder / "summary.json").write_text(json.dumps(ESTIMATOR_SUMMARY))
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
  # Only the digits summary (the track's fixed task); the mnist1d one is another task.
  assert [s["path"].split("/")[-2] for s in est["sources"]] == ["memorization_estimators_digits"]
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
