"""The learning curve as TensorBoard event files (tensorboardX; no TensorFlow needed).

`CurveWriter` is an `on_eval` callback for the training loop (training/loop.py): every evaluation's
scalars go to ``<workdir>/tensorboard/`` as they happen, so
``tensorboard --logdir <workdir>`` shows a run live. TensorBoard is
observability, not results: if tensorboardX is missing or fails, the run goes
on without event files after one warning line.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

TB_DIR = "tensorboard"
_BLOCKED = object()


def _import_tensorboardx():
  """Imports tensorboardX without its optional torch import.

  tensorboardX imports torch (if installed) only to accept torch tensors; we
  log Python floats, and importing torch costs ~2 s per run. A None entry in
  sys.modules makes that `import torch` raise ImportError, which tensorboardX
  handles; the entry is removed again right after.
  """
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None  # type: ignore[assignment]
  try:
    import tensorboardX  # pylint: disable=import-outside-toplevel
  finally:
    if blocked and sys.modules.get("torch", _BLOCKED) is None:
      del sys.modules["torch"]
  return tensorboardX


class CurveWriter:
  """Writes each evaluation's numeric fields as scalars `curve/<field>` at its step."""

  def __init__(self, logdir: str, log: Callable[[str], None] = print):
    self.logdir = logdir
    try:
      self._writer = _import_tensorboardx().SummaryWriter(logdir=logdir)
    except Exception as e:  # pylint: disable=broad-except  (observability must not kill a run)
      log(f"warning: no TensorBoard event files ({type(e).__name__}: {e})")
      self._writer = None

  def __call__(self, evaluation: Any) -> None:
    if self._writer is None:
      return
    row = evaluation.curve_row() if hasattr(evaluation, "curve_row") else dict(evaluation)
    step = int(row["step"])
    for key, value in row.items():
      if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
        self._writer.add_scalar(f"curve/{key}", float(value), step)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None
