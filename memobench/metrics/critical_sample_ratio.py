"""Critical sample ratio of the trained model (analysis.csr_samples, analysis.csr_split).

Arpit et al. 2017 ("A closer look at memorization in deep networks", ICML): the
fraction of inputs x for which Langevin Adversarial Sample Search (LASS) finds,
within the box |x' - x|_inf <= r, an x' whose predicted class differs from x's.
LASS iterates x' <- clip_box(x' + alpha sign(grad_x' CE(f(x'), f(x))) + beta N(0, I)).
Constants are those of the authors' released code for inputs in [0, 1]:
r = 0.3/255, alpha = 0.25/255, beta = 0.2/255, at most 100 iterations. All 100
iterations run (the released code's early stop when an iteration adds fewer
than 20 new critical samples depends on how many samples are searched).

Units: r, alpha and beta are [0, 1]-pixel units in every spec. Each example's
are multiplied by its input scale s_i, how much the dataset's preprocessing
magnified a pixel displacement (data.Dataset.input_scale_*): 1/sigma_i of the
image's [0, 1] pixels for per-image whitening (the CIFAR-10/100 and SVHN specs,
preprocessing.whitening_scale), 1 for inputs already in [0, 1] (digits,
mnist5k, MNIST, Fashion-MNIST) and for mnist1d, whose signals have no pixel
units (r is then in its input units). The search in whitened space is then
the search on the raw image through the whitening map (tests/
test_fidelity_geometry.py checks it). Before, r was scaled by the test set's
global value range, which for whitened inputs is about twice the intended
[0, 1]-pixel radius. The reported r, alpha, beta are the [0, 1]-pixel values;
`input_scale` summarizes the s_i used.

Shuffled and random pixels permute an image's pixels, which keeps its sigma_i;
the gaussian and noise corruptions replace training inputs, whose s_i is then
the original image's (csr_split=train only: test inputs are never corrupted).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from memobench import prng, runtime, specs
from memobench.metrics import base
from memobench.training import evaluation, losses

# LASS constants of Arpit et al.'s released code, for inputs in [0, 1].
LASS_R = 0.3 / 255.0
LASS_ALPHA = 0.25 / 255.0
LASS_BETA = 0.2 / 255.0
LASS_ITERS = 100


SPLITS = ("test", "train")


def check(spec: specs.Spec) -> None:
  a = spec.analysis
  if a.csr_samples < 0:
    raise specs.SpecError(f"analysis.csr_samples must be >= 0, got {a.csr_samples}")
  if a.csr_split not in SPLITS:
    raise specs.SpecError(f"analysis.csr_split must be one of {', '.join(SPLITS)}, "
                          f"got {a.csr_split!r}")
  if a.csr_every_eval and a.csr_samples <= 0:
    raise specs.SpecError("analysis.csr_every_eval needs analysis.csr_samples > 0")


def _per_example(v, x: jax.Array) -> jax.Array:
  """A scalar, or one value per example broadcast over x's other axes."""
  v = jnp.asarray(v, x.dtype)
  return v.reshape((-1,) + (1,) * (x.ndim - 1)) if v.ndim == 1 else v


def critical_samples(logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
                     key: jax.Array, r: float, alpha: float, beta: float,
                     iters: int = LASS_ITERS) -> jax.Array:
  """Boolean per example: LASS (Arpit et al. 2017) found a class change within the r-box.

  r, alpha, beta: scalars, or (n,) arrays, one value per example of x.
  """
  r, alpha, beta = (_per_example(v, x) for v in (r, alpha, beta))
  label = jnp.argmax(logits_fn(x), -1)

  def loss(xa):
    return jnp.sum(losses.cross_entropy(logits_fn(xa), label))

  grad = jax.grad(loss)

  def body(i, carry):
    xa, critical = carry
    noise = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    xa = xa + alpha * jnp.sign(grad(xa)) + beta * noise
    xa = jnp.clip(xa, x - r, x + r)
    critical = critical | (jnp.argmax(logits_fn(xa), -1) != label)
    return xa, critical

  _, critical = jax.lax.fori_loop(0, iters, body, (x, jnp.zeros(x.shape[0], bool)))
  return critical


@functools.partial(jax.jit, static_argnums=0)
def _search(module, variables, x, scale, key):
  """critical_samples of `module` with the LASS constants times each example's scale."""
  logits_fn = lambda xb: module.apply(variables, xb, train=False)
  return critical_samples(logits_fn, x, key, LASS_R * scale, LASS_ALPHA * scale,
                          LASS_BETA * scale)


def _critical(module, params, model_state, x: np.ndarray, scale: np.ndarray,
              key: jax.Array) -> np.ndarray:
  variables = {"params": params, **model_state}
  # Each chunk's search noise is keyed by its first index.
  return evaluation.chunked(
      lambda start, stop: _search(module, variables, jnp.asarray(x[start:stop]),
                                  jnp.asarray(scale[start:stop]), jax.random.fold_in(key, start)),
      len(x))


def _inputs(x: np.ndarray, samples: int, input_scale: np.ndarray | None):
  x = np.asarray(x[:samples], np.float32)
  scale = (np.ones(len(x), np.float32) if input_scale is None
           else np.asarray(input_scale[:samples], np.float32))
  if scale.shape != (len(x),):
    raise ValueError(f"input_scale has shape {scale.shape}, expected ({len(x)},)")
  return x, scale


