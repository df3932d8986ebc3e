"""Keskar et al. 2017's epsilon-sharpness (their Metric 2.1), by L-BFGS-B under the box.

"On large-batch training for deep learning: generalization gap and sharp
minima" (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017), Sec. 2.2.2:

    phi(x, f, eps, A) = 100 * (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x))
    C_eps = {z in R^p : |z_i| <= eps (|(A^+ x)_i| + 1)}

x the trained parameters (flattened), f the training loss, A^+ the
pseudo-inverse of A. A = I is the full space; A a random n x p matrix (p = 100
in the paper) explores a random p-dimensional manifold through x. The box is
relative to the size of each coordinate (plus one, so zero coordinates still
move).

The maximization (the paper names scipy's L-BFGS-B, Byrd et al. 1995, and no
start): the max is taken over every feasible point evaluated, from
  - y = 0 (f(x) itself, so phi >= 0) and its gradient g = A^T grad f(x);
  - the box corner in the gradient's direction, y_c = h * sign(g) (h the
    box's half-widths; sign 0 -> +1): the maximizer of f's first-order model,
    whose gain over f(x) to first order is the reported `first_order`
    sum_i h_i |g_i| (= eps sum_i (|x_i| + 1) |g_i| for A = I);
  - L-BFGS-B on -f(x + A y) under the box, with JAX gradients, at most
    `max_iters` iterations each (tolerances off, so it runs them unless a line
    search fails), started from the corner and from `random_starts` uniformly
    random points of the box.
L-BFGS-B evaluates only feasible points, so the reported max is at least the
value of every point any start evaluated (tests: a known separable answer, and
a flat converged point). At a converged point the corner alone can beat a
20-iteration L-BFGS-B from a random start many times over (measured at a
small-batch minimum of experiments/keskar2017_large_batch.py: 7-22x in phi),
which is why every start enters the max.

memobench's choices, where the paper leaves them open: f is the mean
cross-entropy of the first `examples` training examples (evaluation mode, the
labels trained on), not the whole training set; the random A has i.i.d.
standard normal entries; the starts above.

Reported (result.json `memorization.eps_sharpness`): eps, examples,
max_iters, random_starts, and per form (`full`, and `projected` when
analysis.eps_sharpness_dim > 0): sharpness (phi), loss (f(x)), max_loss,
corner_loss and corner_sharpness (phi of the corner alone), first_order (the
corner's first-order gain, in loss units) and first_order_sharpness (100
first_order / (1 + f(x))), best_start (the start whose run found the max:
"corner", "random<i>", or "x" when nothing beat f(x)), iterations and
evaluations of L-BFGS-B summed over the starts, starts (per start: max_loss,
iterations, evaluations), and (projected) dim.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax.flatten_util import ravel_pytree

from memobench import prng, specs
from memobench.metrics import base
from memobench.training import losses

# Keskar et al.'s two box sizes (their Tables 3 and 4) and projection dimension.
PAPER_EPSILONS = (1e-3, 5e-4)
PAPER_DIM = 100
# L-BFGS-B's random starts, besides the one from the gradient's corner.
RANDOM_STARTS = 2


def check(spec: specs.Spec) -> None:
  a = spec.analysis
  if a.eps_sharpness_iters < 0:
    raise specs.SpecError(f"analysis.eps_sharpness_iters must be >= 0, "
                          f"got {a.eps_sharpness_iters}")
  if not a.eps_sharpness_eps > 0:
    raise specs.SpecError(f"analysis.eps_sharpness_eps must be positive, "
                          f"got {a.eps_sharpness_eps}")
  if a.eps_sharpness_dim < 0:
    raise specs.SpecError(f"analysis.eps_sharpness_dim must be >= 0 (0: the full space "
                          f"only), got {a.eps_sharpness_dim}")
  if a.eps_sharpness_examples <= 0:
    raise specs.SpecError(f"analysis.eps_sharpness_examples must be positive, "
                          f"got {a.eps_sharpness_examples}")


def maximize_in_box(value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
                    half_widths: np.ndarray, start: np.ndarray,
                    max_iters: int) -> dict[str, Any]:
  """max of f over {|y_i| <= half_widths_i} by L-BFGS-B from `start` (inside the box).

  value_and_grad(y) -> (f(y), grad f(y)) on float64 host arrays. Returns
  {"max": the largest f evaluated, "argmax", "iterations", "evaluations"}.
  """
  best = {"value": -np.inf, "y": np.asarray(start, np.float64)}

  def negative(y):
    value, grad = value_and_grad(y)
    value = float(value)
    if value > best["value"]:
      best["value"], best["y"] = value, np.array(y, np.float64)
    return -value, -np.asarray(grad, np.float64)

  b = np.asarray(half_widths, np.float64)
  out = scipy.optimize.minimize(
      negative, np.asarray(start, np.float64), jac=True, method="L-BFGS-B",
      bounds=scipy.optimize.Bounds(-b, b),
      # Tolerances off: it runs max_iters iterations unless its line search fails.
      options={"maxiter": max_iters, "maxfun": 4 * max_iters + 10, "ftol": 0.0, "gtol": 0.0})
  return {"max": best["value"], "argmax": best["y"], "iterations": int(out.nit),
          "evaluations": int(out.nfev)}


def corner(half_widths: np.ndarray, grad: np.ndarray) -> np.ndarray:
  """The box vertex in the gradient's direction, h * sign(g) (a zero gradient: +h)."""
  return np.where(np.asarray(grad) < 0, -1.0, 1.0) * np.asarray(half_widths, np.float64)


