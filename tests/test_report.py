"""experiments/report.py: the reproduction report is generated from the summaries, and current."""

import json

from experiments import report, verdicts


def test_the_committed_report_is_what_the_committed_summaries_give():
  assert report.main(["--check"]) == 0, "run python -m experiments.report"


def test_a_summary_and_the_report_that_disagree_fail_the_check(tmp_path):
  folder = tmp_path / "paper_digits"
  folder.mkdir()
  v = verdicts.verdict("noise is fit", paper="Zhang et al. 2017, Fig. 1",
                       matched="epochs", measured="train accuracy 0.991 +- 0.002 (n=3)",
                       verdict="agrees", departures=["an MLP on digits"], figure="fig.png")
  summary = {"experiment": "paper", "dataset": "digits", "verdicts": [v]}
  (folder / "summary.json").write_text(json.dumps(summary))
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "summary.json").write_text(json.dumps({"experiment": "other"}))
  assert report.main(["--results", str(tmp_path)]) == 0
  text = (tmp_path / report.MARKDOWN).read_text()
  assert ("| [paper](paper_digits/) ([figure](paper_digits/fig.png)) | noise is fit (Zhang et al. "
          "2017, Fig. 1) | epochs | train accuracy 0.991 +- 0.002 (n=3) | **agrees** | "
          "an MLP on digits |") in text
  assert "Verdicts: 1 agrees, 0 partly, 0 inconclusive, 0 disagrees." in text
  assert "Summaries without verdicts yet: `other`." in text
  assert '<td class="agrees">agrees</td>' in (tmp_path / report.PAGE).read_text()
  assert report.main(["--results", str(tmp_path), "--check"]) == 0
  summary["verdicts"][0]["measured"] = "train accuracy 0.992 +- 0.002 (n=3)"  # a rerun moved it
  (folder / "summary.json").write_text(json.dumps(summary))
  assert report.main(["--results", str(tmp_path), "--check"]) == 1


def test_a_verdict_is_one_of_four_and_an_inconclusive_one_says_what_would_decide_it():
  import pytest  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="expected one of"):
    verdicts.verdict("c", paper="p", matched="m", measured="x", verdict="reproduces")
  with pytest.raises(ValueError, match="what would decide it"):
    verdicts.verdict("c", paper="p", matched="m", measured="x", verdict="inconclusive")
  with pytest.raises(ValueError, match="what was matched"):
    verdicts.verdict("c", paper="p", matched="", measured="x", verdict="agrees")
  assert verdicts.beyond(0.3, 0.1) and not verdicts.beyond(0.15, 0.1)
  assert not verdicts.beyond(None, 0.1) and not verdicts.beyond(0.3, None)
  assert verdicts.fmt({"mean": 0.12345, "std": 0.01, "n": 3}) == "0.123 +- 0.01 (n=3)"
  assert verdicts.fmt({"mean": None}) == "n/a"
