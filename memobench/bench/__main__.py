"""python -m memobench.bench: the performance harness (harness.py)."""
from absl import flags

from memobench.bench import harness

# absl's --help prints the main module's docstring and key flags: the harness's.
__doc__ = harness.__doc__  # pylint: disable=redefined-builtin
flags.adopt_module_key_flags(harness)

if __name__ == "__main__":
  harness.entry()
