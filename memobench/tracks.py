"""Leaderboard tracks: fixed tasks, each with a declared score and direction, ranked within.

The catalogue view of the leaderboard ranks every spec against every other by
one metric, which compares unlike tasks (clean data against random pixels). A
track fixes the task, so its entries differ only in what the track varies, and
ranks them against each other only. TRACKS is the explicit table, one
declared record per track. A track's task is declared field by field
(`task_fields`: every field that defines its score, the budget and stopping
rule included), and an entry enters only if each of those fields equals the
declared value: a run with `--set budget.fit_threshold=0.15` or a 20-step
budget is another task, not a faster entry.

  memorization-estimators  which per-example memorization estimator agrees best
        with the exact leave-one-out ground truth (experiments/
        memorization_estimators.py) on the benchmark's default task
        (ESTIMATOR_TASK): digits and mnist1d, partial40, the first 500
        training examples, batch 64, in the fit regime (every model trains a
        fixed budget long enough to fit its own training set: 100 / 40
        epochs), probe set 200 (half corrupted), 8 LOO seeds, a population of
        128 models, not --quick. Entries: the estimators of every summary.json
        whose `config` equals that task; a summary is read as
        estimator_summary version 2 (memobench/schemas), and one that does
        not validate (a Spearman of 5.0, a negative n, a version-1 summary) is
        skipped with its reason. Score: the population-weighted Spearman
        correlation with mem_LOO (the half-corrupted probe reweighted to the
        training set's noise share; pooling the two groups can hide opposite
        relations inside them), averaged over the datasets
        (spearman_vs_loo.<estimator>), higher is better; beside it the pooled
        Spearman (spearman_vs_loo_pooled), the attenuation ceiling
        sqrt(r_LOO r_estimator) (ceiling), the cost (cost.<estimator>.model_steps,
        .seconds; plotted against the score), Pearson (pearson_vs_loo) and the
        ROC AUC against the planted corruption (auc_vs_corruption). A summary
        cell may be {mean, std, ci95, n} or a plain number; where an
        estimator's cell holds one cell per LOO form ({accuracy: ..., loss:
        ...}), the accuracy form (mem_LOO) is the score.
  label-noise  clean test accuracy of LABEL_NOISE_DATASET trained under partial
        label corruption p = LABEL_NOISE_LEVEL on its full training set, under
        the catalogue budget (RUN_TASK_BUDGET: batch, epochs, evaluation
        interval and fit threshold, which stops training). Entries:
        result.json specs of that task (model, optimizer and regularizer
        variants), higher is better (mean over seeds).
  memorization-capacity  epochs to fit random labels (randlabels) of
        CAPACITY_DATASET on its full training set, under the same pinned
        budget and fit threshold 0.99. Entries: result.json specs of that task
        (models, optimizers, regularizers); lower is better, the
        right-censored median of leaderboard.censored_summary (a seed that
        never fit counts at its budget; memobench/ranking.py: a median that is
        a lower bound ranks after the exact ones only when it is at least as
        large as all of them, and is not ranked otherwise).

An entry of a run track needs min_seeds usable seeds and no diverged seed,
as in the catalogue view; unlike there, a --set (non-standard) run may enter,
listed with its overrides: the task predicate reads the resolved spec, so an
override cannot change the task, only the variant. Ties share a rank
(competition ranking). Labels are trimmed to results.trim_text's length. This
module reads aggregated leaderboard entries and summary documents; it imports
nothing of the leaderboard.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Iterable

from memobench import ranking, results, schemas

ESTIMATOR_DATASET = "digits"
LABEL_NOISE_DATASET = "mnist5k"
LABEL_NOISE_LEVEL = 0.4
CAPACITY_DATASET = "mnist5k"
SUMMARY_FILE = "summary.json"
# A summary.json larger than this is not read (results.read_limited).
MAX_SUMMARY_BYTES = 16 * 2**20
# The format of the estimator summaries the track reads (schemas/estimator_summary.v2).
ESTIMATOR_SUMMARY_VERSION = 2
# The LOO form that scores an estimator when a summary gives one cell per form.
LOO_FORMS = ("accuracy", "mem", "correct", "mem_loo", "loss")

# The budget of the run tracks' tasks: mnist5k's catalogue budget
# (memobench/catalogue.py; tests/test_tracks.py checks they agree). Each field
# changes the score: the fit threshold stops training (and defines "fit"), the
# epochs censor the fit time, the evaluation interval is its resolution.
RUN_TASK_BUDGET: tuple[tuple[str, Any], ...] = (
    ("budget.batch_size", 128), ("budget.max_epochs", 300), ("budget.max_steps", None),
    ("budget.eval_every_steps", 31), ("budget.fit_threshold", 0.99))
# experiments/memorization_estimators.py's default task, as its summary's
# `config` records it. spec_hashes are the hashes of its training specs
# (<dataset>_partial40, dataset.train_size=500, budget.batch_size=64, dynamics and
# effective rank off): the model, optimizer and batch. Re-declare this when the
# benchmark changes.
ESTIMATOR_TASK: tuple[tuple[str, Any], ...] = (
    ("datasets", (ESTIMATOR_DATASET, "mnist1d")), ("corruption", "partial40"),
    ("model", "mlp1x512"), ("spec_hashes.digits", "f51cb01168f56f5a"),
    ("spec_hashes.mnist1d", "5090ff29f9c5de3c"), ("batch_size", 64), ("train_size", 500),
    ("epochs.digits", 100), ("epochs.mnist1d", 40), ("probe", 200), ("seeds", 8),
    ("models", 128), ("quick", False))


@dataclasses.dataclass(frozen=True)
class Track:
  """One leaderboard track: a fixed task, its entries' source, score and direction."""
  name: str
  task: str                       # the fixed task, in words (shown on the page)
  entries_from: str               # "runs" (result.json specs) | "estimator_summaries"
  # (dotted field, value) pairs that define the task: of the resolved spec
  # (runs) or of a summary's config (estimator summaries); all must match.
  task_fields: tuple[tuple[str, Any], ...]
  score: str                      # what ranks, e.g. "test_accuracy"
  score_label: str
  higher_is_better: bool
  columns: tuple[tuple[str, str], ...] = ()  # (cell key, heading) beside the score
  plot: tuple[str, str] | None = None        # (x cell key, x-axis label) vs the score

  def accepts(self, fields: Any) -> bool:
    """Whether `fields` (a resolved spec, or a summary's config) is this track's task."""
    return all(_same(_lookup(fields, path), value) for path, value in self.task_fields)


