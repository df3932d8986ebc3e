"""model.dtype: bfloat16 mixed precision behind a spec field that default specs do not hash."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memobench import catalogue, prng, specs, workload
from memobench.training import loop
from memobench.training import steps as steps_lib


def _bf16(spec):
  return specs.with_overrides(spec, ["model.dtype=bfloat16"])[0]


def test_default_dtype_keeps_every_hash_and_bfloat16_is_a_new_one():
  spec = catalogue.get("digits_clean")
  assert spec.model.dtype == "float32"
  assert specs.spec_hash(dataclasses.replace(
      spec, model=dataclasses.replace(spec.model, dtype="float32"))) == specs.spec_hash(spec)
  assert specs.spec_hash(_bf16(spec)) != specs.spec_hash(spec)


def test_unknown_dtype_is_one_line():
  spec = specs.with_overrides(catalogue.get("digits_clean"), ["model.dtype=float16"])[0]
  with pytest.raises(specs.SpecError, match="model.dtype must be one of float32, bfloat16"):
    workload.validate(spec)


@pytest.mark.parametrize("model", ["mlp1x512", "alexnet", "wrn28_1", "inception"])
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_parameters(model):
  spec = _bf16(catalogue.make_spec("digits", "clean", model))
  w = workload.resolve(spec)
  steps = steps_lib.make_steps(w, prng.run_key(0))
  state = steps.init(jax.random.key(1))
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
  data = w.corrupted_data(0)
  jaxpr = jax.make_jaxpr(steps.train_step)(state, data)
  kinds = {"dot_general", "conv_general_dilated"}
  eqns = [e for e in _eqns(jaxpr.jaxpr) if e.primitive.name in kinds]
  assert eqns and all(v.aval.dtype == jnp.bfloat16 for e in eqns for v in e.invars), model


def _eqns(jaxpr):
  """Every equation of a jaxpr, those of its sub-jaxprs (loops, conds, custom rules) too."""
  for e in jaxpr.eqns:
    yield e
    for p in e.params.values():
      for sub in (p if isinstance(p, (tuple, list)) else (p,)):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _eqns(inner)


def test_bfloat16_mlp_trains_and_agrees_with_float32():
  spec = catalogue.get("digits_clean")
  spec = dataclasses.replace(spec, budget=dataclasses.replace(
      spec.budget, max_steps=110, fit_threshold=1.0))
  runs = {}
  for name, s in (("f32", spec), ("bf16", _bf16(spec))):
    w = workload.resolve(s)
    runs[name] = loop.train(w, w.corrupted_data(0), log=lambda _: None)
  f32, bf16 = runs["f32"].final, runs["bf16"].final
  assert bf16.train_accuracy > 0.9 and bf16.test_accuracy > 0.85
  assert abs(bf16.test_accuracy - f32.test_accuracy) < 0.05
  assert np.isfinite(bf16.train_loss)