def maximize_from_starts(value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
                         half_widths: np.ndarray, random_starts: int, max_iters: int,
                         key: jax.Array) -> dict[str, Any]:
  """max of f over {|y_i| <= h_i}: y = 0, the gradient's corner, and L-BFGS-B from the corner
  and from `random_starts` uniform points of the box; every evaluated point counts.

  Returns {"max", "value0" (f at y = 0), "first_order" (sum h |grad f(0)|), "corner_value",
  "best_start", "iterations", "evaluations" (summed), "starts": [per L-BFGS-B start]}.
  """
  h = np.asarray(half_widths, np.float64)
  value0, grad0 = value_and_grad(np.zeros_like(h))
  y_corner = corner(h, grad0)
  corner_value = float(value_and_grad(y_corner)[0])
  best, best_start = float(value0), "x"
  if corner_value > best:
    best, best_start = corner_value, "corner"
  starts = [("corner", y_corner)] + [
      (f"random{i}", np.asarray(jax.random.uniform(jax.random.fold_in(key, i), h.shape,
                                                   jnp.float32, -1.0, 1.0), np.float64) * h)
      for i in range(random_starts)]
  runs = []
  for name, start in starts:
    out = maximize_in_box(value_and_grad, h, start, max_iters)
    runs.append({"start": name, "max_loss": out["max"], "iterations": out["iterations"],
                 "evaluations": out["evaluations"]})
    if out["max"] > best:
      best, best_start = out["max"], name
  return {"max": best, "value0": float(value0), "corner_value": corner_value,
          "first_order": float(np.sum(h * np.abs(np.asarray(grad0, np.float64)))),
          "best_start": best_start, "starts": runs,
          "iterations": sum(r["iterations"] for r in runs),
          "evaluations": 2 + sum(r["evaluations"] for r in runs)}


class Objective:
  """f(x + A y) and its gradient in y, jitted once for a loss and a parameter shape.

  The parameters, A and y are arguments of the compiled programs, so one
  Objective serves every model of the same shape (seeds, batch sizes, rescalings).
  """

  def __init__(self, loss_fn: Callable[[Any], jax.Array], params: Any):
    _, unravel = ravel_pytree(params)
    flat_loss = lambda x: loss_fn(unravel(x))  # pylint: disable=unnecessary-lambda-assignment
    self.loss = jax.jit(flat_loss)
    self.full = jax.jit(jax.value_and_grad(lambda y, x: flat_loss(x + y)))
    self.projected = jax.jit(jax.value_and_grad(lambda y, x, a: flat_loss(x + a @ y)))


def phi(max_loss: float, loss: float) -> float:
  """Keskar et al.'s normalization: 100 (max f - f(x)) / (1 + f(x))."""
  return 100.0 * (max_loss - loss) / (1.0 + loss)


