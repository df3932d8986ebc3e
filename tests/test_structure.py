"""The package's structure: no import cycles, and validation independent of import order.

The import graph counts every `import memobench...` / `from memobench... import`
statement anywhere in a module, inside functions too: a cycle closed through a
function-level import is still a cycle (it only moves the failure to run time).
"""

import ast
import os
import subprocess
import sys

from tests.conftest import REPO

PACKAGE = os.path.join(REPO, "memobench")
EXPERIMENTS = os.path.join(REPO, "experiments")


def _module_name(path):
  rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
  return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _modules(package=PACKAGE):
  out = {}
  for root, _, files in os.walk(package):
    for f in files:
      if f.endswith(".py"):
        path = os.path.join(root, f)
        out[_module_name(path)] = path
  return out


def _imports(path, name, modules):
  """The memobench modules that module `name` imports (statements anywhere in it)."""
  is_package = path.endswith("__init__.py")
  package = name if is_package else name.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
      # `from pkg import mod` imports pkg.mod when that is a module, else pkg.
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                 for a in node.names]
    else:
      continue
    for t in targets:
      # Importing a.b.c runs a/__init__ and a/b/__init__ too, except the
      # packages the importer is itself inside (they are already importing).
      parts = t.split(".")
      for k in range(1, len(parts) + 1):
        prefix = ".".join(parts[:k])
        if prefix in modules and prefix != name and not name.startswith(prefix + "."):
          found.add(prefix)
  return found


def import_graph(package=PACKAGE):
  modules = _modules(package)
  return {name: _imports(path, name, modules) for name, path in modules.items()}


def find_cycle(graph):
  """One import cycle as a list of modules, or None (iterative DFS, three colours)."""
  colour = {n: 0 for n in graph}
  for start in sorted(graph):
    if colour[start]:
      continue
    stack = [(start, iter(sorted(graph[start])))]
    path = [start]
    colour[start] = 1
    while stack:
      node, children = stack[-1]
      child = next(children, None)
      if child is None:
        colour[node] = 2
        stack.pop()
        path.pop()
      elif colour.get(child) == 1:
        return path[path.index(child):] + [child]
      elif colour.get(child) == 0:
        colour[child] = 1
        path.append(child)
        stack.append((child, iter(sorted(graph[child]))))
  return None


def test_the_cycle_finder_finds_a_planted_cycle():
  # (The table case: a package's __init__ imports its members, a member imports
  # a sibling; that is no cycle, but a member importing its table would be.)
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_inside_memobench():
  graph = import_graph()
  assert "memobench.training.loop" in graph and "memobench.workload" in graph
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_training_imports_no_metric_and_no_estimator():
  # The loop is below the metrics (which it calls back) and the estimators (which
  # drive it): turn-over dropout's masks live beside the steps (issue 23's knot).
  graph = import_graph()
  for name, imported in graph.items():
    if name.startswith("memobench.training"):
      above = {m for m in imported if m.startswith(("memobench.metrics", "memobench.estimators"))}
      assert not above, (name, sorted(above))


def test_specs_is_a_leaf():
  assert import_graph()["memobench.specs"] == set()


def test_no_module_is_longer_than_700_lines():
  long = {name: n for name, path in {**_modules(), **_modules(EXPERIMENTS)}.items()
          if (n := sum(1 for _ in open(path))) > 700}
  assert not long, long


def test_experiments_import_memobench_never_the_reverse_and_have_no_cycle():
  graph = import_graph(EXPERIMENTS)
  assert "experiments.driver" in graph
  cycle = find_cycle(graph)
  assert cycle is None, "import cycle: " + " -> ".join(cycle)
  for path in _modules().values():
    text = open(path).read()
    assert "import experiments" not in text and "from experiments" not in text, path


# Each snippet imports one part of memobench first, then validates the same bad
# specs; every order must give the same messages.
_BAD = [("model.name", "resnet"), ("dataset.name", "nope"), ("optimizer.kind", "lbfgs"),
        ("corruption.kind", "blur"), ("analysis.objective", "hinge"),
        ("analysis.turnover_dropout", "1.5"), ("corruption.level", "2")]
_FIRST_IMPORTS = ["memobench.workload", "memobench.metrics", "memobench.models",
                  "memobench.training.objectives", "memobench.data.corruptions",
                  "memobench.catalogue", "memobench.run"]


def test_validation_gives_the_same_answer_whatever_was_imported_first():
  code = """
import importlib, sys
importlib.import_module(sys.argv[1])
from memobench import catalogue, specs, workload
for key, value in {bad!r}:
  spec, _ = specs.with_overrides(catalogue.get("digits_clean"), [f"{{key}}={{value}}"])
  try:
    workload.validate(spec)
    print(key, "accepted")
  except specs.SpecError as e:
    print(key, e)
""".format(bad=_BAD)
  answers = {}
  for first in _FIRST_IMPORTS:
    proc = subprocess.run([sys.executable, "-c", code, first], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=True)
    answers[first] = proc.stdout
  assert len(set(answers.values())) == 1, answers
  lines = next(iter(answers.values())).splitlines()
  assert len(lines) == len(_BAD) and not any(l.endswith("accepted") for l in lines), lines
  assert "unknown model 'resnet'" in lines[0] and "unknown objective 'hinge'" in lines[4]
