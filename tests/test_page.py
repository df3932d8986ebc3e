"""The static leaderboard page: escaping, and a headless-Chromium check that it renders."""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from memobench import leaderboard, page
from tests.test_leaderboard import HASH_A, HASH_B, HASH_C, fake_result, write

EVIL = '</script><img src=x onerror="document.title=\'pwned\'">&amp;<b>x</b>\u2028'


def evil_board(tmp_path):
  curve = [{"step": s, "train_loss": 2.3 / s, "train_accuracy": min(1, s / 30),
            "test_accuracy": 0.1} for s in (10, 20, 30)]
  for seed, acc in enumerate([0.91, 0.93, 0.95]):
    write(tmp_path, f"a/{seed}", fake_result("digits_clean", HASH_A, seed, acc), curve)
  for seed, acc in enumerate([0.11, 0.10, 0.09]):
    write(tmp_path, f"b/{seed}", fake_result(EVIL, HASH_B, seed, acc), curve)
  write(tmp_path, "c/0", fake_result("digits_gaussian", HASH_C, 0, 0.1,
                                     nonstandard={"note": EVIL}), curve)
  return leaderboard.build([str(tmp_path)], warn=lambda m: None)


def test_values_from_results_are_escaped_everywhere(tmp_path):
  text = page.render(evil_board(tmp_path))
  assert "<img" not in text and "<b>x</b>" not in text
  assert html.escape(EVIL, quote=True).replace("\u2028", "") in text.replace("\u2028", "")
  # The embedded data cannot close its script element, yet decodes to the exact name.
  blob = re.search(r'<script type="application/json" id="curve-data">(.*?)</script>', text,
                   re.S).group(1)
  assert "<" not in blob and ">" not in blob and "&" not in blob and "\u2028" not in blob
  names = [e["name"] for e in json.loads(blob)["entries"]]
  assert EVIL in names
  # Exactly the two script elements the page itself has.
  assert text.count("<script") == 2 and text.count("</script>") == 2


def test_script_json_escapes_markup():
  assert page.script_json({"a": "</script>&\u2029"}) == (
      '{"a":"\\u003c/script\\u003e\\u0026\\u2029"}')


def _chromium():
  return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(tmp_path, url, *extra):
  browser = _chromium()
  if browser is None:
    pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
  profile = tmp_path / f"profile{len(os.listdir(tmp_path))}"
  cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", *extra, url]
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
  assert out.returncode == 0, out.stderr[-2000:]
  return out


def test_chromium_renders_sorted_table_and_plots(tmp_path):
  board = evil_board(tmp_path / "res")
  target = tmp_path / "leaderboard.html"
  leaderboard.export(board, str(tmp_path / "leaderboard.json"), str(target))
  dom = _headless(tmp_path, f"file://{target}#sort=ranked.test_accuracy.asc",
                  "--dump-dom").stdout
  assert 'data-rendered="1"' in dom  # the page script ran to its end
  # The markup in the spec name stayed text: no element was created, no handler ran.
  assert "<img" not in dom and "<title>memobench leaderboard</title>" in dom
  ranked = re.search(r'<table class="sortable" id="ranked">(.*?)</table>', dom, re.S).group(1)
  rows = re.findall(r'<tr data-hash="([0-9a-f]+)"', ranked)
  assert rows == [HASH_B, HASH_A]  # ascending test accuracy, as the link asked
  unranked = re.search(r'id="unranked">(.*?)</table>', dom, re.S).group(1)
  assert re.findall(r'<tr data-hash="([0-9a-f]+)"', unranked) == [HASH_C]
  plots = re.findall(r'<svg class="plot"[^>]*data-curve="([a-z_]+)"', dom)
  assert plots == ["train_loss", "train_accuracy", "test_accuracy"]
  # one polyline per seed per plot: 3 + 3 + 1 seeds
  assert dom.count('class="series"') == 3 * 7
  screenshot = tmp_path / "page.png"
  _headless(tmp_path, f"file://{target}", f"--screenshot={screenshot}",
            "--window-size=1200,900")
  assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
