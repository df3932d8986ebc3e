"""Leaderboard tracks: fixed tasks, each with a declared score and direction, ranked within.

The catalogue view of the leaderboard ranks every spec against every other by
one metric, which compares unlike tasks (clean data against random pixels). A
track fixes the task, so its entries differ only in what the track varies, and
ranks them against each other only. TRACKS is the explicit table, one
declared record per track:

  memorization-estimators  which per-example memorization estimator agrees best
        with the exact leave-one-out ground truth (experiments/
        memorization_estimators.py) on the fixed probe set of ESTIMATOR_DATASET.
        Entries: the estimators of every estimator-benchmark summary.json found
        (a summary.json with a `spearman_vs_loo` object); score: Spearman
        correlation with mem_LOO (spearman_vs_loo.<estimator>), higher is better;
        beside it the cost (cost.<estimator>.model_steps, .seconds), Pearson
        (pearson_vs_loo) and the ROC AUC against the planted corruption
        (auc_vs_corruption). A summary cell may be {mean, std, ci95, n} or a
        plain number; where an estimator's cell holds one cell per LOO form
        ({accuracy: ..., loss: ...}), the accuracy form (mem_LOO) is the score.
  label-noise  clean test accuracy of LABEL_NOISE_DATASET trained under partial
        label corruption p = LABEL_NOISE_LEVEL on its full training set.
        Entries: result.json specs of that task (model, optimizer and
        regularizer variants), higher is better (mean over seeds).
  memorization-capacity  epochs to fit random labels (randlabels) of
        CAPACITY_DATASET on its full training set. Entries: result.json specs of
        that task (models); lower is better, the right-censored median of
        leaderboard.censored_summary (a seed that never fit counts at its
        budget; a median that is a lower bound ranks after an exact one of the
        same value).

An entry of a run track needs min_seeds usable seeds and no diverged seed,
as in the catalogue view; unlike there, a --set (non-standard) run may enter,
listed with its overrides: the task predicate reads the resolved spec, so an
override cannot change the task, only the variant. Ties share a rank
(competition ranking). This module reads aggregated leaderboard entries and
summary documents; it imports nothing of the leaderboard.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Callable, Iterable

ESTIMATOR_DATASET = "digits"
LABEL_NOISE_DATASET = "mnist5k"
LABEL_NOISE_LEVEL = 0.4
CAPACITY_DATASET = "mnist5k"
SUMMARY_FILE = "summary.json"
# The LOO form that scores an estimator when a summary gives one cell per form.
LOO_FORMS = ("accuracy", "mem", "correct", "mem_loo", "loss")


@dataclasses.dataclass(frozen=True)
class Track:
  """One leaderboard track: a fixed task, its entries' source, score and direction."""
  name: str
  task: str                       # the fixed task, in words (shown on the page)
  entries_from: str               # "runs" (result.json specs) | "estimator_summaries"
  accepts: Callable[[dict[str, Any]], bool]  # on a resolved spec / a summary's task
  score: str                      # what ranks, e.g. "test_accuracy"
  score_label: str
  higher_is_better: bool
  columns: tuple[tuple[str, str], ...] = ()  # (cell key, heading) beside the score
  plot: tuple[str, str] | None = None        # (x cell key, x-axis label) vs the score


def _full_training_set(spec: dict[str, Any]) -> bool:
  return (spec.get("dataset") or {}).get("train_size") is None


def _is_label_noise_task(spec: dict[str, Any]) -> bool:
  corruption = spec.get("corruption") or {}
  return ((spec.get("dataset") or {}).get("name") == LABEL_NOISE_DATASET
          and corruption.get("kind") == "partial"
          and math.isclose(float(corruption.get("level", -1)), LABEL_NOISE_LEVEL)
          and _full_training_set(spec))


def _is_capacity_task(spec: dict[str, Any]) -> bool:
  return ((spec.get("dataset") or {}).get("name") == CAPACITY_DATASET
          and (spec.get("corruption") or {}).get("kind") == "randlabels"
          and _full_training_set(spec))


