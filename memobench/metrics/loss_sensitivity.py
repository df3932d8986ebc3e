"""Loss sensitivity per training example and its Gini coefficient (analysis.loss_sensitivity).

Arpit et al. 2017 ("A closer look at memorization in deep networks", ICML,
Sec. 3.2) measure how much each training example x drives the loss,
g_x = ||dL/dx||_1, average it over training (g-bar_x) and compare how unequally
it is spread over the examples by its Gini coefficient: on real data a few
examples carry most of it (high Gini); on random data it is spread evenly.

memobench's g_x is the l1 norm of the gradient of the example's OWN
cross-entropy, at the label it is trained on, with respect to its input:
g_x(theta_t) = || d CE(f_theta_t(x), y) / d x ||_1, with the model in evaluation
mode. The paper's L_t is the loss after t further SGD updates, differentiated
through the unrolled updates (Maclaurin et al. 2015), which measures the
example's influence on later losses; memobench does not unroll training (see
docs/METRICS.md). Like the paper, g-bar_x averages g_x over training: here over
the run's evaluations (every budget.eval_every_steps steps and the last).

The Gini coefficient is the usual mean absolute difference over twice the
mean, G = sum_ij |g_i - g_j| / (2 n^2 mean(g)), computed from the sorted
values; it is 0 for equal values and (n-1)/n when one of n values is nonzero.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import runtime, specs
from memobench.metrics import base, critical_sample_ratio
from memobench.training import evaluation, losses


def gini(values) -> float:
  """The Gini coefficient of non-negative values: sum_ij |v_i - v_j| / (2 n^2 mean).

  0 when all values are equal (all zeros included: nothing is unequal), (n-1)/n
  when one of n values holds everything; tied values need no special care
  (the sorted form below equals the pairwise definition). nan for no values.
  """
  v = np.sort(np.asarray(values, np.float64).ravel())
  if v.size == 0:
    return float("nan")
  if not np.all(np.isfinite(v)) or v[0] < 0:
    raise ValueError("gini: the values must be finite and non-negative")
  total = v.sum()
  if total == 0:
    return 0.0
  n = v.size
  ranks = np.arange(1, n + 1, dtype=np.float64)
  # With v sorted ascending, sum_ij |v_i - v_j| = 2 sum_i (2i - n - 1) v_i.
  return float(np.sum((2 * ranks - n - 1) * v) / (n * total))


def input_gradients(loss_fn: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array,
                    y: jax.Array) -> jax.Array:
  """Per example, d loss_fn(x, y)_i / d x_i; loss_fn maps a batch to per-example losses.

  loss_fn must treat examples independently (evaluation mode), so the
  gradient of the summed loss with respect to x holds each example's own: one
  backward pass for the batch. (metrics/input_stability.py takes its 2-norm.)
  """
  return jax.grad(lambda xa: jnp.sum(loss_fn(xa, y)))(x)


def input_gradient_norms(logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                         y: jax.Array) -> jax.Array:
  """Per example, || d CE(logits_fn(x_i), y_i) / d x_i ||_1 (l1 over all its input values)."""
  grad = input_gradients(lambda xa, ya: losses.cross_entropy(logits_fn(xa), ya), x, y)
  return jnp.sum(jnp.abs(grad).reshape(x.shape[0], -1), axis=1)


@functools.partial(jax.jit, static_argnums=0)
def _norms(module, variables, x, y):
  return input_gradient_norms(lambda xb: module.apply(variables, xb, train=False), x, y)


def loss_sensitivity(module, params, model_state, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """g_x of every example of (x, y) for the flax `module`, in chunks (float64 on the host)."""
  variables = {"params": params, **model_state}
  return evaluation.chunked(
      lambda start, stop: _norms(module, variables, jnp.asarray(x[start:stop], jnp.float32),
                                 jnp.asarray(y[start:stop], jnp.int32)),
      len(x)).astype(np.float64)


def per_class(g: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, list]:
  """Mean and Gini of g within each class of `y` (None for a class without examples)."""
  means, ginis = [], []
  for c in range(num_classes):
    gc = g[y == c]
    means.append(float(gc.mean()) if gc.size else None)
    ginis.append(gini(gc) if gc.size else None)
  return {"mean": means, "gini": ginis}


class SensitivityOverTraining:
  """g_x of every training example at every evaluation: their running sum and each one's Gini.

  Resumable: the per-example sum, the evaluation count and (step, Gini, mean)
  rows in arrays of a fixed capacity (the bound on the run's evaluations).
  """

  def __init__(self, x: np.ndarray, y: np.ndarray, capacity: int):
    self.x, self.y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    self.total = np.zeros(len(self.x), np.float64)
    self.rows = np.full((capacity, 3), np.nan, np.float64)
    self.count = 0
    self.last: np.ndarray | None = None  # this session's latest g_x (not checkpointed)

  def __call__(self, ev) -> None:
    if getattr(ev, "model", None) is None:
      raise ValueError("analysis.loss_sensitivity: the evaluation carries no model")
    if self.count >= len(self.rows):
      raise ValueError(f"analysis.loss_sensitivity: more than {len(self.rows)} evaluations")
    g = loss_sensitivity(*ev.model(), self.x, self.y)
    self.total += g
    self.rows[self.count] = (ev.step, gini(g), g.mean())
    self.count += 1
    self.last = g

  def mean(self) -> np.ndarray | None:
    return self.total / self.count if self.count else None

  def checkpoint_state(self) -> dict[str, np.ndarray]:
    return {"loss_sensitivity_total": self.total, "loss_sensitivity_rows": self.rows,
            "loss_sensitivity_count": np.asarray(self.count, np.int64)}

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    self.total = np.array(tree["loss_sensitivity_total"], np.float64)
    self.rows = np.array(tree["loss_sensitivity_rows"], np.float64)
    self.count = int(tree["loss_sensitivity_count"])

  def curve(self) -> list[list[float]]:
    """[[step, Gini of g_x, mean g_x], ...] in evaluation order."""
    return [[int(s), float(gv), float(m)] for s, gv, m in self.rows[:self.count]]


def _tracker(spec: specs.Spec, data) -> SensitivityOverTraining | None:
  if not spec.analysis.loss_sensitivity:
    return None
  return SensitivityOverTraining(
      runtime.fetch(data.x_train), runtime.fetch(data.y_train),
      critical_sample_ratio.max_evaluations(spec, int(data.x_train.shape[0])))


def _finish(context: base.Context) -> base.Result:
  y = np.asarray(context.y_train)
  variables = {"params": context.params, **context.model_state}
  num_classes = int(context.module.apply(variables, jnp.asarray(context.x_train[:1]),
                                         train=False).shape[-1])
  g_final = loss_sensitivity(context.module, context.params, context.model_state,
                             context.x_train, y)
  tracker = context.tracker
  g_mean = tracker.mean() if tracker is not None else None
  section = {
      "norm": "l1", "split": "train", "labels": "trained on",
      "gini": gini(g_mean) if g_mean is not None else None,
      "mean": float(g_mean.mean()) if g_mean is not None else None,
      "evaluations": tracker.count if tracker is not None else 0,
      "per_class": per_class(g_mean, y, num_classes) if g_mean is not None else None,
      "final_gini": gini(g_final), "final_mean": float(g_final.mean()),
      "final_per_class": per_class(g_final, y, num_classes),
      "over_training": tracker.curve() if tracker is not None else [],
  }
  arrays = {"g_final": g_final}
  if g_mean is not None:
    arrays["g_mean"] = g_mean
  return base.Result(section, arrays=arrays, headline=("loss-sensitivity Gini", section["gini"]))


METRIC = base.Metric(
    section="loss_sensitivity", fields=("analysis.loss_sensitivity",),
    enabled=lambda spec: spec.analysis.loss_sensitivity, finish=_finish,
    timing_key="loss_sensitivity", tracker=_tracker, arrays_file="loss_sensitivity.npz")
