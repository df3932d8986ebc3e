"""The performance harness: `python -m memobench.bench` (see harness.py)."""
