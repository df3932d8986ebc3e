"""Shared test helpers. Tests run on CPU; keep each one small (the suite must run in minutes)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args, timeout=300, env=None):
  """Runs `python -m memobench.main ARGS` in a subprocess; returns CompletedProcess."""
  full_env = {**os.environ, **(env or {})}
  return subprocess.run([sys.executable, "-m", "memobench.main", *args], capture_output=True,
                        text=True, timeout=timeout, cwd=REPO, env=full_env)


