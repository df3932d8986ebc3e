"""Whether this process has been asked to stop (SIGTERM), for code outside the training loop.

The training loop's `runtime.PreemptionWatcher` handles SIGTERM while it runs
and records it here too; a program that runs other work between trainings
(the experiment driver) installs `note_sigterm` as its own handler, and asks
`sigterm_received()` before it saves work that a SIGTERM may have cut short.
A leaf module: importing it imports nothing heavy.
"""

from __future__ import annotations

import threading

_RECEIVED = threading.Event()


def note_sigterm() -> None:
  _RECEIVED.set()


def sigterm_received() -> bool:
  return _RECEIVED.is_set()


def clear() -> None:
  """Forget an earlier SIGTERM (tests)."""
  _RECEIVED.clear()
