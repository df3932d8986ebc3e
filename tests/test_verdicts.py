"""experiments/verdicts.py's helpers for computing a verdict from seed statistics: known answers."""

import math

import pytest

from experiments import verdicts


def test_difference_of_two_seed_statistics_and_its_standard_error():
  a = {"mean": 1.5, "std": 0.2, "n": 3}
  b = {"mean": 1.0, "std": 0.1, "n": 4}
  d, se = verdicts.difference(a, b)
  assert d == pytest.approx(0.5) and se == pytest.approx(math.sqrt(0.04 / 3 + 0.01 / 4))
  assert verdicts.difference(a, {"mean": 1.0, "std": None, "n": 1}) == (pytest.approx(0.5), None)
  assert verdicts.difference(a, {"mean": None, "std": None, "n": 0}) == (None, None)


def test_sign_is_resolved_only_beyond_two_standard_errors():
  a = {"mean": 1.0, "std": 0.1, "n": 3}
  assert verdicts.sign({"mean": 1.5, "std": 0.2, "n": 3}, a) == 1
  assert verdicts.sign(a, {"mean": 1.5, "std": 0.2, "n": 3}) == -1
  assert verdicts.sign({"mean": 1.1, "std": 0.2, "n": 3}, a) == 0
  assert verdicts.sign({"mean": 9.0, "std": None, "n": 1}, a) == 0  # one seed: no error bar


@pytest.mark.parametrize("signs, word", [
    ([1, 1], "agrees"), ([1, 0], "partly"), ([1, -1], "partly"), ([0, -1], "disagrees"),
    ([-1, -1], "disagrees"), ([0, 0], "inconclusive"), ([], "inconclusive")])
def test_word_of_several_comparisons(signs, word):
  assert verdicts.word(signs) == word


def test_the_printed_verdict_lines_name_each_verdict_and_claim():
  v = verdicts.verdict("the claim", paper="P", matched="m", measured="x", verdict="partly")
  assert verdicts.lines({"verdicts": [v]}) == ["PARTLY       the claim"]
  assert verdicts.lines({"no verdicts yet": 1}) == []


def test_a_statistic_against_a_known_value_uses_its_own_standard_error():
  # The paired SE std / sqrt(n) of a mean against 0 (or a predicted exponent): no error of its own.
  gap = {"mean": 0.8, "std": 0.3, "n": 3}
  d, se = verdicts.difference(gap, verdicts.constant(0.0))
  assert d == pytest.approx(0.8) and se == pytest.approx(0.3 / math.sqrt(3))
  assert verdicts.sign(gap, verdicts.constant(0.0)) == 1      # 0.8 > 2 x 0.173
  assert verdicts.sign(gap, verdicts.constant(0.6)) == 0      # within 2 SE of 0.6
  assert verdicts.sign(gap, verdicts.constant(1.5)) == -1
  assert verdicts.sign({"mean": 0.8, "std": None, "n": 1}, verdicts.constant(0.0)) == 0
