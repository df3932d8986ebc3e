"""The leaderboard as one static HTML page: no server, no network, works from file://.

`render(board)` turns a leaderboard document (memobench/leaderboard.py) into a
self-contained page: one table per leaderboard track (memobench/tracks.py:
its entries ranked within the track, and an SVG plot of the score against
compute for the estimator track), the spec catalogue's sortable tables of
specs x scores (ranked, then unranked with the reason), the skipped files, and
learning-curve plots that an inline script draws as SVG from data embedded in
the page.

Safety: every value that comes from result files is escaped. Table cells go
through `html.escape`; the embedded curve data is JSON in a
``<script type="application/json">`` block with ``<``, ``>``, ``&`` and the
JavaScript line separators written as \\uXXXX escapes, so no spec name can close
the script element, and the script inserts names with ``textContent`` only. A
Content-Security-Policy forbids every network fetch.
"""

from __future__ import annotations

import html
import json
import math
import os
from typing import Any

# Metric columns shown first (in this order); any other numeric metric follows.
PRIMARY_METRICS = ("test_accuracy", "train_accuracy", "generalization_gap", "epochs_to_fit",
                   "steps_to_fit", "memorized_fraction", "label_noise_fraction")
# Learning-curve plots: (curve key, y-axis label). Zhang et al. 2017 Fig. 1a plots
# the training loss against steps.
PLOTS = (("train_loss", "training loss"), ("train_accuracy", "training accuracy"),
         ("test_accuracy", "test accuracy"))


def escape(value: Any) -> str:
  return html.escape(str(value), quote=True)


def script_json(obj: Any) -> str:
  """JSON safe to place inside a <script> element (no '<', '>', '&' or U+2028/9 left)."""
  text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
  for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
    text = text.replace(char, code)
  return text


def _metric_columns(entries: list[dict[str, Any]]) -> list[str]:
  present: dict[str, None] = {}
  for e in entries:
    for m in e["metrics"]:
      present.setdefault(m)
  return [m for m in PRIMARY_METRICS if m in present] + sorted(
      m for m in present if m not in PRIMARY_METRICS)


def _fmt(x: float | None) -> str:
  if x is None:
    return "&ndash;"
  if abs(x) >= 1000 or x == int(x) and abs(x) >= 10:
    return f"{x:,.0f}"
  return f"{x:.4f}"


def _stat_cell(stat: dict[str, Any] | None) -> str:
  if not stat or stat["mean"] is None:
    return '<td class="num" data-value="">&ndash;</td>'
  text = _fmt(stat["mean"])
  if stat["std"] is not None:
    text += f" &plusmn; {_fmt(stat['std'])}"
  title = f"n={stat['n']}"
  if stat["ci95"] is not None:
    title += f", 95% CI [{_fmt(stat['ci95'][0])}, {_fmt(stat['ci95'][1])}]"
  if stat["missing"]:
    title += f", {stat['missing']} missing"
  return (f'<td class="num" data-value="{escape(repr(float(stat["mean"])))}" '
          f'title="{escape(title)}">{text}</td>')


def _fit_columns(entries: list[dict[str, Any]]) -> list[str]:
  """The right-censored fit-time summaries present (leaderboard entries' fit_time)."""
  present: dict[str, None] = {}
  for e in entries:
    for m in e.get("fit_time") or {}:
      present.setdefault(m)
  return list(present)


