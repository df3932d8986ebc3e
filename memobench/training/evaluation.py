"""Evaluation over a whole split in fixed-size chunks: one definition for every caller.

Whole splits do not fit one jitted call for the large datasets (activations of
50,000 images at once), so every full-split computation (the loop's train/test
evaluation, embeddings, turn-over self-influence, critical samples, the
subsample estimator's predictions) walks the examples in chunks of EVAL_BATCH.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

EVAL_BATCH = 1024


def chunked(fn: Callable[[int, int], Any], n: int, *, batch: int = EVAL_BATCH,
            axis: int = 0) -> Any:
  """fn(start, stop) over consecutive slices [start, stop) of n examples, concatenated.

  `fn` returns a pytree of arrays whose example axis is `axis`; the result is
  the same pytree with the chunks concatenated (as numpy arrays) along it. A
  caller that needs one compiled shape pads inside `fn` and trims its outputs.
  """
  parts = [jax.tree.map(np.asarray, fn(start, min(start + batch, n)))
           for start in range(0, n, batch)]
  return jax.tree.map(lambda *xs: np.concatenate(xs, axis=axis), *parts)
