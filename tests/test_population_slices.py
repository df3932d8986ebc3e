"""A vmapped group's members in slices (train_group(members_per_slice=c)): same runs, exactly.

One vmap over K members sums the batched matmuls of the group in XLA's order
for that batch, which can differ from a single run's in the last bits; a slice
of one member is the single program's computation. On mnist5k (784 inputs)
the two differ after a few dozen steps, so this is the case that shows it.
"""

import dataclasses

import jax
import numpy as np
import pytest

from memobench import catalogue, workload
from memobench.training import loop, programs


def _params(outcomes):
  return [[np.asarray(x) for x in jax.tree.leaves(o.state.params)] for o in outcomes]


def test_slices_of_one_member_equal_single_runs_bitwise():
  spec = catalogue.get("mnist5k_clean")
  spec = dataclasses.replace(spec, budget=dataclasses.replace(
      spec.budget, max_steps=62, eval_every_steps=31, fit_threshold=1.0))
  w = workload.resolve(spec)

  def members():
    return [loop.Member(dataclasses.replace(spec, seed=s), w.corrupted_data(s),
                        log=lambda _: None) for s in range(3)]
  single = _params(loop.train_group(w, members(), vmapped=False))
  sliced = _params(loop.train_group(w, members(), vmapped=True, members_per_slice=1))
  for a, b in zip(single, sliced):
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
  # The default on CPU is slices of one: the same runs, exactly.
  default = loop.train_group(w, members(), vmapped=True)
  assert [o.members_per_slice for o in default] == [1, 1, 1]
  for a, b in zip(single, _params(default)):
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_default_slice_width_follows_the_backend():
  assert programs.default_members_per_slice("cpu") == 1
  assert programs.default_members_per_slice("gpu") is None
  assert programs.default_members_per_slice("tpu") is None


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "one"])
def test_a_bad_slice_width_is_refused(bad):
  spec = catalogue.get("digits_clean")
  w = workload.resolve(spec)
  member = loop.Member(spec, w.corrupted_data(0), log=lambda _: None)
  with pytest.raises(ValueError, match="members_per_slice"):
    loop.train_group(w, [member], vmapped=True, members_per_slice=bad)


def test_map_members_slices_give_what_one_vmap_gives():
  # The mapping itself: any slice width computes every member, in member order.
  f = lambda k, x, shared: k * x + shared  # noqa: E731
  keys, xs = np.arange(5.0), np.arange(10.0).reshape(5, 2)
  want = programs.map_members(f, (keys, xs, 1.0), (True, True, False), None)
  for c in (1, 2, 5):
    got = programs.map_members(f, (keys, xs, 1.0), (True, True, False), c)
    np.testing.assert_array_equal(got, want)