def _fit_cell(fit: dict[str, Any] | None) -> str:
  """The censored median: '&ge;' marks a lower bound; hover for the counts."""
  if not fit or fit["median"] is None:
    return '<td class="num" data-value="">&ndash;</td>'
  text = ("&ge;" if fit["median_is_lower_bound"] else "") + _fmt(fit["median"])
  total = fit["fitted"] + fit["censored"]
  if fit["censored"]:
    text += f" ({fit['censored']}/{total} censored)"
  title = (f"median with censored seeds at their budget; {fit['fitted']} of {total} fitted, "
           f"{fit['censored']} censored (never reached the fit threshold)")
  if fit["mean_censored_at_bound"] is not None:
    title += (f"; mean with censored at budget {_fmt(fit['mean_censored_at_bound'])}"
              + (" (lower bound)" if fit["censored"] else ""))
  if fit["missing"]:
    title += f", {fit['missing']} missing"
  return (f'<td class="num" data-value="{escape(repr(float(fit["median"])))}" '
          f'title="{escape(title)}">{text}</td>')


def _corruption(spec: dict[str, Any]) -> str:
  c = spec.get("corruption") or {}
  kind = c.get("kind", "?")
  level = c.get("level")
  return f"{kind} {level}" if kind in ("partial", "noise") else str(kind)


def _table(entries: list[dict[str, Any]], table_id: str, ranked: bool,
           metrics: list[str], fit_columns: tuple[str, ...] | list[str] = ()) -> str:
  head = []
  if ranked:
    head.append('<th data-type="num">rank</th>')
  head += ['<th data-type="text">spec</th>', '<th data-type="text">dataset</th>',
           '<th data-type="text">corruption</th>', '<th data-type="text">model</th>',
           '<th data-type="num">seeds</th>']
  head += [f'<th data-type="num">{escape(m)}</th>' for m in metrics]
  head += [f'<th data-type="num" title="right-censored at the budget">{escape(m)} median</th>'
           for m in fit_columns]
  head.append('<th data-type="text">status</th>')
  if not ranked:
    head.append('<th data-type="text">reason</th>')
  rows = []
  for e in entries:
    spec = e["spec"]
    cells = []
    if ranked:
      cells.append(f'<td class="num" data-value="{e["rank"]}">{e["rank"]}</td>')
    cells.append(f'<td class="spec" title="hash {escape(e["spec_hash"])}">'
                 f'{escape(e["spec_name"])}</td>')
    cells.append(f'<td>{escape((spec.get("dataset") or {}).get("name", "?"))}</td>')
    cells.append(f"<td>{escape(_corruption(spec))}</td>")
    cells.append(f'<td>{escape((spec.get("model") or {}).get("name", "?"))}</td>')
    cells.append(f'<td class="num" data-value="{e["n_seeds"]}" '
                 f'title="seeds {escape(", ".join(map(str, e["seeds"])))}">{e["n_seeds"]}</td>')
    cells += [_stat_cell(e["metrics"].get(m)) for m in metrics]
    cells += [_fit_cell((e.get("fit_time") or {}).get(m)) for m in fit_columns]
    status = ", ".join(f"{k} {v}" for k, v in sorted(e["statuses"].items()))
    cells.append(f"<td>{escape(status)}</td>")
    if not ranked:
      cells.append(f'<td class="reason">{escape(e["reason"])}</td>')
    rows.append(f'<tr data-hash="{escape(e["spec_hash"])}">{"".join(cells)}</tr>')
  return (f'<table class="sortable" id="{table_id}"><thead><tr>{"".join(head)}</tr></thead>'
          f'<tbody>{"".join(rows)}</tbody></table>')


# --------------------------------------------------------------------------
# Tracks (leaderboard.v2 `tracks`: memobench/tracks.py)
# --------------------------------------------------------------------------


def _track_cell(value: Any) -> str:
  """A track cell: a stat (mean &plusmn; std), a censored fit time, a number or text."""
  if isinstance(value, dict) and "median" in value:
    return _fit_cell(value)
  if isinstance(value, dict):
    return _stat_cell(value)
  if isinstance(value, int) and not isinstance(value, bool):
    return f'<td class="num" data-value="{value}">{value}</td>'
  if isinstance(value, float):
    return f'<td class="num" data-value="{escape(repr(value))}">{_fmt(value)}</td>'
  if value is None:
    return '<td class="num" data-value="">&ndash;</td>'
  return f"<td>{escape(value)}</td>"


