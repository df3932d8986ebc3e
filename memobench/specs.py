"""Specs: what one memobench run is, as a frozen dataclass tree.

A spec names a (dataset, corruption, model, optimizer) tuple plus a budget and a
seed. This module is a leaf: the dataclasses, the content hash, typed `--set`
overrides and the checks of the spec's own fields. The registered specs are
catalogue.py's table; the checks against the component tables (is there such a
model?) and the resolution of a spec into what a run needs are workload.py's.

The *spec hash* identifies comparable results: a SHA-256 over the canonical JSON
of every field that changes what is measured. It leaves out the name and the
description (labels, not content) and the seed (runs of different seeds of one
spec are the samples a leaderboard aggregates). It is stable across processes
and machines because it hashes sorted-key JSON, never Python's ``hash``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from typing import Any

HASH_LENGTH = 16
# A run's key is threefry's 32-bit seed: seeds are in [0, SEED_LIMIT).
SEED_LIMIT = 2 ** 32
# The most seeds one command runs (main's --seeds, experiments' --seeds): each
# seed is a run with its own workdir; more is a typo, not a sweep (a job list
# of 4e9 seeds took 3.8 GB before its first run).
MAX_SEEDS = 10_000
# Field metadata of knobs added after specs were first published: such a field
# enters the hash only when it differs from its default, so that adding a knob
# leaves the hash of every existing spec, and its comparability with results
# already on a leaderboard, unchanged.
HASHED_WHEN_SET = {"hashed_when_set": True}


class SpecError(ValueError):
  """A spec, spec name or override that cannot be used; the message is one line."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str = "mnist5k"
  # Use only the first `train_size` training examples (of the dataset's fixed
  # split order); None keeps all. For dataset-size sweeps (Arpit 2017, Badger 2022).
  train_size: int | None = None
  # Random-crop augmentation (Zhang Table 1 "random crop"); image datasets only.
  random_crop: bool = False
  # Standard deviation of Gaussian noise added afresh to every training input at
  # every step (Arpit et al. 2017, Sec. 5, "input noise"), in the units of the
  # preprocessed inputs ([0, 1] pixels for digits and mnist5k); 0 = off.
  input_noise: float = dataclasses.field(default=0.0, metadata=HASHED_WHEN_SET)


@dataclasses.dataclass(frozen=True)
class CorruptionSpec:
  # One of data/corruptions.py's KINDS: clean, partial, randlabels, shufpix, randpix,
  # gaussian, noise.
  kind: str = "clean"
  # partial: probability p that a training label is resampled (in [0, 1]).
  # noise: fraction f of signal kept, x * f + noise * (1 - f) (in [0, 1]).
  level: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str = "mlp1x512"
  dropout: float = 0.0
  # MLPs only (models/mlp.py): the hidden layers' nonlinearity, relu | linear (none).
  activation: str = dataclasses.field(default="relu", metadata=HASHED_WHEN_SET)
  # MLPs only: each Dense layer trained as a product of this many linear layers with
  # nothing between them (Huh et al. 2023's linear over-parameterization); 1 = off.
  linear_expansion: int = dataclasses.field(default=1, metadata=HASHED_WHEN_SET)
  # Model "mlp" only: its number of hidden layers and their width (None: 1 and 512).
  depth: int | None = dataclasses.field(default=None, metadata=HASHED_WHEN_SET)
  width: int | None = dataclasses.field(default=None, metadata=HASHED_WHEN_SET)
  # The layers' computation dtype, float32 | bfloat16 (models/dtypes.py): parameters,
  # optimizer state and the loss stay float32 (mixed precision); float32 is today's model.
  dtype: str = dataclasses.field(default="float32", metadata=HASHED_WHEN_SET)


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
  kind: str = "sgd"  # sgd | adam
  lr: float = 0.01
  momentum: float = 0.9  # sgd only
  # The learning rate is multiplied by this factor after every epoch (Zhang 2017: 0.95).
  lr_decay_per_epoch: float = 0.95
  # Coupled L2 weight decay, added to the gradient as in Zhang et al.'s runs.
  weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class BudgetSpec:
  batch_size: int = 128
  max_epochs: int = 100
  # Optional cap on optimizer steps; None means max_epochs decides.
  max_steps: int | None = None
  # Full train- and test-set evaluation every this many steps (and at the end).
  eval_every_steps: int = 100
  # The run stops once training accuracy on the labels it trains on reaches this.
  fit_threshold: float = 0.99