TRACKS: tuple[Track, ...] = (
    Track("memorization-estimators",
          f"per-example memorization scores on the {ESTIMATOR_DATASET} probe set of "
          "experiments/memorization_estimators.py, against exact leave-one-out memorization",
          "estimator_summaries",
          lambda task: task.get("dataset") == ESTIMATOR_DATASET,
          "spearman_vs_loo", "Spearman vs LOO", True,
          columns=(("model_steps", "cost (model-steps)"), ("seconds", "cost (s)"),
                   ("pearson_vs_loo", "Pearson vs LOO"),
                   ("auc_vs_corruption", "AUC vs corruption")),
          plot=("model_steps", "cost (model-steps)")),
    Track("label-noise",
          f"clean test accuracy on {LABEL_NOISE_DATASET} trained with "
          f"{LABEL_NOISE_LEVEL:.0%} of training labels resampled (partial "
          f"{LABEL_NOISE_LEVEL}), full training set",
          "runs", _is_label_noise_task, "test_accuracy", "clean test accuracy", True,
          columns=(("model", "model"), ("optimizer", "optimizer"),
                   ("regularizers", "regularizers"), ("n_seeds", "seeds"),
                   ("train_accuracy", "train accuracy"),
                   ("memorized_fraction", "memorized fraction"))),
    Track("memorization-capacity",
          f"epochs to fit random labels on {CAPACITY_DATASET} (randlabels), full "
          "training set; right-censored at the budget",
          "runs", _is_capacity_task, "epochs_to_fit", "epochs to fit (median)", False,
          columns=(("model", "model"), ("optimizer", "optimizer"), ("n_seeds", "seeds"),
                   ("steps_to_fit", "steps to fit (median)"))),
)
FIT_TIME_SCORES = ("epochs_to_fit", "steps_to_fit")


def get(name: str) -> Track:
  for track in TRACKS:
    if track.name == name:
      return track
  raise KeyError(f"unknown track {name!r}; known: {', '.join(t.name for t in TRACKS)}")


# --------------------------------------------------------------------------
# Estimator-benchmark summaries
# --------------------------------------------------------------------------


def find_estimator_summaries(folders: Iterable[str]) -> tuple[list[tuple[str, dict]],
                                                              list[dict[str, str]]]:
  """(path, document) of every estimator-benchmark summary.json under `folders`.

  Other experiments' summary.json files (no `spearman_vs_loo` object) are not
  estimator summaries and are passed over silently; an unreadable one is
  returned among the skipped, with its reason.
  """
  found, skipped = [], []
  paths: dict[str, None] = {}
  for folder in folders:
    if os.path.isfile(folder):
      if os.path.basename(folder) == SUMMARY_FILE:
        paths.setdefault(folder)
      continue
    for root, dirs, files in os.walk(folder):
      dirs.sort()
      if SUMMARY_FILE in files:
        paths.setdefault(os.path.join(root, SUMMARY_FILE))
  for path in paths:
    try:
      with open(path) as f:
        doc = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
      skipped.append({"path": path, "reason": f"cannot read: {type(e).__name__}"})
      continue
    if isinstance(doc, dict) and isinstance(doc.get("spearman_vs_loo"), dict):
      found.append((path, doc))
  return found, skipped


def summary_task(path: str, doc: dict[str, Any]) -> dict[str, Any]:
  """The task a summary measured: {dataset}, from its own fields or its folder's name.

  Looked up as `dataset` at the top level or under config / settings / args /
  setup / loo (a string or {name: ...}); failing that, the folder name
  <script>_<dataset> of experiments/results.
  """
  for holder in (doc, *(doc.get(k) for k in ("config", "settings", "args", "setup", "loo"))):
    if isinstance(holder, dict):
      value = holder.get("dataset")
      if isinstance(value, dict):
        value = value.get("name")
      if isinstance(value, str):
        return {"dataset": value}
  folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
  if "_" in folder:
    return {"dataset": folder.rsplit("_", 1)[1]}
  return {"dataset": None}