def _track_table(section: dict[str, Any]) -> str:
  """One track's table: its ranked entries, then those it cannot rank (with the reason)."""
  columns = section["columns"]
  from_summaries = section["entries_from"] == "estimator_summaries"
  head = ['<th data-type="num">rank</th>', '<th data-type="text">entry</th>',
          f'<th data-type="num" title="{escape(section["score"]["statistic"])}">'
          f'{escape(section["score"]["label"])}</th>']
  head += [f'<th data-type="num">{escape(c["label"])}</th>' for c in columns]
  if from_summaries:
    head.append('<th data-type="text">source</th>')
  head.append('<th data-type="text">not ranked because</th>')
  rows = []
  for e in section["ranked"] + section["unranked"]:
    ranked = "rank" in e
    cells = [f'<td class="num" data-value="{e["rank"]}">{e["rank"]}</td>' if ranked
             else '<td class="num" data-value="">&ndash;</td>']
    title = f' title="hash {escape(e["spec_hash"])}"' if e.get("spec_hash") else ""
    cells.append(f'<td class="spec"{title}>{escape(e["label"])}</td>')
    cells.append(_track_cell(e["score"]))
    cells += [_track_cell(e["cells"].get(c["key"])) for c in columns]
    if from_summaries:
      source = e.get("source") or ""
      folder = os.path.basename(os.path.dirname(source)) or source  # the full path on hover
      cells.append(f'<td title="{escape(source)}"><code>{escape(folder)}</code></td>')
    cells.append(f'<td class="reason">{escape(e.get("reason", ""))}</td>')
    rows.append(f'<tr class="{"ranked" if ranked else "unranked"}" '
                f'data-entry="{escape(e["label"])}">{"".join(cells)}</tr>')
  return (f'<table class="sortable track" id="track-{escape(section["name"])}">'
          f'<thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _value(value: Any) -> float | None:
  v = value.get("mean") if isinstance(value, dict) else value
  return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _track_plot(section: dict[str, Any]) -> str:
  """An SVG scatter of the score against the track's plot axis (cost), one point per entry.

  The x axis is logarithmic when every x is positive and they span over a
  decade; bars are the score's 95% interval where the entry has one.
  """
  plot = section.get("plot")
  if not plot:
    return ""
  points = []
  for e in section["ranked"] + section["unranked"]:
    x, y = _value(e["cells"].get(plot["x"])), _value(e["score"])
    if x is not None and y is not None:
      ci = e["score"].get("ci95") if isinstance(e["score"], dict) else None
      points.append((x, y, ci, e["label"]))
  if not points:
    return (f'<p class="note">No entry of {escape(section["name"])} has both '
            f'{escape(plot["x_label"])} and {escape(section["score"]["label"])}.</p>')
  W, H, L, R, T, B = 520, 320, 56, 16, 24, 42
  xs = [p[0] for p in points]
  log = min(xs) > 0 and max(xs) / min(xs) > 10
  fx = math.log10 if log else (lambda v: v)
  x0, x1 = fx(min(xs)), fx(max(xs))
  if x1 <= x0:
    x0, x1 = x0 - 1, x1 + 1
  pad = (x1 - x0) * 0.05
  x0, x1 = x0 - pad, x1 + pad
  ys = [p[1] for p in points] + [c for p in points if p[2] for c in p[2]]
  y0, y1 = min(0.0, min(ys)), max(1.0, max(ys))
  X = lambda v: L + (fx(v) - x0) / (x1 - x0) * (W - L - R)
  Y = lambda v: H - B - (v - y0) / (y1 - y0) * (H - T - B)
  label = f'{section["score"]["label"]} vs {plot["x_label"]}'
  parts = [f'<svg class="plot compute" data-track="{escape(section["name"])}" width="{W}" '
           f'height="{H}" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{W / 2}" y="15" text-anchor="middle">{escape(label)}</text>',
           f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" '
           'stroke="#999"/>']
  for t in (y0, (y0 + y1) / 2, y1):
    parts.append(f'<text x="{L - 4}" y="{Y(t) + 4:.1f}" text-anchor="end">{t:.2g}</text>')
  if log:
    ticks = [10 ** k for k in range(math.ceil(x0), math.floor(x1) + 1)]
  else:
    ticks = [x0 + (x1 - x0) * k / 4 for k in range(5)]
  for t in ticks:
    parts.append(f'<text x="{X(t):.1f}" y="{H - B + 14}" text-anchor="middle">{t:.3g}</text>')
  parts.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle">'
               f'{escape(plot["x_label"])}{" (log scale)" if log else ""}</text>')
  for x, y, ci, name in points:
    if ci:
      parts.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{Y(ci[0]):.1f}" '
                   f'y2="{Y(ci[1]):.1f}" stroke="#1f77b4"/>')
    parts.append(f'<circle class="point" cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" '
                 f'fill="#1f77b4"><title>{escape(name)}</title></circle>')
    right = X(x) > (L + W - R) / 2  # labels on the right half end at their point
    parts.append(f'<text x="{X(x) + (-5 if right else 5):.1f}" y="{Y(y) - 5:.1f}" '
                 f'text-anchor="{"end" if right else "start"}">{escape(name)}</text>')
  parts.append("</svg>")
  return "".join(parts)