@dataclasses.dataclass(frozen=True)
class AnalysisSpec:
  """Per-example memorization scores and geometry (docs/METRICS.md, "Memorization").

  The defaults only add measurements (free or cheap ones); they never change
  what is trained. `turnover_dropout` and `objective` change training.
  """
  # Learning time and forgetting events per training example (dynamics.py).
  dynamics: bool = True
  # Effective rank of the penultimate embeddings (metrics/effective_rank.py).
  effective_rank: bool = True
  # Turn-over dropout rate on the model's dropout layers (Kobayashi 2020); 0 = off.
  turnover_dropout: float = 0.0
  # Also measure every training example's self-influence and own-mask loss at
  # every evaluation (turnover.py; arrays in turnover.npz); needs turnover_dropout.
  turnover_every_eval: bool = dataclasses.field(default=False, metadata=HASHED_WHEN_SET)
  # Critical sample ratio (Arpit 2017) on this many examples of csr_split; 0 = off.
  csr_samples: int = 0
  # Lanczos steps for sharpness (top Hessian eigenvalues); 0 = off.
  sharpness_iters: int = 0
  # Training examples in the loss whose Hessian sharpness measures.
  sharpness_examples: int = 1024
  # Top Hessian eigenvalues that sharpness reports (Lanczos Ritz values).
  sharpness_top_k: int = dataclasses.field(default=2, metadata=HASHED_WHEN_SET)
  # Keskar et al. 2017's eps-sharpness (metrics/eps_sharpness.py): L-BFGS-B
  # iterations of the box maximization; 0 = off. The box size eps, the random
  # projection's dimension p (0: the full space only) and the training examples of the loss.
  eps_sharpness_iters: int = dataclasses.field(default=0, metadata=HASHED_WHEN_SET)
  eps_sharpness_eps: float = dataclasses.field(default=1e-3, metadata=HASHED_WHEN_SET)
  eps_sharpness_dim: int = dataclasses.field(default=100, metadata=HASHED_WHEN_SET)
  eps_sharpness_examples: int = dataclasses.field(default=1024, metadata=HASHED_WHEN_SET)
  # The critical sample ratio's inputs: "test" or "train" (the first csr_samples).
  csr_split: str = dataclasses.field(default="test", metadata=HASHED_WHEN_SET)
  # Also measure the critical sample ratio at every evaluation (Arpit Sec. 3.4).
  csr_every_eval: bool = dataclasses.field(default=False, metadata=HASHED_WHEN_SET)
  # Per training example, ||d CE / d x||_1 at every evaluation, its mean over training
  # and their Gini coefficients (Arpit et al. 2017, Sec. 3.2; metrics/loss_sensitivity.py).
  loss_sensitivity: bool = dataclasses.field(default=False, metadata=HASHED_WHEN_SET)
  # Training objective (objectives.py): ce | forced_memorization (Badger 2022).
  # forced_memorization needs dataset.train_size: the training examples beyond
  # it are its held-out pool.
  objective: str = "ce"
  # objective=igr only: lambda of loss + lambda * ||grad_params loss||^2 (Barrett &
  # Dherin 2021's explicit gradient regularizer; objectives.py).
  igr_lambda: float = dataclasses.field(default=0.0, metadata=HASHED_WHEN_SET)
  # The split whose penultimate embeddings analysis.effective_rank measures: test | train.
  effective_rank_split: str = dataclasses.field(default="test", metadata=HASHED_WHEN_SET)
  # Input-gradient and input-Jacobian norms (metrics/input_stability.py; Badger 2022's
  # stability) of this many train, test and noise inputs at every evaluation; 0 = off.
  input_stability_samples: int = dataclasses.field(default=0, metadata=HASHED_WHEN_SET)


