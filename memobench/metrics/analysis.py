"""Only `write_npz_atomic`, for memobench/memorization.py, which still imports it from here.

The run's metrics are memobench/metrics/runner.py's; delete this module once
memorization.py imports `runner.write_npz_atomic` instead.
"""

from memobench.metrics.runner import write_npz_atomic  # noqa: F401