def critical_sample_ratio(module, params, model_state, x: np.ndarray, samples: int,
                          key: jax.Array, input_scale: np.ndarray | None = None,
                          split: str = "test") -> dict[str, Any]:
  """result.json entry: CSR on the first `samples` examples of `x` (the `split` inputs).

  input_scale: per example of x, the factor that converts [0, 1]-pixel units
  to its input units (data.Dataset.input_scale_*); None: 1 for every example.
  """
  x, scale = _inputs(x, samples, input_scale)
  critical = _critical(module, params, model_state, x, scale, key)
  return {"critical_sample_ratio": float(critical.mean()), "samples": int(len(x)),
          "split": split, "r": LASS_R, "alpha": LASS_ALPHA, "beta": LASS_BETA,
          "units": "[0, 1] pixels, times each example's input_scale",
          "input_scale": {"min": float(scale.min()), "mean": float(scale.mean()),
                          "max": float(scale.max())} if len(x) else None,
          "iterations": LASS_ITERS}


def max_evaluations(spec: specs.Spec, num_train: int) -> int:
  """An upper bound on a run's evaluations (workload.Schedule's step count, one per interval)."""
  b = spec.budget
  steps_per_epoch = max(num_train // b.batch_size, 1)
  total = b.max_epochs * steps_per_epoch
  if b.max_steps is not None:
    total = min(total, b.max_steps) if b.max_epochs > 0 else b.max_steps
  return max(-(-total // b.eval_every_steps), 1)


class CsrOverTraining:
  """analysis.csr_every_eval: the critical sample ratio at every evaluation (Arpit Sec. 3.4).

  The same inputs, scales and LASS search as the final measurement, on the
  parameters of each evaluation (Evaluation.model); evaluation at step t uses
  the search key fold_in(fold_in(run key, CSR), t), so a resumed run measures
  what an uninterrupted one does. Resumable: (step, ratio) rows in arrays of a
  fixed capacity, the bound on the run's evaluations.
  """

  def __init__(self, spec: specs.Spec, x: np.ndarray, capacity: int):
    self.spec, self.samples = spec, spec.analysis.csr_samples
    self.x = np.asarray(x[:self.samples], np.float32)
    self.scale: np.ndarray | None = None
    self.key = jax.random.fold_in(prng.run_key(spec.seed), prng.CSR)
    self.steps = np.full(capacity, -1, np.int64)
    self.ratios = np.full(capacity, np.nan, np.float64)
    self.count = 0

  def set_input_scale(self, input_scale_train=None, input_scale_test=None) -> None:
    """The runner's per-example input scales (data.Dataset.input_scale_*)."""
    self.scale = (input_scale_train if self.spec.analysis.csr_split == "train"
                  else input_scale_test)

  def __call__(self, ev) -> None:
    if getattr(ev, "model", None) is None:
      raise ValueError("analysis.csr_every_eval: the evaluation carries no model")
    if self.count >= len(self.steps):
      raise ValueError(f"analysis.csr_every_eval: more than {len(self.steps)} evaluations")
    module, params, model_state = ev.model()
    x, scale = _inputs(self.x, self.samples, self.scale)
    critical = _critical(module, params, model_state, x, scale,
                         jax.random.fold_in(self.key, ev.step))
    self.steps[self.count], self.ratios[self.count] = ev.step, float(critical.mean())
    self.count += 1

  def checkpoint_state(self) -> dict[str, np.ndarray]:
    return {"csr_steps": self.steps, "csr_ratios": self.ratios,
            "csr_count": np.asarray(self.count, np.int64)}

  def restore_checkpoint_state(self, tree: dict[str, Any]) -> None:
    self.steps = np.array(tree["csr_steps"], np.int64)
    self.ratios = np.array(tree["csr_ratios"], np.float64)
    self.count = int(tree["csr_count"])

  def rows(self) -> list[list[float]]:
    """[[step, ratio], ...] in evaluation order."""
    return [[int(s), float(r)] for s, r in zip(self.steps[:self.count],
                                               self.ratios[:self.count])]


def _tracker(spec: specs.Spec, data) -> CsrOverTraining | None:
  a = spec.analysis
  if not (a.csr_every_eval and a.csr_samples > 0):
    return None  # no tracker: the checkpoints of other runs keep their structure
  x = data.x_train if a.csr_split == "train" else data.x_test
  return CsrOverTraining(spec, runtime.fetch(x)[:a.csr_samples],
                         max_evaluations(spec, int(data.x_train.shape[0])))


def _finish(context: base.Context) -> base.Result:
  a = context.spec.analysis
  x, scale = ((context.x_train, context.input_scale_train) if a.csr_split == "train"
              else (context.x_test, context.input_scale_test))
  section = critical_sample_ratio(
      context.module, context.params, context.model_state, x, a.csr_samples,
      jax.random.fold_in(context.run_key, prng.CSR), scale, a.csr_split)
  if context.tracker is not None:
    section["over_training"] = context.tracker.rows()
  return base.Result(section, headline=("CSR", section["critical_sample_ratio"]))


METRIC = base.Metric(
    section="critical_sample_ratio",
    fields=("analysis.csr_samples", "analysis.csr_split", "analysis.csr_every_eval"),
    enabled=lambda spec: spec.analysis.csr_samples > 0, finish=_finish, timing_key="csr",
    check=check, tracker=_tracker)
