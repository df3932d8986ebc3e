"""Tests of the performance harness (memobench/bench/) and the loop paths it tuned.

No timing assertions: timings belong to the harness. These tests check that the
harness runs in --quick mode and writes well-formed tables of every section,
that its sections are one explicit table each with its own configs, that a bad
flag is one line on stderr (harness and checkpoint benchmark), that its FLOP count
is the known analytic count, that it splices only its own section of
docs/BENCHMARKS.md, and that computing the batch order once per epoch
(training/steps.py's fused_steps, the unfused loop) trains exactly the same batches.
"""

import dataclasses
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from memobench import catalogue, prng, workload
from memobench.bench import harness, library, step_timing
from memobench.bench.common import Section, Table
from memobench.training import loop, steps as steps_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tables(markdown):
  """{title: (header, rows)} of every markdown table under a ### title."""
  tables, title = {}, None
  for line in markdown.splitlines():
    if line.startswith("### "):
      title = line[4:]
    elif line.startswith("|") and title is not None:
      cells = [c.strip() for c in line.strip().strip("|").split("|")]
      if title not in tables:
        tables[title] = (cells, [])
      elif not all(re.fullmatch(r"-+", c) for c in cells):
        tables[title][1].append(cells)
  return tables


def test_quick_run_writes_well_formed_tables(tmp_path):
  out, raw = tmp_path / "bench.md", tmp_path / "bench.json"
  proc = subprocess.run(
      [sys.executable, "-m", "memobench.bench", "--quick", f"--out={out}", f"--json={raw}"],
      capture_output=True, text=True, timeout=600, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-2000:]
  markdown = out.read_text()
  assert markdown.strip() == proc.stdout.strip()
  assert "backend `cpu`" in markdown and "Command: `python -m memobench.bench --quick`" in markdown
  headings = [line for line in markdown.splitlines() if line.startswith("### ")]
  # every section, the breakdown's profile table, then the targets
  assert len(headings) == len(harness.SECTIONS) + 2
  tables = _tables(markdown)
  by_prefix = {t.split(" (")[0].split(":")[0]: t for t in tables}
  for prefix in ("Peak matmul throughput", "memobench train step per model",
                 "Where an MLP step's time goes", "Batch order", "memobench's loop against a hand-written jitted loop",
                 "Step fusion per model", "vmapped ensembles of mlp1x512 against sequential runs",
                 "--seeds=K end to end", "Profile of the mlp1x512 step", "Targets"):
    assert prefix in by_prefix, (prefix, list(tables))
  for title, (header, rows) in tables.items():
    assert rows, title
    assert all(len(r) == len(header) for r in rows), title
  header, rows = tables[by_prefix["memobench train step per model"]]
  row = dict(zip(header, rows[0]))
  assert row["model"] == "mlp1x512" and float(row["images/s"].replace(",", "")) > 0
  assert row["fusion"].startswith("scan")  # MLPs are step-fused on every backend
  assert row["MFU vs f32 peak"].endswith("%")
  _, target_rows = tables[by_prefix["Targets"]]
  assert all(r[2] in ("met", "missed", "not measured") for r in target_rows)
  # The raw measurements agree with the table.
  import json  # pylint: disable=import-outside-toplevel
  data = json.loads(raw.read_text())
  assert data["config"] == "quick" and data["environment"]["backend"] == "cpu"
  assert data["models"][0]["flops_per_step"] > 0
  # The profile names the step's operations: its matmuls and its update among them.
  ops = [p["op"] for p in data["profile"]]
  assert any(o.startswith(("ynn_fusion", "dot")) for o in ops), ops
  assert all(p["min_s"] > 0 and p["calls_per_step"] > 0 for p in data["profile"])
  ensemble = data["ensemble"][0]
  assert ensemble["sliced_ratio"] > 0 and ensemble["ratio"] > 0


