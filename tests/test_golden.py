"""The one training loop against values recorded before the restructure ("One place per concept").

Three runs through the command lines (which the restructure keeps): a single run
with every per-example analysis on, a vmapped group of three seeds, and the
subsample estimator's ensemble. Their scores were recorded with the code before
the restructure (commit 08721b1) on this kind of machine, in tests/golden/*.json
(`python -m tests.test_golden --record` rewrites them; do that only for a change
that is meant to change results, and say so in the commit). Floats agree to 1e-6
relative: the computation is unchanged, but XLA may reassociate a sum when a
program is reorganized.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from tests.conftest import REPO, run_main

GOLDEN = os.path.join(REPO, "tests", "golden")
_SINGLE = ["--spec=digits_partial40", "--set", "budget.max_epochs=4",
           "--set", "budget.eval_every_steps=11", "--set", "analysis.turnover_dropout=0.5",
           "--set", "analysis.csr_samples=16", "--set", "analysis.sharpness_iters=4",
           "--set", "analysis.sharpness_examples=256", "--checkpoint_every=0",
           "--compilation_cache_dir="]
_SEEDS = ["--spec=digits_partial40", "--set", "budget.max_epochs=3",
          "--set", "budget.eval_every_steps=11", "--set", "analysis.effective_rank=false",
          "--seeds=3", "--vmap_seeds=true", "--checkpoint_every=0", "--compilation_cache_dir="]
_ENSEMBLE = ["--spec=digits_partial40", "--models=4", "--epochs=3"]
# Fields that measure time or the machine, not the computation.
_VOLATILE = ("timing", "timing_s", "environment", "wall_s", "images_per_sec",
             "time_to_fit_s", "compile_s",
             # provenance added after the values were recorded: a vmapped run's
             # members per slice (test_seeds checks it)
             "members_per_slice")


def _scrub(tree):
  if isinstance(tree, dict):
    return {k: _scrub(v) for k, v in tree.items() if k not in _VOLATILE}
  if isinstance(tree, list):
    return [_scrub(v) for v in tree]
  return tree


def _single(root):
  proc = run_main(*_SINGLE, f"--workdir={root}/single")
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.load(open(f"{root}/single/result.json"))
  dyn = np.load(f"{root}/single/dynamics.npz")
  tov = np.load(f"{root}/single/turnover.npz")
  return {"metrics": result["metrics"], "memorization": _scrub(result["memorization"]),
          "run": _scrub(result["run"]),
          # (spec_hash: the npz's provenance, added after the values were recorded)
          "npz": {f"dynamics.{k}": float(np.nansum(dyn[k].astype(np.float64)))
                  for k in dyn.files if k != "spec_hash"} |
                 {f"turnover.{k}": float(np.nansum(tov[k].astype(np.float64)))
                  for k in tov.files if k != "spec_hash"}}


def _seeds(root):
  proc = run_main(*_SEEDS, f"--workdir={root}/seeds")
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = {}
  for s in range(3):
    result = json.load(open(f"{root}/seeds/seed{s}/result.json"))
    out[f"seed{s}"] = {"metrics": result["metrics"], "run": _scrub(result["run"]),
                       "memorization": _scrub(result.get("memorization", {}))}
  return out


def _ensemble(root):
  proc = subprocess.run([sys.executable, "-m", "memobench.memorization", *_ENSEMBLE,
                         f"--workdir={root}/ens"], capture_output=True, text=True,
                        timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-2000:]
  summary = json.load(open(f"{root}/ens/memorization.json"))
  npz = np.load(f"{root}/ens/memorization.npz")
  return {"scores": summary["scores"], "estimator": _scrub(summary["estimator"]),
          "npz": {k: float(np.nansum(npz[k].astype(np.float64))) for k in npz.files}}


CASES = {"single": _single, "seeds": _seeds, "ensemble": _ensemble}
# A checkpoint of the single run at step 44 of 88, written before the restructure.
OLD_CHECKPOINT = os.path.join(GOLDEN, "checkpoint_before_restructure")


def _compare(got, want, path=""):
  if isinstance(want, dict):
    assert isinstance(got, dict) and set(got) == set(want), (path, sorted(got), sorted(want))
    for k in want:
      _compare(got[k], want[k], f"{path}.{k}")
  elif isinstance(want, list):
    assert isinstance(got, list) and len(got) == len(want), path
    for i, (g, w) in enumerate(zip(got, want)):
      _compare(g, w, f"{path}[{i}]")
  elif isinstance(want, float) and not isinstance(want, bool):
    # Lanczos residuals ||Hv - lambda v|| are convergence diagnostics whose last
    # digits follow the CPU's float code (3e-6 relative between two machines of
    # one kind); every score is held to 1e-6.
    rel = 1e-4 if ".residuals[" in path else 1e-6
    assert got == pytest.approx(want, rel=rel, abs=1e-9, nan_ok=True), path
  else:
    assert got == want, path


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_values_recorded_before_the_restructure(case, tmp_path):
  with open(os.path.join(GOLDEN, f"{case}.json")) as f:
    want = json.load(f)
  _compare(json.loads(json.dumps(CASES[case](str(tmp_path)))), want)


def test_a_checkpoint_written_before_the_restructure_resumes_to_the_same_result(tmp_path):
  shutil.copytree(OLD_CHECKPOINT, tmp_path / "single")
  args = [a for a in _SINGLE if a != "--checkpoint_every=0"] + ["--checkpoint_every=22"]
  proc = run_main(*args, f"--workdir={tmp_path}/single")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "resumed from the checkpoint of step 44" in proc.stdout
  with open(os.path.join(GOLDEN, "single.json")) as f:
    want = json.load(f)
  result = json.load(open(tmp_path / "single" / "result.json"))
  _compare(result["metrics"], want["metrics"])
  _compare(_scrub(result["memorization"]), want["memorization"])
  assert result["run"]["resumed_from_step"] == 44


if __name__ == "__main__" and "--record" in sys.argv:
  os.makedirs(GOLDEN, exist_ok=True)
  for name, fn in CASES.items():
    with tempfile.TemporaryDirectory() as root:
      with open(os.path.join(GOLDEN, f"{name}.json"), "w") as f:
        json.dump(fn(root), f, indent=1, sort_keys=True)
      print("recorded", name)
