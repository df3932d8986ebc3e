"""Input stability over training (analysis.input_stability_samples).

Badger 2022, "Why deep learning generalizes" (arXiv 2211.09639), abstract:
"generalization results from a model's parameters being attracted to points of
maximal stability with respect to that model's inputs during gradient
descent". Stability with respect to the inputs is measured here as how much
the output moves when the input moves, per example, at every evaluation of the
training loop and at the end:

  input_gradient_norm   ||d CE(f(x), y) / d x||_2, the gradient of the loss of
                        one example with respect to its input (the quantity of
                        the released code's `loss_gradient`), averaged over the
                        split's first `samples` examples;
  logit_jacobian_norm   ||d f(x) / d x||_F, the Frobenius norm of the input
                        Jacobian of the logits (label-free), averaged likewise.

Splits: `train` (the first samples training inputs, the labels trained on),
`test` (the first samples test inputs as the run sees them, true labels) and
`noise` (samples inputs of the released code's noise N(0, 1)/3 + 1/2, fixed per
run, key fold_in(run key, prng.INPUT_STABILITY); their label is the model's
own prediction at that evaluation). Evaluation mode (no dropout). Known answer
(tests/test_badger2022.py): for logits W x + b the Jacobian norm is ||W||_F at
every input, and a scalar output w . x has input-gradient norm ||w||.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, runtime, specs
from memobench.data import corruptions
from memobench.metrics import base, loss_sensitivity
from memobench.metrics.critical_sample_ratio import max_evaluations
from memobench.training import evaluation, losses

SPLITS = ("train", "test", "noise")
MEASURES = ("input_gradient_norm", "logit_jacobian_norm")


def _flat_norm(g: jax.Array) -> jax.Array:
  """The 2-norm of each example's block (axis 0 = examples)."""
  return jnp.sqrt(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1))


def input_gradient_norms(loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
                         x: jax.Array, y: jax.Array) -> jax.Array:
  """Per example, ||d loss_fn(x_i, y_i) / d x_i||_2; loss_fn maps a batch to per-example
  losses, treating examples independently (loss_sensitivity.input_gradients)."""
  return _flat_norm(loss_sensitivity.input_gradients(loss_fn, x, y))