def test_bad_section_is_one_line_error():
  proc = subprocess.run([sys.executable, "-m", "memobench.bench", "--quick", "--sections=nope"],
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "memobench.bench: error: --sections: unknown section(s) nope; known: "
      + ", ".join(harness.SECTIONS)]


@pytest.mark.parametrize("module,bad_flag,a_flag", [
    ("memobench.bench", "--quick=maybe", "--sections"),
    ("memobench.bench.checkpoint", "--repeats=many", "--steps")])
def test_bad_flag_is_one_line_error_and_help_lists_the_flags(module, bad_flag, a_flag):
  proc = subprocess.run([sys.executable, "-m", module, bad_flag],
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"{module}: error: "), proc.stderr
  proc = subprocess.run([sys.executable, "-m", module, "--help"],
                        capture_output=True, text=True, timeout=120, cwd=REPO)
  assert f"python -m {module}" in proc.stdout and a_flag in proc.stdout, proc.stdout


def test_sections_are_an_explicit_ordered_table_with_their_own_configs():
  assert list(harness.SECTIONS) == ["peak", "models", "breakdown", "order", "loop", "torch",
                                    "fusion", "ensemble", "seeds", "estimator", "population"]
  for name, section in harness.SECTIONS.items():
    assert isinstance(section, Section) and section.name == name and section.title
    assert dataclasses.is_dataclass(section.full)
    assert type(section.quick) is type(section.full), name
  assert harness.DOC_PATH == os.path.join(REPO, "docs", "BENCHMARKS.md")


def test_hlo_flops_match_the_analytic_mlp_count():
  # mlp1x512 on 28x28x3, batch 32: forward 2*B*sum(in*out); the backward pass
  # computes weight gradients of every layer (2*B*in*out each) and input
  # gradients of every layer but the first (the data needs none).
  # SGD with momentum adds 4 FLOPs per parameter (t = g + 0.9 t; p = p - lr t).
  batch, layers = 32, [(2352, 512), (512, 10)]
  forward = sum(2 * batch * i * o for i, o in layers)
  num_params = sum(i * o + o for i, o in layers)
  assert num_params == 1_209_866  # Zhang et al. 2017, Table 1
  analytic = forward + forward + 2 * batch * 512 * 10 + 4 * num_params
  flops = step_timing.step_flops(library.bench_spec("mlp1x512", batch),
                                 step_timing.synthetic_data((28, 28, 3), 64))
  # What remains: bias, ReLU and softmax elementwise ops (well under 1%).
  assert analytic <= flops <= 1.01 * analytic


def test_splice_doc_replaces_only_its_own_section():
  other = "# memobench benchmarks\n\n## CNN step fusion\n\nfigures of someone else\n"
  once = harness.splice_doc(other, "## Performance harness\n\nv1\n")
  assert once.startswith(other.rstrip("\n"))
  assert harness.DOC_BEGIN in once and "v1" in once
  twice = harness.splice_doc(once + "\n## Checkpoint timing\n\nmore\n",
                             "## Performance harness\n\nv2")
  assert "v1" not in twice and "v2" in twice
  assert twice.count(harness.DOC_BEGIN) == 1
  assert "figures of someone else" in twice and twice.rstrip().endswith("more")
  assert harness.splice_doc("", "x").startswith("# memobench benchmarks")


def test_table_rejects_ragged_rows_and_formats_cells():
  table = Table("t", ["a", "b"])
  table.add(12345.6, None)
  table.add(0.123, "x|y")
  assert table.rows == [["12,346", "-"], ["0.12", "x\\|y"]]
  with pytest.raises(ValueError):
    table.add(1)


def _tiny_spec(steps_per_epoch_batch=64):
  spec = catalogue.get("digits_randlabels")
  return dataclasses.replace(spec, budget=dataclasses.replace(
      spec.budget, batch_size=steps_per_epoch_batch, max_epochs=3, eval_every_steps=30,
      fit_threshold=1.0))