def _tracks(board: dict[str, Any]) -> list[str]:
  sections = board.get("tracks") or []  # a version-1 board has none
  if not sections:
    return []
  parts = ["<h2>Tracks</h2>",
           '<p class="note">Each track is one fixed task with a declared score and direction; '
           "its entries are ranked only against each other (memobench/tracks.py).</p>"]
  for s in sections:
    score = s["score"]
    parts.append(f'<h3 id="track-{escape(s["name"])}-title">{escape(s["name"])}</h3>')
    parts.append(f'<p class="note">Task: {escape(s["task"])}. Score: '
                 f'{escape(score["label"])} ({escape(score["statistic"])}; '
                 f'{"higher" if score["higher_is_better"] else "lower"} is better).</p>')
    pinned = s.get("task_fields") or {}  # (boards before task_fields have none)
    if pinned:
      parts.append('<p class="note">Entries must have ' + ", ".join(
          f"<code>{escape(k)} = {escape(json.dumps(v))}</code>" for k, v in pinned.items())
                   + ".</p>")
    for src in s.get("sources") or []:
      rel = src.get("loo_reliability")
      parts.append(f'<p class="note">Source <code>{escape(src["path"])}</code>: '
                   f'ground-truth split-half reliability '
                   f'{_fmt(rel["mean"]) if rel else "&ndash;"}.</p>')
    parts.append(_track_table(s))
    parts.append(_track_plot(s))
  parts.append("<h2>Spec catalogue</h2>")
  return parts


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.spec{font-family:monospace}
.plots{display:flex;flex-wrap:wrap;gap:1em}
svg.plot{border:1px solid #ddd;background:#fff}
svg.plot text{font:11px system-ui,sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:.3em 1.2em;font:12px monospace}
.legend span::before{content:"";display:inline-block;width:14px;height:3px;margin-right:4px;
 vertical-align:middle;background:var(--c)}
.note{color:#666}
"""

# Sorting and plotting. Names are inserted with textContent only.
_SCRIPT = r"""
(function(){
"use strict";
function cellKey(td, type){
  if(type==="num"){var v=td.getAttribute("data-value");
    return (v===null||v==="")?null:parseFloat(v);}
  return td.textContent;
}
document.querySelectorAll("table.sortable").forEach(function(table){
  var ths=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(ths,function(th,col){
    th.addEventListener("click",function(){
      var type=th.getAttribute("data-type");
      var asc=th.getAttribute("aria-sort")!=="ascending";
      Array.prototype.forEach.call(ths,function(o){o.removeAttribute("aria-sort");});
      th.setAttribute("aria-sort",asc?"ascending":"descending");
      var body=table.tBodies[0];
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=cellKey(a.cells[col],type),y=cellKey(b.cells[col],type);
        if(x===null&&y===null)return 0; if(x===null)return 1; if(y===null)return -1;
        var c=(type==="num")?(x-y):String(x).localeCompare(String(y));
        return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});

// A link may carry a sort: page.html#sort=<table id>.<column name>.<asc|desc>
var m=/^#sort=([a-z]+)\.([^.]+)\.(asc|desc)$/.exec(decodeURIComponent(location.hash));
if(m){var t=document.getElementById(m[1]);
  if(t){Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th){
    if(th.textContent===m[2]){th.click(); if(m[3]==="desc")th.click();}});}}

var data=JSON.parse(document.getElementById("curve-data").textContent);
var NS="http://www.w3.org/2000/svg";
var COLORS=["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2",
            "#7f7f7f","#bcbd22","#17becf"];
function el(name,attrs,parent){var e=document.createElementNS(NS,name);
  for(var k in attrs)e.setAttribute(k,attrs[k]); if(parent)parent.appendChild(e); return e;}
function ticks(lo,hi,n){var span=hi-lo||1,step=Math.pow(10,Math.floor(Math.log10(span/n)));
  [1,2,5,10].some(function(m){if(span/(step*m)<=n){step*=m;return true;}return false;});
  var out=[];for(var t=Math.ceil(lo/step)*step;t<=hi+1e-9*span;t+=step)out.push(t);return out;}
function fmt(t){return Math.abs(t)>=1000?(t/1000)+"k":String(+t.toFixed(4));}
var plots=document.getElementById("plots");
data.plots.forEach(function(p){
  var key=p[0],label=p[1],series=[];
  data.entries.forEach(function(e,i){
    Object.keys(e.curves).forEach(function(seed){
      var c=e.curves[seed],xs=c.step,ys=c[key];if(!xs||!ys)return;
      var pts=[];for(var j=0;j<xs.length;j++){
        if(ys[j]!==null&&xs[j]!==null&&isFinite(ys[j]))pts.push([xs[j],ys[j]]);}
      if(pts.length)series.push({entry:i,pts:pts});
    });
  });
  if(!series.length)return;
  var W=460,H=300,L=52,R=12,T=24,B=40;
  var x0=0,x1=-Infinity,y0=Infinity,y1=-Infinity;
  series.forEach(function(s){s.pts.forEach(function(q){x1=Math.max(x1,q[0]);
    y0=Math.min(y0,q[1]);y1=Math.max(y1,q[1]);});});
  if(key!=="train_loss"){y0=0;y1=Math.max(y1,1);} else {y0=Math.min(y0,0);}
  if(x1<=x0)x1=x0+1; if(y1<=y0)y1=y0+1;
  function X(v){return L+(v-x0)/(x1-x0)*(W-L-R);}
  function Y(v){return H-B-(v-y0)/(y1-y0)*(H-T-B);}
  var svg=el("svg",{"class":"plot","width":W,"height":H,"viewBox":"0 0 "+W+" "+H,
                    "data-curve":key},plots);
  var title=el("text",{x:W/2,y:15,"text-anchor":"middle"},svg);title.textContent=label+" vs step";
  ticks(x0,x1,6).forEach(function(t){el("line",{x1:X(t),x2:X(t),y1:T,y2:H-B,stroke:"#eee"},svg);
    var tx=el("text",{x:X(t),y:H-B+14,"text-anchor":"middle"},svg);tx.textContent=fmt(t);});
  ticks(y0,y1,5).forEach(function(t){el("line",{x1:L,x2:W-R,y1:Y(t),y2:Y(t),stroke:"#eee"},svg);
    var ty=el("text",{x:L-4,y:Y(t)+4,"text-anchor":"end"},svg);ty.textContent=fmt(t);});
  el("rect",{x:L,y:T,width:W-L-R,height:H-T-B,fill:"none",stroke:"#999"},svg);
  var xl=el("text",{x:(L+W-R)/2,y:H-6,"text-anchor":"middle"},svg);xl.textContent="step";
  series.forEach(function(s){
    var path=s.pts.map(function(q){return X(q[0]).toFixed(1)+","+Y(q[1]).toFixed(1);}).join(" ");
    var line=el("polyline",{points:path,fill:"none","stroke-width":1.5,"class":"series",
      stroke:COLORS[s.entry%COLORS.length]},svg);
    var tip=el("title",{},line);tip.textContent=data.entries[s.entry].name;
  });
});
var legend=document.getElementById("legend");
data.entries.forEach(function(e,i){
  var s=document.createElement("span");s.style.setProperty("--c",COLORS[i%COLORS.length]);
  s.textContent=e.name;legend.appendChild(s);});
document.body.setAttribute("data-rendered","1");
})();
"""


def render(board: dict[str, Any]) -> str:
  """The page of a leaderboard document, as one HTML string."""
  entries = board["ranked"] + board["unranked"]
  metrics = _metric_columns(entries)
  fit_columns = _fit_columns(entries)
  rank_by = board["rank_by"]
  curve_data = {
      "plots": [list(p) for p in PLOTS],
      "entries": [{"name": e["spec_name"], "hash": e["spec_hash"], "curves": e["curves"]}
                  for e in entries],
  }
  skipped = "".join(f"<li><code>{escape(s['path'])}</code>: {escape(s['reason'])}</li>"
                    for s in board["skipped"])
  stats = board["statistics"]
  parts = [
      "<!DOCTYPE html>",
      '<html lang="en"><head><meta charset="utf-8">',
      # No network: nothing may be fetched; inline style and script only.
      '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
      "<title>memobench leaderboard</title>",
      f"<style>{_STYLE}</style></head><body>",
      "<h1>memobench leaderboard</h1>",
      f'<p class="note">Generated {escape(board["generated_at"])} by memobench '
      f'{escape(board["generator"].get("memobench"))} (commit '
      f'{escape(board["generator"].get("git_commit") or "unknown")}). Ranked by the mean '
      f'of <b>{escape(rank_by["metric"])}</b> '
      f'({"higher" if rank_by["higher_is_better"] else "lower"} is better) over standard '
      f'specs with at least {escape(stats["min_seeds_to_rank"])} usable seeds. Cells: mean '
      f"&plusmn; {escape(stats['std'])}; hover for the {escape(stats['ci95'])}, n. "
      "Fit times are right-censored: a seed that never reached the fit threshold counts "
      "at its budget in the <i>median</i> columns (&ge; marks a median that is a lower "
      "bound); the mean columns average only the seeds that fit.</p>",
      *_tracks(board),
      f"<h2>Ranked ({len(board['ranked'])})</h2>",
      _table(board["ranked"], "ranked", True, metrics, fit_columns),
      f"<h2>Not ranked ({len(board['unranked'])})</h2>",
      _table(board["unranked"], "unranked", False, metrics, fit_columns),
      "<h2>Learning curves</h2>",
      '<p class="note">One line per seed, coloured by spec.</p>',
      '<div class="legend" id="legend"></div><div class="plots" id="plots"></div>',
  ]
  if board["skipped"]:
    parts += [f"<h2>Skipped files ({len(board['skipped'])})</h2><ul>{skipped}</ul>"]
  parts += [
      f'<script type="application/json" id="curve-data">{script_json(curve_data)}</script>',
      f"<script>{_SCRIPT}</script>",
      "</body></html>",
  ]
  return "\n".join(parts) + "\n"