def jacobian_norms(outputs_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per example, the Frobenius norm of d outputs_fn(x_i) / d x_i (outputs: a batch of vectors)."""
  jac = jax.vmap(jax.jacrev(lambda xi: outputs_fn(xi[None])[0]))(x)
  return _flat_norm(jac)


_MEASURE_CACHE: dict[Any, Callable] = {}


def _measure_fn(module) -> Callable:
  """A jitted (variables, x, y, use_prediction) -> (grad norms, Jacobian norms) for `module`."""
  if module not in _MEASURE_CACHE:
    def measure(variables, x, y, use_prediction):
      logits_fn = lambda xb: module.apply(variables, xb, train=False)
      y = jnp.where(use_prediction, jnp.argmax(logits_fn(x), -1).astype(y.dtype), y)
      loss_fn = lambda xb, yb: losses.cross_entropy(logits_fn(xb), yb)
      return input_gradient_norms(loss_fn, x, y), jacobian_norms(logits_fn, x)
    _MEASURE_CACHE[module] = jax.jit(measure)
  return _MEASURE_CACHE[module]


def measure(module, params, model_state, inputs: dict[str, tuple[np.ndarray, np.ndarray]]
            ) -> dict[str, dict[str, float]]:
  """{split: {measure: mean over its examples}} for inputs {split: (x, y)}.

  The `noise` split's labels are the model's predictions (its y is ignored).
  """
  fn = _measure_fn(module)
  variables = {"params": params, **model_state}
  out = {}
  for split, (x, y) in inputs.items():
    use_prediction = split == "noise"
    grads, jacs = evaluation.chunked(
        lambda a, b: fn(variables, jnp.asarray(x[a:b]), jnp.asarray(y[a:b]), use_prediction),
        len(x))
    out[split] = {"input_gradient_norm": float(np.mean(grads)),
                  "logit_jacobian_norm": float(np.mean(jacs))}
  return out


def check(spec: specs.Spec) -> None:
  if spec.analysis.input_stability_samples < 0:
    raise specs.SpecError(f"analysis.input_stability_samples must be >= 0, got "
                          f"{spec.analysis.input_stability_samples}")


def stability_inputs(spec: specs.Spec, x_train, y_train, x_test, y_test
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The measured inputs of each split (host arrays; the noise split keyed by the run's seed)."""
  m = spec.analysis.input_stability_samples
  key = jax.random.fold_in(prng.run_key(spec.seed), prng.INPUT_STABILITY)
  x_train = np.asarray(x_train[:m], np.float32)
  noise = np.asarray(corruptions.released_code_noise(key, (m, *x_train.shape[1:])))
  return {"train": (x_train, np.asarray(y_train[:m], np.int32)),
          "test": (np.asarray(x_test[:m], np.float32), np.asarray(y_test[:m], np.int32)),
          "noise": (noise, np.zeros(m, np.int32))}


class StabilityOverTraining:
  """The measures at every evaluation, on that evaluation's parameters; resumable."""

  def __init__(self, spec: specs.Spec, inputs, capacity: int):
    self.inputs = inputs
    self.steps = np.full(capacity, -1, np.int64)
    self.values = np.full((capacity, len(SPLITS), len(MEASURES)), np.nan, np.float64)
    self.count = 0

  def __call__(self, ev) -> None:
    if getattr(ev, "model", None) is None:
      raise ValueError("analysis.input_stability_samples: the evaluation carries no model")
    if self.count >= len(self.steps):
      raise ValueError(f"analysis.input_stability_samples: more than {len(self.steps)} "
                       "evaluations")
    out = measure(*ev.model(), self.inputs)
    self.steps[self.count] = ev.step
    self.values[self.count] = [[out[s][m] for m in MEASURES] for s in SPLITS]
    self.count += 1

  def checkpoint_state(self) -> dict[str, np.ndarray]:
    return {"stability_steps": self.steps, "stability_values": self.values,
            "stability_count": np.asarray(self.count, np.int64)}

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    self.steps = np.array(tree["stability_steps"], np.int64)
    self.values = np.array(tree["stability_values"], np.float64)
    self.count = int(tree["stability_count"])

  def curves(self) -> dict[str, dict[str, list]]:
    """{split: {"step": [...], measure: [...]}} in evaluation order."""
    steps = [int(s) for s in self.steps[:self.count]]
    return {s: {"step": steps, **{m: [float(v) for v in self.values[:self.count, i, j]]
                                  for j, m in enumerate(MEASURES)}}
            for i, s in enumerate(SPLITS)}


def _tracker(spec: specs.Spec, data) -> StabilityOverTraining | None:
  if spec.analysis.input_stability_samples <= 0:
    return None
  inputs = stability_inputs(spec, runtime.fetch(data.x_train), runtime.fetch(data.y_train),
                            runtime.fetch(data.x_test), runtime.fetch(data.y_test))
  return StabilityOverTraining(spec, inputs, max_evaluations(spec, int(data.x_train.shape[0])))


def _finish(context: base.Context) -> base.Result:
  # The tracker is built whenever the metric is on: it holds the inputs (and the test labels,
  # which the context lacks).
  tracker = context.tracker
  final = measure(context.module, context.params, context.model_state, tracker.inputs)
  section = {"samples": int(context.spec.analysis.input_stability_samples),
             "splits": list(SPLITS), "final": final, "over_training": tracker.curves()}
  return base.Result(section, headline=("||dL/dx|| test", final["test"]["input_gradient_norm"]))


METRIC = base.Metric(
    section="input_stability",
    fields=("analysis.input_stability_samples",),
    enabled=lambda spec: spec.analysis.input_stability_samples > 0, finish=_finish,
    timing_key="input_stability", check=check, tracker=_tracker)