def eps_sharpness(loss_fn: Callable[[Any], jax.Array], params: Any, eps: float,
                  max_iters: int, key: jax.Array, dim: int = 0,
                  projection: np.ndarray | None = None,
                  objective: Objective | None = None,
                  random_starts: int = RANDOM_STARTS) -> dict[str, Any]:
  """phi(x, f, eps, A) of Keskar et al. 2017 at x = params, f = loss_fn.

  A = I when dim = 0 and no `projection`; a random n x dim standard normal
  matrix when dim > 0 (drawn from `key`); `projection` (n, p) gives A itself.
  `objective`: an Objective of this loss_fn, to reuse its compiled programs.
  Returns the fields of one form in the module docstring ("dim": p, or None
  for the full space).
  """
  objective = objective or Objective(loss_fn, params)
  flat, _ = ravel_pytree(params)
  start_key, matrix_key = jax.random.split(key)
  if projection is None and dim > 0:
    projection = jax.random.normal(matrix_key, (flat.shape[0], dim), flat.dtype)
  if projection is None:
    center = flat
    program = lambda y: objective.full(y, flat)  # pylint: disable=unnecessary-lambda-assignment
  else:
    a = jnp.asarray(projection, flat.dtype)
    # A^+ x by the normal equations, solved in float64 (A^T A is p x p).
    gram = np.asarray(a.T @ a, np.float64)
    center = jnp.asarray(np.linalg.solve(gram, np.asarray(a.T @ flat, np.float64)), flat.dtype)
    program = lambda y: objective.projected(y, flat, a)  # pylint: disable=unnecessary-lambda-assignment

  def value_and_grad(y):
    value, grad = program(jnp.asarray(y, flat.dtype))
    return float(value), np.asarray(grad, np.float64)

  half_widths = eps * (np.abs(np.asarray(center, np.float64)) + 1.0)
  loss = float(objective.loss(flat))
  out = maximize_from_starts(value_and_grad, half_widths, random_starts, max_iters, start_key)
  # f(x) through the y-program may differ from objective.loss in the last bit: the max
  # counts y = 0, so phi >= 0 up to that rounding; report against the same f(x) as before.
  max_loss = max(out["max"], loss)
  return {"sharpness": phi(max_loss, loss), "loss": loss, "max_loss": max_loss,
          "corner_loss": out["corner_value"], "corner_sharpness": phi(out["corner_value"], loss),
          "first_order": out["first_order"],
          "first_order_sharpness": 100.0 * out["first_order"] / (1.0 + loss),
          "best_start": out["best_start"], "iterations": out["iterations"],
          "evaluations": out["evaluations"], "starts": out["starts"],
          "dim": None if projection is None else int(np.shape(projection)[1])}


def training_loss(module, model_state, x_train: np.ndarray, y_train: np.ndarray,
                  examples: int) -> Callable[[Any], jax.Array]:
  """params -> the mean training CE (evaluation mode) on the first `examples` examples."""
  x = jnp.asarray(x_train[:examples], jnp.float32)
  y = jnp.asarray(y_train[:examples], jnp.int32)
  return lambda p: losses.mean_cross_entropy(
      module.apply({"params": p, **model_state}, x, train=False), y)


def section(module, params, model_state, x_train, y_train, *, eps: float, max_iters: int,
            examples: int, dim: int, key: jax.Array,
            objective: Objective | None = None,
            random_starts: int = RANDOM_STARTS) -> dict[str, Any]:
  """result.json entry: the full-space form and (dim > 0) the random-projection form.

  `objective`: an Objective of training_loss(module, model_state, x_train,
  y_train, examples), to reuse its compiled programs across calls.
  """
  loss_fn = training_loss(module, model_state, x_train, y_train, examples)
  objective = objective or Objective(loss_fn, params)
  full_key, projected_key = jax.random.split(key)
  out = {"eps": eps, "examples": int(min(examples, len(x_train))), "max_iters": max_iters,
         "method": "l-bfgs-b", "random_starts": random_starts,
         "full": eps_sharpness(loss_fn, params, eps, max_iters, full_key, objective=objective,
                               random_starts=random_starts)}
  if dim > 0:
    out["projected"] = eps_sharpness(loss_fn, params, eps, max_iters, projected_key, dim=dim,
                                     objective=objective, random_starts=random_starts)
  return out


def _finish(context: base.Context) -> base.Result:
  a = context.spec.analysis
  out = section(context.module, context.params, context.model_state, context.x_train,
                context.y_train, eps=a.eps_sharpness_eps, max_iters=a.eps_sharpness_iters,
                examples=a.eps_sharpness_examples, dim=a.eps_sharpness_dim,
                key=jax.random.fold_in(context.run_key, prng.EPS_SHARPNESS))
  return base.Result(out, headline=("eps-sharpness", out["full"]["sharpness"]))


METRIC = base.Metric(
    section="eps_sharpness",
    fields=("analysis.eps_sharpness_iters", "analysis.eps_sharpness_eps",
            "analysis.eps_sharpness_dim", "analysis.eps_sharpness_examples"),
    enabled=lambda spec: spec.analysis.eps_sharpness_iters > 0, finish=_finish,
    timing_key="eps_sharpness", check=check)
