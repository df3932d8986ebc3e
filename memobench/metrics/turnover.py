"""Turn-over dropout: a one-run self-influence score for every training example.

Kobayashi, Yokoi, Suzuki, Inui, "Efficient estimation of influence of a
training instance", 2020 (arXiv 2012.04207). Each training example i owns a
fixed dropout mask m_i over the units of the model's dropout layers, drawn once
from a key and the example's index, so it is recomputed on the fly and never
stored. Training applies m_i (scaled by 1/keep) whenever i is in a batch, so
the sub-network of the flipped mask 1 - m_i is never updated on i: it behaves
like a model trained without i. After one run, example i's self-influence is

  self_influence_loss(i)     = loss(x_i, y_i; 1 - m_i) - loss(x_i, y_i; m_i)
  self_influence_accuracy(i) = [f(x_i; m_i) = y_i] - [f(x_i; 1 - m_i) = y_i]

against the label trained on: how much better the model does on i for having
trained on it (Kobayashi et al.'s influence estimate with the test point z = z_i). A
memorized example (e.g. a corrupted label the rest of the data contradicts) has
high self-influence; an example the rest of the data explains has ~0.

Implementation (the masks: memobench/training/turnover_masks.py, beside the
steps that apply them): the spec's model is built with dropout rate
`analysis.turnover_dropout` and its `nn.Dropout` layers are intercepted
(flax `nn.intercept_methods`), replacing each random mask with the example's
own (or flipped) mask. The mask bit of example i, layer L, unit u is
bernoulli(fold_in(fold_in(key, crc32(L's module path)), i))[u], key =
fold_in(run key, prng.TURNOVER): a pure function of (seed, layer, index),
the same in every run of the spec and on any number of devices. The flipped
mask keeps a fraction `rate` of units and is scaled by 1/rate, the own mask
1/(1 - rate); Kobayashi et al. use rate 0.5, where both are scaled by 2.

The metric `turnover` (on when analysis.turnover_dropout > 0) reports `summary`
and writes `self_influence`'s arrays to workdir/turnover.npz.

Over training (analysis.turnover_every_eval, after Liu, Lin & Jaggi 2021,
"Understanding memorization from the perspective of optimization via efficient
influence estimation", arXiv 2112.08798, who track turn-over self-influence
during training): the same two losses of every training example at every
evaluation, on that evaluation's parameters; turnover.npz then also holds
`eval_steps` (E,), `own_loss_by_eval` and `self_influence_loss_by_eval` (E, N),
and the section `over_training` the mean self-influence per evaluation.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, runtime, specs
from memobench.metrics import base, stats
from memobench.metrics.critical_sample_ratio import max_evaluations
from memobench.training import evaluation, losses
# The masks themselves sit beside the training steps, which apply them; this
# metric (and its callers, as turnover.X) uses them from here.
from memobench.training.turnover_masks import (  # noqa: F401  (re-exported)
    NoDropoutLayers, enabled, example_masks, masks_applied, model_spec, turnover_key)


def check(spec: specs.Spec) -> None:
  rate = spec.analysis.turnover_dropout
  if not 0.0 <= rate < 1.0:
    raise specs.SpecError(f"analysis.turnover_dropout must be in [0, 1), got {rate}")
  if rate > 0 and spec.model.dropout > 0:
    raise specs.SpecError("analysis.turnover_dropout replaces the model's random dropout; "
                          "leave model.dropout at 0")
  if spec.analysis.turnover_every_eval and rate <= 0:
    raise specs.SpecError("analysis.turnover_every_eval needs analysis.turnover_dropout > 0")


def own_and_flipped(module: nn.Module, key: jax.Array, rate: float) -> Callable:
  """The jitted (params, model_state, x, y, idx) -> own/flipped losses and correctness."""
  def evaluate(params, model_state, xb, yb, idx):
    out = {}
    for name, flip in (("own", False), ("flipped", True)):
      with masks_applied(key, rate, idx, flip=flip):
        logits = module.apply({"params": params, **model_state}, xb, train=False)
      out[f"{name}_loss"] = losses.cross_entropy(logits, yb)
      out[f"{name}_correct"] = jnp.argmax(logits, -1) == yb
    return out
  return jax.jit(evaluate)


def self_influence(module: nn.Module, params: Any, model_state: Any, x: jax.Array,
                   y: jax.Array, key: jax.Array, rate: float,
                   batch: int = evaluation.EVAL_BATCH,
                   evaluate: Callable | None = None) -> dict[str, np.ndarray]:
  """Per-example loss and correctness under the own and the flipped masks.

  Evaluation mode (BatchNorm running statistics), labels `y` (those trained on).
  `evaluate`: `own_and_flipped(module, key, rate)`, built once by a caller that
  measures many times (compiled once).
  """
  if evaluate is None:
    evaluate = own_and_flipped(module, key, rate)
  n = x.shape[0]
  batch = min(batch, n)

  def chunk(start, stop):
    idx = np.arange(start, stop)
    idx_padded = np.concatenate([idx, np.zeros(batch - len(idx), idx.dtype)])  # one compile
    out = evaluate(params, model_state, x[idx_padded], y[idx_padded], jnp.asarray(idx_padded))
    return {k: np.asarray(v)[:len(idx)] for k, v in out.items()}

  arrays = evaluation.chunked(chunk, n, batch=batch)
  arrays["self_influence_loss"] = arrays["flipped_loss"] - arrays["own_loss"]
  arrays["self_influence_accuracy"] = (arrays["own_correct"].astype(np.float32)
                                       - arrays["flipped_correct"].astype(np.float32))
  return arrays


def summary(arrays: dict[str, np.ndarray], corrupted: np.ndarray, rate: float) -> dict[str, Any]:
  """result.json section: split means and the AUCs against the corruption record."""
  corrupted = np.asarray(corrupted, bool)
  # Ties in the accuracy score are broken by the loss score, so that the AUC
  # of the accuracy-based score is not dominated by its many ties at 0.
  acc_then_loss = (arrays["self_influence_accuracy"]
                   + 1e-6 * np.tanh(arrays["self_influence_loss"]))
  return {
      "rate": rate,
      "self_influence_loss_mean": stats.split_summary(arrays["self_influence_loss"], corrupted),
      "self_influence_accuracy_mean": stats.split_summary(
          arrays["self_influence_accuracy"], corrupted),
      "own_mask_accuracy": stats.split_summary(arrays["own_correct"], corrupted),
      "flipped_mask_accuracy": stats.split_summary(arrays["flipped_correct"], corrupted),
      "self_influence_auc": stats.roc_auc(arrays["self_influence_loss"], corrupted),
      "self_influence_accuracy_auc": stats.roc_auc(acc_then_loss, corrupted),
  }


class SelfInfluenceOverTraining:
  """analysis.turnover_every_eval: every example's own-mask and flipped-mask loss per evaluation.

  The parameters of each evaluation (Evaluation.model), the labels trained on,
  the run's fixed masks. Resumable: rows in arrays of a fixed capacity (the
  bound on the run's evaluations, critical_sample_ratio.max_evaluations).
  """

  def __init__(self, spec: specs.Spec, x: np.ndarray, y: np.ndarray, capacity: int):
    self.rate = spec.analysis.turnover_dropout
    self.key = turnover_key(prng.run_key(spec.seed))
    self.x, self.y = np.asarray(x), np.asarray(y)
    n = self.x.shape[0]
    self.steps = np.full(capacity, -1, np.int64)
    self.own_loss = np.full((capacity, n), np.nan, np.float32)
    self.flipped_loss = np.full((capacity, n), np.nan, np.float32)
    self.count = 0
    self._evaluate: Callable | None = None
    self._module: nn.Module | None = None

  def __call__(self, ev) -> None:
    if getattr(ev, "model", None) is None:
      raise ValueError("analysis.turnover_every_eval: the evaluation carries no model")
    if self.count >= len(self.steps):
      raise ValueError(f"analysis.turnover_every_eval: more than {len(self.steps)} evaluations")
    module, params, model_state = ev.model()
    if self._evaluate is None or module is not self._module:
      self._module, self._evaluate = module, own_and_flipped(module, self.key, self.rate)
    arrays = self_influence(module, params, model_state, self.x, self.y, self.key, self.rate,
                            evaluate=self._evaluate)
    k = self.count
    self.steps[k] = ev.step
    self.own_loss[k], self.flipped_loss[k] = arrays["own_loss"], arrays["flipped_loss"]
    self.count += 1

  def checkpoint_state(self) -> dict[str, np.ndarray]:
    return {"turnover_steps": self.steps, "turnover_own_loss": self.own_loss,
            "turnover_flipped_loss": self.flipped_loss,
            "turnover_count": np.asarray(self.count, np.int64)}

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    self.steps = np.array(tree["turnover_steps"], np.int64)
    self.own_loss = np.array(tree["turnover_own_loss"], np.float32)
    self.flipped_loss = np.array(tree["turnover_flipped_loss"], np.float32)
    self.count = int(tree["turnover_count"])

  def arrays(self) -> dict[str, np.ndarray]:
    k = self.count
    return {"eval_steps": self.steps[:k], "own_loss_by_eval": self.own_loss[:k],
            "self_influence_loss_by_eval": self.flipped_loss[:k] - self.own_loss[:k]}


def _tracker(spec: specs.Spec, data) -> SelfInfluenceOverTraining | None:
  if not (enabled(spec) and spec.analysis.turnover_every_eval):
    return None  # no tracker: the checkpoints of other runs keep their structure
  x, y = runtime.fetch(data.x_train), runtime.fetch(data.y_train)
  return SelfInfluenceOverTraining(spec, x, y, max_evaluations(spec, int(x.shape[0])))


def _finish(context: base.Context) -> base.Result:
  rate = context.spec.analysis.turnover_dropout
  tracker = context.tracker
  reuse = tracker is not None and tracker._module is context.module  # compiled already
  arrays = self_influence(context.module, context.params, context.model_state, context.x_train,
                          context.y_train, turnover_key(context.run_key), rate,
                          evaluate=tracker._evaluate if reuse else None)
  section = summary(arrays, context.corrupted, rate)
  if tracker is not None:
    over = tracker.arrays()
    arrays = {**arrays, **over}
    section["over_training"] = [
        [int(s), float(np.mean(si))] for s, si in zip(over["eval_steps"],
                                                      over["self_influence_loss_by_eval"])]
  return base.Result(section, arrays, ("self-influence AUC", section["self_influence_auc"]))


METRIC = base.Metric(
    section="turnover", fields=("analysis.turnover_dropout", "analysis.turnover_every_eval"),
    enabled=enabled, finish=_finish, timing_key="turnover", check=check,
    arrays_file="turnover.npz", leads_summary=True, tracker=_tracker)