def test_fused_steps_train_the_same_batches_as_single_steps():
  # 30 steps from step 10 cross the epoch boundary at step 22 (1,437 // 64 = 22
  # steps per epoch): the carried order must switch exactly there.
  spec = _tiny_spec()
  resolved = workload.resolve(spec)
  data = resolved.corrupted_data(spec.seed)
  steps = steps_lib.make_steps(resolved, prng.run_key(spec.seed))
  state = steps.init(jax.random.fold_in(prng.run_key(spec.seed), prng.INIT))
  step = jax.jit(steps.train_step)
  for _ in range(10):
    state = step(state, data)
  reference = state
  for _ in range(30):
    reference = step(reference, data)
  fused = jax.jit(steps_lib.fused_steps, static_argnums=(0, 3))(steps, state, data, 30)
  assert int(fused.step) == 40
  for a, b in zip(jax.tree.leaves(reference.params), jax.tree.leaves(fused.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(reference.loss_sum, fused.loss_sum, rtol=1e-5)


def test_unfused_loop_matches_fused_loop():
  # The unfused path (convolutional models on CPU) fetches each epoch's order
  # once; it must train what the fused path trains.
  resolved = workload.resolve(_tiny_spec())
  data = resolved.corrupted_data(resolved.spec.seed)
  fused = loop.train(resolved, data, log=lambda _: None)
  assert resolved.fused
  unfused = loop.train(dataclasses.replace(resolved, fused=False), data, log=lambda _: None)
  assert fused.final.step == unfused.final.step == 66
  for a, b in zip(jax.tree.leaves(fused.state.params), jax.tree.leaves(unfused.state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_accelerator_command_dry_run_on_cpu(tmp_path):
  # The accelerator command at tiny sizes (its CPU dry run): every part writes its
  # table and results.json, the generated CIFAR-10-shaped data loads through TFDS.
  from memobench.bench import accelerator
  out = accelerator.run(accelerator.TINY, str(tmp_path / "out"), str(tmp_path / "tfds"),
                        budget_s=600.0, parts=list(accelerator.PARTS))
  for part in accelerator.PARTS:
    assert (tmp_path / "out" / f"{part}.md").read_text().startswith("### ")
  assert set(out["peak_flops"]) >= {"float32"}
  assert [(m["model"], m["dtype"]) for m in out["models"]] == [
      ("mlp1x512", "float32"), ("mlp1x512", "bfloat16")]
  assert all(m["fused_s"] > 0 and m["unfused_s"] > 0 and m["flops_per_step"] > 0
             for m in out["models"])
  cifar = out["cifar10"]
  assert cifar["spec"] == "cifar10_randpix" and cifar["epochs"] == 2.0 and cifar["epoch_s"] > 0
  assert [e["models"] for e in out["estimator"]] == [1, 3]
  assert all(e["steps_per_model"] > 0 and e["train_s"] > 0 for e in out["estimator"])
  assert out["seeds"]["speedup"] > 0 and len(out["seeds"]["true"]["steps_to_fit"]) == 2
  lines = accelerator.summary(out)
  assert lines[0].startswith("accelerator run on cpu") and any("--seeds" in l for l in lines)


def test_accelerator_budget_skips_parts_in_their_tables(tmp_path):
  from memobench.bench import accelerator
  cfg = dataclasses.replace(accelerator.TINY, shares=(("peak", 0.0), ("models", 0.0),
                                                      ("cifar10", 0.0), ("estimator", 0.0),
                                                      ("seeds", 0.0)))
  out = accelerator.run(cfg, str(tmp_path), str(tmp_path / "tfds"), budget_s=0.0,
                        parts=["models", "estimator"])
  assert "models" not in out or not out["models"]
  assert "not measured" in (tmp_path / "estimator.md").read_text()
  assert "Not measured" in (tmp_path / "models.md").read_text()