@dataclasses.dataclass(frozen=True)
class Spec:
  name: str
  description: str
  dataset: DatasetSpec = DatasetSpec()
  corruption: CorruptionSpec = CorruptionSpec()
  model: ModelSpec = ModelSpec()
  optimizer: OptimizerSpec = OptimizerSpec()
  budget: BudgetSpec = BudgetSpec()
  seed: int = 0
  analysis: AnalysisSpec = AnalysisSpec()


# Fields that label a spec but do not change what it measures.
_UNHASHED = ("name", "description", "seed")


def to_dict(spec: Spec) -> dict[str, Any]:
  return dataclasses.asdict(spec)


def from_dict(d: dict[str, Any]) -> Spec:
  """Inverse of `to_dict` (used to read a spec back from result.json)."""
  return _build(Spec, d)


def _build(cls, d):
  kwargs = {}
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    if f.name in d:
      value = d[f.name]
      if dataclasses.is_dataclass(hints[f.name]):
        value = _build(hints[f.name], value)
      kwargs[f.name] = value
  return cls(**kwargs)


def _hashed_content(obj):
  """The dataclass tree as a dict, without HASHED_WHEN_SET fields at their defaults."""
  if not dataclasses.is_dataclass(obj):
    return obj
  return {f.name: _hashed_content(getattr(obj, f.name)) for f in dataclasses.fields(obj)
          if not (f.metadata.get("hashed_when_set") and getattr(obj, f.name) == f.default)}


def spec_hash(spec: Spec) -> str:
  content = {k: v for k, v in _hashed_content(spec).items() if k not in _UNHASHED}
  canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


# --------------------------------------------------------------------------
# Overrides: --set key=value
# --------------------------------------------------------------------------


def parse_scalar(raw: str, annotation) -> Any:
  """`raw` as a value of the declared type (bool, int, float, str, or `X | None` with
  "none"/"null"); ValueError on mismatch. Shared with experiments' knobs."""
  origin = typing.get_origin(annotation)
  if origin in (typing.Union, types.UnionType):
    args = typing.get_args(annotation)
    if type(None) in args and raw.lower() in ("none", "null"):
      return None
    (annotation,) = [a for a in args if a is not type(None)]
  if annotation is bool:
    if raw.lower() in ("true", "1", "yes"):
      return True
    if raw.lower() in ("false", "0", "no"):
      return False
    raise ValueError(raw)
  if annotation in (int, float, str):
    return annotation(raw)
  raise ValueError(f"unsupported type {annotation}")