def cell(value: Any) -> dict[str, Any] | None:
  """A summary value as a stat {mean, std, ci95, n, missing}: a cell or a plain number."""
  def number(v):
    return float(v) if (isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v)) else None
  if isinstance(value, dict) and "mean" in value:
    ci = value.get("ci95")
    ci = [float(c) for c in ci] if (isinstance(ci, (list, tuple)) and len(ci) == 2
                                   and all(number(c) is not None for c in ci)) else None
    n = value.get("n")
    return {"mean": number(value.get("mean")), "std": number(value.get("std")), "ci95": ci,
            "n": int(n) if number(n) is not None else 0, "missing": 0}
  v = number(value)
  return None if v is None else {"mean": v, "std": None, "ci95": None, "n": 1, "missing": 0}


def _form_cell(value: Any) -> tuple[dict[str, Any] | None, str | None]:
  """(stat, LOO form) of an estimator's value: a cell, or one cell per LOO form."""
  if isinstance(value, dict) and "mean" not in value:
    for form in (*LOO_FORMS, *sorted(value)):
      if form in value and cell(value[form]) is not None:
        return cell(value[form]), form
    return None, None
  return cell(value), None


def estimator_entries(path: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
  """One candidate entry per estimator of `doc`'s spearman_vs_loo."""
  out = []
  costs = doc.get("cost") if isinstance(doc.get("cost"), dict) else {}
  for estimator, value in doc["spearman_vs_loo"].items():
    score, form = _form_cell(value)
    cost = costs.get(estimator) if isinstance(costs.get(estimator), dict) else {}
    cells: dict[str, Any] = {
        "model_steps": cell(cost.get("model_steps")), "seconds": cell(cost.get("seconds"))}
    for key in ("pearson_vs_loo", "auc_vs_corruption"):
      table = doc.get(key) if isinstance(doc.get(key), dict) else {}
      cells[key] = _form_cell(table.get(estimator))[0] if key == "pearson_vs_loo" else (
          cell(table.get(estimator)))
    out.append({"label": str(estimator), "spec_hash": None, "source": path,
                "score": score, "cells": cells,
                **({"loo_form": form} if form is not None else {})})
  return out


def _source_note(path: str, doc: dict[str, Any]) -> dict[str, Any]:
  loo = doc.get("loo") if isinstance(doc.get("loo"), dict) else {}
  reliability = loo.get("reliability")
  if isinstance(reliability, dict) and "mean" not in reliability:
    # e.g. {spearman_brown: cell, split_half: cell}: the first that is a number
    reliability = next((v for v in reliability.values() if cell(v) is not None), None)
  return {"path": path, "loo_reliability": cell(reliability)}


# --------------------------------------------------------------------------
# Run tracks, from the aggregated catalogue entries
# --------------------------------------------------------------------------


def _regularizers(spec: dict[str, Any]) -> str:
  model, opt = spec.get("model") or {}, spec.get("optimizer") or {}
  data, analysis = spec.get("dataset") or {}, spec.get("analysis") or {}
  parts = []
  if opt.get("weight_decay"):
    parts.append(f"weight decay {opt['weight_decay']:g}")
  if model.get("dropout"):
    parts.append(f"dropout {model['dropout']:g}")
  if data.get("random_crop"):
    parts.append("random crop")
  if data.get("input_noise"):
    parts.append(f"input noise {data['input_noise']:g}")
  if analysis.get("objective") not in (None, "ce"):
    parts.append(f"objective {analysis['objective']}")
  return ", ".join(parts) or "none"


def run_entry(entry: dict[str, Any], track: Track) -> dict[str, Any]:
  """A catalogue entry as a candidate entry of a run track."""
  spec = entry["spec"]
  opt = spec.get("optimizer") or {}
  label = entry["spec_name"]
  if entry["nonstandard"]:
    label += " --set " + " ".join(f"{k}={v}" for k, v in sorted(entry["nonstandard"].items()))
  if track.score in FIT_TIME_SCORES:
    score = (entry.get("fit_time") or {}).get(track.score)
  else:
    score = entry["metrics"].get(track.score)
  cells: dict[str, Any] = {
      "model": (spec.get("model") or {}).get("name", "?"),
      "optimizer": f"{opt.get('kind', '?')} lr {opt.get('lr', '?')}",
      "regularizers": _regularizers(spec), "n_seeds": entry["n_seeds"]}
  for key, _ in track.columns:
    if key in cells:
      continue
    cells[key] = ((entry.get("fit_time") or {}).get(key) if key in FIT_TIME_SCORES
                  else entry["metrics"].get(key))
  return {"label": label, "spec_hash": entry["spec_hash"], "source": None,
          "score": score, "cells": cells, "statuses": entry["statuses"]}


def _run_reason(entry: dict[str, Any], min_seeds: int) -> str | None:
  diverged = entry["statuses"].get("diverged", 0)
  if diverged:
    return f"{diverged} of {sum(entry['statuses'].values())} seeds diverged"
  if entry["n_seeds"] < min_seeds:
    return f"{entry['n_seeds']} usable seed(s); ranking needs {min_seeds}"
  return None


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def score_key(score: dict[str, Any] | None, higher_is_better: bool) -> tuple | None:
  """What sorts an entry (smaller first); None: no value to rank by.

  A stat ranks by its mean; a censored fit time by its median, a lower bound
  after an exact median of the same value.
  """
  if not score:
    return None
  if "median" in score:
    if score["median"] is None:
      return None
    return (score["median"], bool(score["median_is_lower_bound"]))
  if score.get("mean") is None:
    return None
  return (-score["mean"] if higher_is_better else score["mean"],)


def rank(track: Track, candidates: list[tuple[dict[str, Any], str | None]]) -> dict[str, Any]:
  """The track's section: candidates (entry, reason it cannot rank or None) ranked within."""
  ranked, unranked = [], []
  for candidate, reason in candidates:
    key = score_key(candidate["score"], track.higher_is_better)
    if reason is None and key is None:
      reason = f"no value of the track's score {track.score}"
    if reason is None:
      ranked.append((key, candidate))
    else:
      unranked.append({**candidate, "reason": reason})
  ranked.sort(key=lambda kc: (kc[0], kc[1]["label"], kc[1]["source"] or "",
                              kc[1]["spec_hash"] or ""))
  previous, position = None, 0
  out = []
  for i, (key, candidate) in enumerate(ranked):
    if key != previous:  # competition ranking: ties share a rank
      position, previous = i + 1, key
    out.append({**candidate, "rank": position})
  unranked.sort(key=lambda c: (c["label"], c["source"] or "", c["spec_hash"] or ""))
  return {
      "name": track.name, "task": track.task, "entries_from": track.entries_from,
      "score": {"metric": track.score, "label": track.score_label,
                "higher_is_better": track.higher_is_better,
                "statistic": ("median, censored seeds at their budget"
                              if track.score in FIT_TIME_SCORES else "mean")},
      "columns": [{"key": k, "label": label} for k, label in track.columns],
      "plot": None if track.plot is None else {"x": track.plot[0], "x_label": track.plot[1]},
      "ranked": out, "unranked": unranked,
  }


def build(catalogue_entries: list[dict[str, Any]],
          estimator_summaries: list[tuple[str, dict[str, Any]]], *,
          min_seeds: int, tracks: tuple[Track, ...] = TRACKS) -> list[dict[str, Any]]:
  """Every track's section of the leaderboard (schema leaderboard.v2 `tracks`)."""
  sections = []
  for track in tracks:
    candidates: list[tuple[dict[str, Any], str | None]] = []
    sources = []
    if track.entries_from == "runs":
      for entry in catalogue_entries:
        if track.accepts(entry["spec"]):
          candidate = run_entry(entry, track)
          candidates.append((candidate, _run_reason(entry, min_seeds)))
    elif track.entries_from == "estimator_summaries":
      for path, doc in estimator_summaries:
        if track.accepts(summary_task(path, doc)):
          sources.append(_source_note(path, doc))
          candidates += [(c, None) for c in estimator_entries(path, doc)]
    else:
      raise ValueError(f"track {track.name}: unknown entries_from {track.entries_from!r}")
    section = rank(track, candidates)
    section["sources"] = sources
    sections.append(section)
  return sections