_MISSING = object()


def _lookup(tree: Any, path: str) -> Any:
  for part in path.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return _MISSING
    tree = tree[part]
  return tree


def _same(found: Any, declared: Any) -> bool:
  """Equal as the declared type: a bool is not a number, floats compare to rounding."""
  if isinstance(declared, (tuple, list)):
    return (isinstance(found, (tuple, list)) and len(found) == len(declared)
            and all(_same(f, d) for f, d in zip(found, declared)))
  if isinstance(declared, bool) or declared is None or isinstance(declared, str):
    return type(found) is type(declared) and found == declared
  if isinstance(found, bool) or not isinstance(found, (int, float)):
    return False
  if isinstance(declared, int) and isinstance(found, int):
    return found == declared
  return math.isclose(found, declared, rel_tol=1e-9, abs_tol=0.0)


TRACKS: tuple[Track, ...] = (
    Track("memorization-estimators",
          "per-example memorization scores against exact leave-one-out memorization "
          f"(experiments/memorization_estimators.py's default task, not --quick): "
          f"{ESTIMATOR_DATASET} and mnist1d with 40% label noise, 500 training examples, "
          "MLP 1x512, in the regime where every model fits its own training set (>= 0.99, "
          "a fixed budget, checked per run); ranked on the population-weighted Spearman "
          "averaged over both datasets, the pooled one beside it",
          "estimator_summaries", ESTIMATOR_TASK,
          "spearman_vs_loo", "Spearman vs LOO (population-weighted, mean over datasets)", True,
          columns=(("spearman_pooled", "Spearman pooled"), ("ceiling", "ceiling"),
                   ("model_steps", "cost (model-steps)"), ("seconds", "cost (s)"),
                   ("pearson_vs_loo", "Pearson vs LOO"),
                   ("auc_vs_corruption", "AUC vs corruption")),
          plot=("model_steps", "cost (model-steps)")),
    Track("label-noise",
          f"clean test accuracy on {LABEL_NOISE_DATASET} trained with "
          f"{LABEL_NOISE_LEVEL:.0%} of training labels resampled (partial "
          f"{LABEL_NOISE_LEVEL}), full training set, catalogue budget",
          "runs", (("dataset.name", LABEL_NOISE_DATASET), ("dataset.train_size", None),
                   ("corruption.kind", "partial"), ("corruption.level", LABEL_NOISE_LEVEL),
                   *RUN_TASK_BUDGET),
          "test_accuracy", "clean test accuracy", True,
          columns=(("model", "model"), ("optimizer", "optimizer"),
                   ("regularizers", "regularizers"), ("n_seeds", "seeds"),
                   ("train_accuracy", "train accuracy"),
                   ("memorized_fraction", "memorized fraction"))),
    Track("memorization-capacity",
          f"epochs to fit random labels on {CAPACITY_DATASET} (randlabels), full "
          "training set, catalogue budget and fit threshold; right-censored at the budget",
          "runs", (("dataset.name", CAPACITY_DATASET), ("dataset.train_size", None),
                   ("corruption.kind", "randlabels"), *RUN_TASK_BUDGET),
          "epochs_to_fit", "epochs to fit (median)", False,
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
  """(path, document) of every valid estimator-benchmark summary.json under `folders`.

  Other experiments' summary.json files (no `spearman_vs_loo` object) are not
  estimator summaries and are passed over silently; an unreadable one, or an
  estimator summary that does not validate (schemas/estimator_summary.v2), is
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
      doc = results.load_json_file(path, MAX_SUMMARY_BYTES)
    except results.UnreadableFile as e:
      skipped.append({"path": path, "reason": str(e)})
      continue
    if not (isinstance(doc, dict) and isinstance(doc.get("spearman_vs_loo"), dict)):
      continue
    try:
      schemas.validate(doc, "estimator_summary", version=ESTIMATOR_SUMMARY_VERSION)
    except schemas.SchemaError as e:
      skipped.append({"path": path, "reason": f"not a valid estimator summary: {e}"})
      continue
    found.append((path, doc))
  return found, skipped


def cell(value: Any) -> dict[str, Any] | None:
  """A summary value as a stat {mean, std, ci95, n, missing}: a cell or a plain number."""
  def number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      return None
    try:
      v = float(v)
    except OverflowError:  # an integer no float holds
      return None
    return v if math.isfinite(v) else None
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
    for key, source in (("pearson_vs_loo", "pearson_vs_loo"),
                        ("spearman_pooled", "spearman_vs_loo_pooled"),
                        ("auc_vs_corruption", "auc_vs_corruption"), ("ceiling", "ceiling")):
      table = doc.get(source) if isinstance(doc.get(source), dict) else {}
      cells[key] = (_form_cell(table.get(estimator))[0] if source.startswith(("pearson",
                                                                             "spearman"))
                    else cell(table.get(estimator)))
    out.append({"label": results.trim_text(estimator), "spec_hash": None, "source": path,
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
  label = results.trim_text(label)
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


def rank(track: Track, candidates: list[tuple[dict[str, Any], str | None]]) -> dict[str, Any]:
  """The track's section: candidates (entry, reason it cannot rank or None) ranked within."""
  keyed, unranked = [], []
  for candidate, reason in candidates:
    key = ranking.score_key(candidate["score"], track.higher_is_better)
    if reason is None and key is None:
      reason = f"no value of the track's score {track.score}"
    if reason is None:
      keyed.append((key, candidate))
    else:
      unranked.append({**candidate, "reason": reason})
  order = lambda c: (c["label"], c["source"] or "", c["spec_hash"] or "")
  ranked, censored = ranking.rank(keyed, order)
  unranked += [{**c, "reason": reason} for c, reason in censored]
  unranked.sort(key=order)
  return {
      "name": track.name, "task": track.task, "entries_from": track.entries_from,
      "task_fields": dict(track.task_fields),
      "score": {"metric": track.score, "label": track.score_label,
                "higher_is_better": track.higher_is_better,
                "statistic": ("median, censored seeds at their budget"
                              if track.score in FIT_TIME_SCORES else "mean")},
      "columns": [{"key": k, "label": label} for k, label in track.columns],
      "plot": None if track.plot is None else {"x": track.plot[0], "x_label": track.plot[1]},
      "ranked": [{**c, "rank": position} for position, c in ranked], "unranked": unranked,
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
        if track.accepts(doc.get("config")):
          sources.append(_source_note(path, doc))
          candidates += [(c, None) for c in estimator_entries(path, doc)]
    else:
      raise ValueError(f"track {track.name}: unknown entries_from {track.entries_from!r}")
    section = rank(track, candidates)
    section["sources"] = sources
    sections.append(section)
  return sections