def _parse_value(raw: str, annotation, key: str):
  """Parses `raw` as the field's declared type; SpecError on mismatch."""
  try:
    return parse_scalar(raw, annotation)
  except ValueError:
    pass
  if typing.get_origin(annotation) in (typing.Union, types.UnionType):
    (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
  raise SpecError(
      f"--set {key}={raw}: expected a value of type {annotation.__name__}")


def with_overrides(spec: Spec, assignments: list[str]) -> tuple[Spec, dict[str, Any]]:
  """Applies ``key=value`` overrides (dotted keys into the spec tree).

  Returns the new spec and the overrides actually applied, as {key: value}.
  The result's own fields are checked (`check_fields`); workload.validate checks
  the rest (that its model, dataset, ... exist).
  """
  applied: dict[str, Any] = {}
  known = settable_keys()
  for assignment in assignments:
    try:
      key, raw = split_assignment(assignment, known, "key", "optimizer.lr=0.05",
                                  "spec field")
    except ValueError as e:
      raise SpecError(str(e)) from None
    spec = _replace_path(spec, key.split("."), raw.strip(), key)
    applied[key] = _get_path(spec, key.split("."))
  check_fields(spec)
  return spec, applied


def split_assignment(assignment: str, known: list[str], word: str, example: str,
                     kind: str) -> tuple[str, str]:
  """'name=value' -> (name, raw value) for a known name; ValueError with one line otherwise
  (the name's close matches as a hint). Shared with experiments' knobs."""
  key, sep, raw = assignment.partition("=")
  key = key.strip()
  if not sep or not key:
    raise ValueError(f"--set {assignment!r}: expected {word}=value, e.g. {example}")
  if key not in known:
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ValueError(f"--set {key}: unknown {kind}{hint}")
  return key, raw


def _get_path(obj, path):
  for part in path:
    obj = getattr(obj, part)
  return obj


def _replace_path(obj, path, raw, key):
  head, rest = path[0], path[1:]
  if rest:
    new = _replace_path(getattr(obj, head), rest, raw, key)
  else:
    new = _parse_value(raw, typing.get_type_hints(type(obj))[head], key)
  return dataclasses.replace(obj, **{head: new})


def _settable_keys(cls, prefix="") -> list[str]:
  keys = []
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    if not prefix and f.name in ("name", "description"):
      continue  # the spec's labels, not its content
    if dataclasses.is_dataclass(hints[f.name]):
      keys += _settable_keys(hints[f.name], prefix + f.name + ".")
    else:
      keys.append(prefix + f.name)
  return keys


def settable_keys() -> list[str]:
  """Every key `--set` accepts, e.g. 'optimizer.lr'."""
  return _settable_keys(Spec)


# --------------------------------------------------------------------------
# Checks that need only the spec's own fields (the component tables check their
# own fields in workload.validate; data-dependent checks, such as a batch larger
# than the dataset, happen where the data is loaded).
# --------------------------------------------------------------------------


def check_seeds(first: int, count: int, flag: str = "--seeds") -> None:
  """Refuses `count` seeds from `first` unless 1 <= count <= MAX_SEEDS and all are < 2**32.

  For command lines that run seeds first, first + 1, ...: checked before any job
  list is built, in one line naming `flag`.
  """
  if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEEDS:
    raise SpecError(f"{flag} must be an integer in [1, {MAX_SEEDS}], got {count}")
  if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < SEED_LIMIT:
    raise SpecError(f"seed must be in [0, 2**32), got {first}")
  if first + count > SEED_LIMIT:
    raise SpecError(f"{flag}={count} from seed {first} passes the largest seed 2**32 - 1")


def check_fields(spec: Spec) -> Spec:
  b = spec.budget
  if b.batch_size <= 0:
    raise SpecError(f"budget.batch_size must be positive, got {b.batch_size}")
  if b.max_epochs <= 0 and b.max_steps is None:
    raise SpecError("budget.max_epochs must be positive (or set budget.max_steps)")
  if b.max_steps is not None and b.max_steps <= 0:
    raise SpecError(f"budget.max_steps must be positive, got {b.max_steps}")
  if b.eval_every_steps <= 0:
    raise SpecError(f"budget.eval_every_steps must be positive, got {b.eval_every_steps}")
  if not 0.0 < b.fit_threshold <= 1.0:
    raise SpecError(f"budget.fit_threshold must be in (0, 1], got {b.fit_threshold}")
  # A run's key is threefry's 32-bit seed: larger seeds would alias seed % 2**32.
  if not 0 <= spec.seed < SEED_LIMIT:
    raise SpecError(f"seed must be in [0, 2**32), got {spec.seed}")
  if spec.dataset.train_size is not None and spec.dataset.train_size <= 0:
    raise SpecError(f"dataset.train_size must be positive, got {spec.dataset.train_size}")
  if not 0.0 <= spec.dataset.input_noise < float("inf"):
    raise SpecError(f"dataset.input_noise must be a finite std >= 0, got "
                    f"{spec.dataset.input_noise}")
  if not 0.0 <= spec.model.dropout < 1.0:
    raise SpecError(f"model.dropout must be in [0, 1), got {spec.model.dropout}")
  o = spec.optimizer
  if not 0 < o.lr < math.inf:
    raise SpecError(f"optimizer.lr must be positive and finite, got {o.lr}")
  if not 0.0 <= o.momentum < 1.0:
    raise SpecError(f"optimizer.momentum must be in [0, 1), got {o.momentum}")
  if not 0.0 < o.lr_decay_per_epoch <= 1.0:
    raise SpecError(f"optimizer.lr_decay_per_epoch must be in (0, 1], got {o.lr_decay_per_epoch}")
  if not 0 <= o.weight_decay < math.inf:
    raise SpecError(f"optimizer.weight_decay must be finite and >= 0, got {o.weight_decay}")
  return spec
