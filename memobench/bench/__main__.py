"""python -m memobench.bench"""
from memobench.bench import harness

if __name__ == "__main__":
  harness.entry()
