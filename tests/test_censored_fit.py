"""Right-censored fit times: result.json fields, the leaderboard's fit_time, the page."""

import copy
import json

import numpy as np
import pytest

from memobench import leaderboard, page, schemas
from memobench.metrics import scores
from tests.test_leaderboard import HASH_A, HASH_B, HASH_C, fake_result, write

BUDGET = 1000


def _seed(name, spec_hash, seed, steps_to_fit, *, old_format=False):
  """A usable run: fitted at steps_to_fit, or (None) censored at the 1000-step budget."""
  status = "completed" if steps_to_fit is not None else "budget_exhausted"
  doc = fake_result(name, spec_hash, seed, 0.5, status=status, steps_to_fit=steps_to_fit)
  doc["run"].update(steps=steps_to_fit or BUDGET, epochs=(steps_to_fit or BUDGET) / 20)
  doc["metrics"]["epochs_to_fit"] = None if steps_to_fit is None else steps_to_fit / 20
  if not old_format:  # the fields scores.standard_scores writes
    censored = steps_to_fit is None
    doc["metrics"].update(steps_to_fit_censored=censored,
                          steps_to_fit_lower_bound=BUDGET if censored else None,
                          epochs_to_fit_lower_bound=BUDGET / 20 if censored else None)
  return doc


def _board(tmp_path, spec_seeds, **kwargs):
  for spec_hash, (name, fits, old) in spec_seeds.items():
    for seed, s in enumerate(fits):
      write(tmp_path, f"{spec_hash}/seed{seed}", _seed(name, spec_hash, seed, s, old_format=old))
  board = leaderboard.build([str(tmp_path)], warn=lambda m: None, **kwargs)
  schemas.validate(board, "leaderboard")
  return board


@pytest.mark.parametrize("old_format", [False, True])
def test_three_fit_two_censored(tmp_path, old_format):
  board = _board(tmp_path, {HASH_A: ("x_a", [100, 200, 300, None, None], old_format)})
  (e,) = board["ranked"]
  # Sorted with the censored seeds at their budget: 100, 200, 300, >=1000, >=1000.
  # The median is the 3rd of 5, 300, a fitted value: exact (raising either censored
  # seed cannot move it). The mean with censored at the budget, (100 + 200 + 300 +
  # 1000 + 1000) / 5 = 520, is a lower bound of the true mean. 3 of 5 fitted.
  assert e["fit_time"]["steps_to_fit"] == {
      "fitted": 3, "censored": 2, "missing": 0, "median": 300.0,
      "median_is_lower_bound": False, "mean_censored_at_bound": 520.0, "fraction_fitted": 0.6}
  # epochs: 5, 10, 15, >=50, >=50 (steps / 20).
  fit = e["fit_time"]["epochs_to_fit"]
  assert (fit["median"], fit["median_is_lower_bound"]) == (15.0, False)
  assert fit["mean_censored_at_bound"] == pytest.approx(26.0)
  # The mean over the seeds that fit (biased low) is still there, with its missing count.
  stat = e["metrics"]["steps_to_fit"]
  assert (stat["mean"], stat["n"], stat["missing"]) == (200.0, 3, 2)
  assert "steps_to_fit_censored" not in e["metrics"]
  assert "steps_to_fit_lower_bound" not in e["metrics"]


def test_median_on_a_censored_value_is_a_lower_bound_and_ranks_after(tmp_path):
  board = _board(tmp_path, {
      HASH_A: ("x_a", [100, None, None], False),      # 100, >=1000, >=1000: median >=1000
      HASH_B: ("x_b", [100, 200, None, None], False),  # median (200 + >=1000) / 2 = >=600
      HASH_C: ("x_c", [1000, 1000, 1000], False),      # fitted exactly at the budget
  }, rank_by="steps_to_fit")
  fits = {e["spec_name"]: e["fit_time"]["steps_to_fit"]
          for e in board["ranked"] + board["unranked"]}
  assert (fits["x_a"]["median"], fits["x_a"]["median_is_lower_bound"]) == (1000.0, True)
  assert (fits["x_b"]["median"], fits["x_b"]["median_is_lower_bound"]) == (600.0, True)
  assert (fits["x_c"]["median"], fits["x_c"]["median_is_lower_bound"]) == (1000.0, False)
  # Lower is better. x_a's median is at least 1000, every exact median is at most
  # that: it ranks after them. x_b's is at least 600, which may be more or less
  # than x_c's exact 1000: not ranked (it used to rank first).
  assert [(e["spec_name"], e["rank"]) for e in board["ranked"]] == [("x_c", 1), ("x_a", 2)]
  (x_b,) = board["unranked"]
  assert x_b["spec_name"] == "x_b" and x_b["reason"].startswith(
      "its median is a lower bound (>= 600: seeds that never fit count at their budget) "
      "below another entry's exact median 1000")


def test_page_shows_the_censored_median(tmp_path):
  board = _board(tmp_path, {HASH_A: ("x_a", [100, 200, 300, None, None], False),
                            HASH_B: ("x_b", [100, None, None], False)})
  html = page.render(board)
  assert "steps_to_fit median</th>" in html and "epochs_to_fit median</th>" in html
  assert "300.0000 (2/5 censored)" in html or "300 (2/5 censored)" in html
  assert "&ge;1,000 (2/3 censored)" in html
  assert "3 of 5 fitted, 2 censored" in html


def test_result_schema_takes_the_new_fields_and_older_files():
  new = _seed("x", HASH_A, 0, None)
  schemas.validate(new, "result")
  old = _seed("x", HASH_A, 0, None, old_format=True)
  assert "steps_to_fit_censored" not in old["metrics"]
  schemas.validate(old, "result")  # written before the fields: still version 1, valid
  bad = copy.deepcopy(new)
  bad["metrics"]["steps_to_fit_censored"] = "yes"
  with pytest.raises(schemas.SchemaError, match="steps_to_fit_censored"):
    schemas.validate(bad, "result")
  assert schemas.versions("result") == (1,)
  json.dumps(new)


def test_standard_scores_record_censoring():
  common = dict(train_predictions=np.zeros(4), test_predictions=np.zeros(2),
                y_train=np.zeros(4), y_train_original=np.zeros(4),
                label_changed=np.zeros(4, bool), y_test=np.zeros(2), steps_per_epoch=8)
  censored = scores.standard_scores(steps_to_fit=None, status="budget_exhausted", steps=80,
                                    **common)
  assert (censored["steps_to_fit"], censored["steps_to_fit_censored"],
          censored["steps_to_fit_lower_bound"], censored["epochs_to_fit_lower_bound"]) == (
              None, True, 80, 10.0)
  fitted = scores.standard_scores(steps_to_fit=40, status="completed", steps=40, **common)
  assert (fitted["steps_to_fit_censored"], fitted["steps_to_fit_lower_bound"]) == (False, None)
  diverged = scores.standard_scores(steps_to_fit=None, status="diverged", steps=12, **common)
  assert diverged["steps_to_fit_censored"] is None
  # Without the run's status (callers before the fields) nothing is added.
  assert "steps_to_fit_censored" not in scores.standard_scores(steps_to_fit=None, **common)
