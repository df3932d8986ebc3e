"""memobench: a JAX benchmark suite for memorization versus generalization."""

__version__ = "0.1.0"
