"""Renderings of a Timeline: a per-rank usage table, a self-contained HTML page and a PNG.

The HTML page must open offline from a job directory copied off a cluster, so everything is
inline (CSS, JS, data) and nothing is fetched.  A pass with 256 ranks recording 100k
segments each is 25M segments: far more than a page can carry or a canvas can draw one by
one, and far more than there are pixels.  Both renderers therefore draw *per pixel column*:
in each column of a row the kind that covered most of it wins (uncovered time counts as
"other"), which is what the eye would see anyway and bounds the drawing work by the pixel
count.  The page gets the raw segments while they fit a budget; past it, the busiest rows
are pre-aggregated here into fixed time bins the same way, and the page says so.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np

from hpcingest.outputs import replace_file
from hpcingest.profile.palette import OTHER, kind_color, kind_meaning, palette
from hpcingest.profile.timeline import RankTimeline, Timeline

__all__ = ["OTHER", "PlotUnavailable", "kind_color", "kind_meaning", "palette", "render_html", "render_png", "usage_table",
           "format_usage_table", "usage_json", "kind_sort_key", "RankUsage"]
#: Kinds during which the engine has no work: they make a rank "idle", all others "busy".
IDLE_KINDS = ("idle", "steal")

#: Upper bound on segments embedded in the HTML page (about 6-9 bytes each).
MAX_EMBEDDED_SEGMENTS = 1_500_000
#: Fewest time bins an aggregated row gets: about two screen widths, so zooming 2x still helps.
MIN_BINS = 2_000

_BASE_ORDER = ("idle", "steal", "list", "stat", "sink", "state", "catalog", "hook", "delete", "throttle")


def kind_sort_key(kind: str) -> tuple[int, int, str]:
    """Legend and table order: engine kinds in pipeline order, iRODS APIs, unknown kinds, other."""
    if kind == OTHER:
        return (3, 0, "")
    if kind in _BASE_ORDER:
        return (0, _BASE_ORDER.index(kind), "")
    return (1 if kind.startswith("irods:") else 2, 0, kind)


# ---------------------------------------------------------------------------------------------
# usage table


@dataclass
class RankUsage:
    """Where one rank's wall time went; seconds_by_kind includes "other" and adds up to wall_s."""

    rank: int
    host: str
    wall_s: float
    busy_fraction: float      # 1 - (idle + steal) / wall
    idle_fraction: float      # (idle + steal) / wall
    seconds_by_kind: dict[str, float] = field(default_factory=dict)


def _clipped(rank: RankTimeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends and local kind ids of the segments, clipped to [started, ended], empty ones dropped."""
    segments = rank.segments
    starts = np.maximum(segments["start"], rank.started)
    ends = np.minimum(segments["end"], rank.ended)
    keep = ends > starts
    return starts[keep], ends[keep], segments["kind"][keep].astype(np.intp)


def _fractions(seconds_by_kind: dict[str, float], wall_s: float) -> tuple[float, float]:
    """(busy, idle) fractions; both 0 for an empty recording rather than a division by zero."""
    if wall_s <= 0:
        return 0.0, 0.0
    idle = sum(seconds_by_kind.get(kind, 0.0) for kind in IDLE_KINDS) / wall_s
    return 1.0 - idle, idle


def _rank_usage(rank: RankTimeline) -> RankUsage:
    starts, ends, kinds = _clipped(rank)
    per_id = np.bincount(kinds, weights=ends - starts, minlength=len(rank.kinds))
    seconds: dict[str, float] = {}
    for kind, value in zip(rank.kinds, per_id.tolist()):
        if value > 0:
            seconds[kind] = seconds.get(kind, 0.0) + value
    wall = max(0.0, rank.wall_s)
    seconds = {kind: seconds[kind] for kind in sorted(seconds, key=kind_sort_key)}
    seconds[OTHER] = seconds.get(OTHER, 0.0) + max(0.0, wall - float(per_id.sum()))
    busy, idle = _fractions(seconds, wall)
    return RankUsage(rank=rank.rank, host=rank.host, wall_s=wall, busy_fraction=busy, idle_fraction=idle,
                     seconds_by_kind=seconds)


def usage_table(timeline: Timeline) -> list[RankUsage]:
    """One RankUsage per rank, in rank order."""
    return [_rank_usage(rank) for rank in timeline.ranks]


def _total(rows: list[RankUsage]) -> RankUsage:
    """All ranks together: seconds summed, fractions weighted by wall time (rank -1, no host)."""
    seconds: dict[str, float] = {}
    for row in rows:
        for kind, value in row.seconds_by_kind.items():
            seconds[kind] = seconds.get(kind, 0.0) + value
    seconds = {kind: seconds[kind] for kind in sorted(seconds, key=kind_sort_key)}
    wall = sum(row.wall_s for row in rows)
    busy, idle = _fractions(seconds, wall)
    return RankUsage(rank=-1, host="", wall_s=wall, busy_fraction=busy, idle_fraction=idle, seconds_by_kind=seconds)


def _kinds_by_size(total: RankUsage) -> list[str]:
    return sorted(total.seconds_by_kind, key=lambda kind: (-total.seconds_by_kind[kind], kind_sort_key(kind)))


def _table_cells(rows: list[RankUsage], max_kinds: int) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the plain-text and HTML tables (the last row is TOTAL).

    Kinds get a column each, largest first, up to max_kinds; the rest share a "rest" column,
    so the table stays readable whatever the number of iRODS APIs.
    """
    total = _total(rows)
    ordered = _kinds_by_size(total)
    shown, rest = ordered[:max_kinds], ordered[max_kinds:]
    header = ["rank", "host", "wall s", "busy %", "idle %"] + [f"{kind} s" for kind in shown]
    if rest:
        header.append(f"rest ({len(rest)}) s")
    body = []
    for row in rows + [total]:
        label = ["TOTAL", f"{len(rows)} rank{'s' * (len(rows) != 1)}"] if row is total else [str(row.rank), row.host]
        cells = label + [f"{row.wall_s:.2f}", f"{100 * row.busy_fraction:.1f}", f"{100 * row.idle_fraction:.1f}"]
        cells += [f"{row.seconds_by_kind.get(kind, 0.0):.2f}" for kind in shown]
        if rest:
            cells.append(f"{sum(row.seconds_by_kind.get(kind, 0.0) for kind in rest):.2f}")
        body.append(cells)
    return header, body


def format_usage_table(rows: list[RankUsage], max_kinds: int = 6) -> str:
    """Aligned plain text: one line per rank, then TOTAL (seconds summed, percentages wall-weighted)."""
    if not rows:
        return "(no ranks)"
    header, body = _table_cells(rows, max_kinds)
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # host left-aligned, numbers right-aligned
        return "  ".join(cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule] + [line(cells) for cells in body[:-1]] + [rule, line(body[-1])])


def usage_json(rows: list[RankUsage]) -> dict[str, Any]:
    """The table as JSON-ready data: {"kinds", "ranks": [...], "total": {...}} (total has rank/host None)."""
    total = asdict(_total(rows))
    total["rank"] = total["host"] = None
    return {"kinds": sorted(total["seconds_by_kind"], key=kind_sort_key),
            "ranks": [asdict(row) for row in rows], "total": total}


# ---------------------------------------------------------------------------------------------
# aggregation shared by both renderers


@dataclass
class _Kinds:
    """The kinds of all ranks in one id space (ranks number their kinds independently)."""

    names: list[str]
    local_to_global: dict[int, np.ndarray]  # rank -> array mapping its kind ids to global ids

    @property
    def other(self) -> int:
        return len(self.names) - 1

    @classmethod
    def of(cls, timeline: Timeline) -> "_Kinds":
        used: set[str] = set()
        for rank in timeline.ranks:
            ids = np.unique(rank.segments["kind"])
            used.update(rank.kinds[i] for i in ids.tolist())
        used.discard(OTHER)
        names = sorted(used, key=kind_sort_key) + [OTHER]
        index = {name: i for i, name in enumerate(names)}
        mapping = {rank.rank: np.array([index.get(kind, len(names) - 1) for kind in rank.kinds] or [0], dtype=np.intp)
                   for rank in timeline.ranks}
        return cls(names=names, local_to_global=mapping)


@dataclass
class _Runs:
    """Drawable pieces of one row, seconds since the timeline start, global kind ids."""

    starts: np.ndarray
    ends: np.ndarray
    kinds: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


def _raw_runs(rank: RankTimeline, kinds: _Kinds, t0: float) -> _Runs:
    starts, ends, local = _clipped(rank)
    return _Runs(starts - t0, ends - t0, kinds.local_to_global[rank.rank][local])


def _binned_runs(runs: _Runs, span: tuple[float, float], edges: np.ndarray, n_kinds: int, other: int) -> _Runs:
    """Aggregate runs into the bins between edges: each bin takes the kind covering most of it.

    Coverage per kind and bin comes from the cumulative covered time at each edge (a binary
    search per edge), so the cost is O((segments + bins) log segments) per kind whatever
    the segment lengths.  Uncovered time inside the rank's span competes as "other"; bins
    won by "other" are left out (the page and the PNG paint the span in "other" first).
    """
    n_bins = len(edges) - 1
    present = np.unique(runs.kinds)
    coverage = np.zeros((len(present) + 1, n_bins))
    for row, kind in enumerate(present.tolist()):
        mask = runs.kinds == kind
        starts, ends = runs.starts[mask], runs.ends[mask]
        durations = ends - starts
        cumulative = np.concatenate(([0.0], np.cumsum(durations)))
        done = np.searchsorted(ends, edges, side="right")         # segments wholly before each edge
        partial = np.zeros_like(edges)
        inside = done < len(starts)
        at = done[inside]
        partial[inside] = np.clip(edges[inside] - starts[at], 0.0, durations[at])
        coverage[row] = np.diff(cumulative[done] + partial)
    in_span = np.clip(np.minimum(edges[1:], span[1]) - np.maximum(edges[:-1], span[0]), 0.0, None)
    coverage[-1] = in_span - coverage[:-1].sum(axis=0)
    winner = np.append(present, other)[np.argmax(coverage, axis=0)]
    winner[in_span <= 0] = -1
    change = np.flatnonzero(winner[1:] != winner[:-1]) + 1
    first = np.concatenate(([0], change))
    last = np.concatenate((change, [n_bins]))
    kinds = winner[first]
    keep = (kinds >= 0) & (kinds != other)
    return _Runs(np.maximum(edges[first][keep], span[0]), np.minimum(edges[last][keep], span[1]), kinds[keep])


def _span(rank: RankTimeline, t0: float) -> tuple[float, float]:
    return rank.started - t0, rank.ended - t0


# ---------------------------------------------------------------------------------------------
# HTML


def _varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 of every value, vectorised (a Python loop would take minutes at 25M)."""
    values = values.astype(np.uint64)
    if not len(values):
        return b""
    sizes = np.ones(len(values), dtype=np.int64)
    for shift in range(7, 64, 7):
        sizes += values >= np.uint64(1 << shift)
    offsets = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for j in range(int(sizes.max())):
        has = sizes > j
        byte = (values[has] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (sizes[has] > j + 1).astype(np.uint64) << np.uint64(7)
        out[offsets[has] + j] = (byte | more).astype(np.uint8)
    return out.tobytes()


def _encode_runs(runs: _Runs) -> str:
    """base64 of varints (gap from the previous end, duration, kind) per run, in microseconds.

    Rounding to microseconds is monotonic, so gaps and durations stay non-negative; deltas
    keep most numbers to one or two bytes whatever the length of the job.
    """
    starts = np.rint(runs.starts * 1e6).astype(np.int64)
    ends = np.maximum(np.rint(runs.ends * 1e6).astype(np.int64), starts)
    previous_ends = np.concatenate(([0], ends[:-1]))
    triples = np.column_stack((np.maximum(starts - previous_ends, 0), ends - starts, runs.kinds)).ravel()
    return base64.b64encode(_varints(triples)).decode("ascii")


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _format_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.0f} µs"


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element whatever the host names contain."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page_data(timeline: Timeline, kinds: _Kinds, max_segments: int) -> tuple[dict[str, Any], str]:
    """The data the page's script draws from, and the note to show when rows were aggregated."""
    t0, wall = timeline.started, max(0.0, float(timeline.wall_s))
    counts = [len(rank.segments) for rank in timeline.ranks]
    total = sum(counts)
    per_row = total if total <= max_segments else max(MIN_BINS, max_segments // len(timeline.ranks))
    edges = np.linspace(0.0, wall, per_row + 1) if total > max_segments else None
    rows, aggregated, embedded = [], 0, 0
    for rank, count in zip(timeline.ranks, counts):
        runs = _raw_runs(rank, kinds, t0)
        span = _span(rank, t0)
        is_aggregated = bool(edges is not None and len(runs) > per_row and wall > 0)
        if is_aggregated:
            runs = _binned_runs(runs, span, edges, len(kinds.names), kinds.other)
            aggregated += 1
        embedded += len(runs)
        rows.append({"rank": int(rank.rank), "host": str(rank.host), "t0": round(float(span[0]), 6),
                     "t1": round(float(span[1]), 6),
                     "n": len(runs), "raw": count, "agg": is_aggregated, "d": _encode_runs(runs)})
    note = ""
    if aggregated:
        bin_s = wall / per_row
        note = (f"The recording has {total:,} segments, more than this page carries ({max_segments:,}): "
                f"{aggregated} of {len(rows)} rows were aggregated into {per_row:,} time bins of "
                f"{_format_duration(bin_s)} each, drawn in the kind that covered most of each bin. "
                f"Zooming in on those rows shows no detail finer than a bin; "
                f"the usage table is computed from all segments.")
    data = {"job": timeline.job_name, "pass": timeline.pass_number, "wall": round(wall, 6),
            "kinds": kinds.names, "colors": list(palette(kinds.names).values()), "other": kinds.other,
            "meanings": [kind_meaning(name) for name in kinds.names],
            "rows": rows, "segments": total, "embedded": embedded,
            "bin": round(wall / per_row, 9) if aggregated else None}
    return data, note


def _html_table(rows: list[RankUsage], max_kinds: int = 12) -> str:
    header, body = _table_cells(rows, max_kinds)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    lines = []
    for number, cells in enumerate(body):
        css = ' class="total"' if number == len(body) - 1 else ""
        lines.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    return f'<table id="usage"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


def _html_legend(kinds: _Kinds, total: RankUsage) -> str:
    """Each kind's swatch, name, share of rank time and, on hover and in the list below, its meaning."""
    colors = palette(kinds.names)
    items, meanings = [], []
    for name in kinds.names:
        seconds = total.seconds_by_kind.get(name, 0.0)
        share = f"{100 * seconds / total.wall_s:.1f}%" if total.wall_s > 0 else ""
        meaning = kind_meaning(name)
        items.append(f'<span class="item" title="{html.escape(f"{name}: {meaning}")}"><span class="swatch" '
                     f'style="background:{colors[name]}"></span>{html.escape(name)} '
                     f'<span class="share">{share}</span></span>')
        if not name.startswith("irods:"):
            meanings.append(f"<b>{html.escape(name)}</b>: {html.escape(meaning)}")
    if any(name.startswith("irods:") for name in kinds.names):
        meanings.append(f"<b>irods:NAME</b>: {html.escape(kind_meaning('irods:'))}")
    return (f'<div id="legend">{"".join(items)}</div>'
            f'<p class="sub" id="meanings">{"; ".join(meanings)}</p>')


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>@TITLE@</title>
<style>@CSS@</style>
</head>
<body>
<h1>@TITLE@</h1>
<p class="sub">@SUBTITLE@</p>
@NOTE@
@LEGEND@
<div id="controls"><button id="reset" type="button">Reset zoom</button>
<span id="view-range"></span>
<span class="hint">wheel over the bars: zoom &middot; drag: pan &middot; double-click: reset &middot;
hover: details</span></div>
<div id="timeline-wrap"><canvas id="timeline"></canvas><div id="tooltip" hidden></div></div>
<h2>Time per rank</h2>
<p class="sub">Seconds per kind, largest kinds first; busy = not idle or stealing.
TOTAL sums seconds over ranks and weights percentages by wall time.</p>
<div class="scroll">@TABLE@</div>
<script type="application/json" id="hpcingest-data">@DATA@</script>
<script>@JS@</script>
</body>
</html>
"""

_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 16px 20px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 22px 0 2px; }
.sub { color: #555; margin: 0 0 8px; }
.note { background: #fff6d6; border: 1px solid #e8d48a; padding: 6px 10px; margin: 8px 0; max-width: 1100px; }
#legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 8px 0; }
#legend .item { white-space: nowrap; }
#legend .swatch { display: inline-block; width: 14px; height: 14px; vertical-align: -2px; margin-right: 5px;
                  border: 1px solid rgba(0, 0, 0, .25); }
#legend .share { color: #666; }
#controls { margin: 6px 0; color: #444; }
#controls .hint { color: #777; margin-left: 12px; }
#view-range { margin-left: 10px; font-variant-numeric: tabular-nums; }
#timeline-wrap { position: relative; width: 100%; }
#timeline { display: block; cursor: crosshair; }
#timeline.dragging { cursor: grabbing; }
#tooltip { position: absolute; pointer-events: none; background: rgba(25, 25, 25, .92); color: #fff;
           padding: 5px 8px; border-radius: 4px; font-size: 12px; white-space: pre; z-index: 2; }
.scroll { overflow-x: auto; }
#usage { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
#usage th, #usage td { padding: 2px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; }
#usage th:nth-child(2), #usage td:nth-child(2) { text-align: left; }
#usage th { position: sticky; top: 0; background: #f5f5f5; white-space: nowrap; }
#usage tr.total td { font-weight: 600; border-top: 2px solid #999; }
"""

# The page's script.  Rows are decoded once; every redraw walks only the visible runs of
# each row and merges everything narrower than a device pixel into that pixel's dominant
# kind, so a redraw costs O(visible runs + pixels) and stays smooth at a million runs.
_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("hpcingest-data").textContent);
  var canvas = document.getElementById("timeline");
  var wrap = document.getElementById("timeline-wrap");
  var tip = document.getElementById("tooltip");
  var rangeLabel = document.getElementById("view-range");
  var ctx = canvas.getContext("2d");
  var NK = D.kinds.length, OTHER = D.other;
  var TOTAL = Math.max(D.wall, 1e-6), MIN_SPAN = 1e-6;
  var AXIS = 26, BOTTOM = 26, PAD_R = 14, FONT = "11px system-ui, sans-serif";

  function decodeRow(row) {
    var bin = atob(row.d), p = 0, t = 0, n = row.n;
    var starts = new Float64Array(n), ends = new Float64Array(n), kinds = new Uint16Array(n);
    function next() {
      var v = 0, mul = 1, b;
      do { b = bin.charCodeAt(p++); v += (b & 127) * mul; mul *= 128; } while (b & 128);
      return v;
    }
    for (var i = 0; i < n; i++) {
      t += next(); starts[i] = t / 1e6;
      t += next(); ends[i] = t / 1e6;
      kinds[i] = next();
    }
    return {rank: row.rank, host: row.host, t0: row.t0, t1: row.t1, agg: row.agg, raw: row.raw,
            starts: starts, ends: ends, kinds: kinds, label: "rank " + row.rank + " (" + row.host + ")"};
  }
  var rows = D.rows.map(decodeRow);
  D.rows = null;  // let the base64 strings go

  var rowH = Math.max(1, Math.min(22, Math.floor(2400 / Math.max(1, rows.length))));
  var gap = rowH >= 14 ? 2 : (rowH >= 5 ? 1 : 0);
  var labelEvery = Math.max(1, Math.ceil(13 / rowH));
  var v0 = 0, v1 = TOTAL, dpr = 1, cssW = 0, labelW = 0, plotW = 1;

  function rowBand(i) {
    var top = AXIS + i * rowH + gap;
    return [top, AXIS + (i + 1) * rowH - gap];
  }
  window.hpcingestRowBand = rowBand;

  // first index whose value is > x (ends) / >= x (starts) in a sorted array
  function firstAbove(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] > x) hi = mid; else lo = mid + 1; }
    return lo;
  }
  function firstAtLeast(a, x) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] >= x) hi = mid; else lo = mid + 1; }
    return lo;
  }

  function layout() {
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(320, wrap.clientWidth);
    ctx.font = FONT;
    var widest = 0;
    for (var i = 0; i < rows.length; i += labelEvery) widest = Math.max(widest, ctx.measureText(rows[i].label).width);
    labelW = Math.min(280, Math.max(70, Math.ceil(widest) + 14));
    plotW = Math.max(50, cssW - labelW - PAD_R);
    var cssH = AXIS + rows.length * rowH + BOTTOM;
    canvas.style.width = cssW + "px";
    canvas.style.height = cssH + "px";
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }

  function niceStep(span, pixels) {
    var raw = span / Math.max(1, pixels / 90), power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= raw) return steps[i] * power;
    return 10 * power;
  }

  function drawAxis(y, labelsAbove) {
    var step = niceStep(v1 - v0, plotW), decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    ctx.strokeStyle = "#888"; ctx.fillStyle = "#333"; ctx.lineWidth = 1;
    ctx.textAlign = "center"; ctx.textBaseline = labelsAbove ? "bottom" : "top";
    ctx.beginPath(); ctx.moveTo(labelW, y + 0.5); ctx.lineTo(labelW + plotW, y + 0.5); ctx.stroke();
    for (var t = Math.ceil(v0 / step) * step; t <= v1 + step * 1e-9; t += step) {
      var x = Math.round(labelW + (t - v0) / (v1 - v0) * plotW) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, y + (labelsAbove ? -4 : 0));
      ctx.lineTo(x, y + (labelsAbove ? 0 : 4)); ctx.stroke();
      ctx.fillText(t.toFixed(decimals), x, y + (labelsAbove ? -5 : 5));
    }
    ctx.textAlign = "right";
    ctx.fillText("seconds", labelW - 22, y + (labelsAbove ? -5 : 5));  // clear of the centred first tick
  }

  function drawGrid(top, bottom) {
    var step = niceStep(v1 - v0, plotW);
    ctx.strokeStyle = "#eee"; ctx.lineWidth = 1; ctx.beginPath();
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      var x = Math.round(labelW + (t - v0) / (v1 - v0) * plotW) + 0.5;
      ctx.moveTo(x, top); ctx.lineTo(x, bottom);
    }
    ctx.stroke();
  }

  // rects[k]: flat [x, y, w, h, ...] in device pixels, merged when adjacent
  var weights = new Float64Array(NK), touched = [];
  function pushRect(rects, k, x, y, w, h) {
    var r = rects[k], n = r.length;
    if (n && r[n - 3] === y && r[n - 4] + r[n - 2] === x) { r[n - 2] += w; return; }
    r.push(x, y, w, h);
  }

  function drawRow(row, y, h, px0, pw, scale, rects) {
    var s = row.starts, e = row.ends, kinds = row.kinds, n = s.length;
    var spanA = (row.t0 - v0) * scale, spanB = (row.t1 - v0) * scale;
    var col = -1;
    function flush() {
      if (col < 0) return;
      var best = -1, bestW = 0, covered = 0;
      for (var j = 0; j < touched.length; j++) {
        var k = touched[j], w = weights[k];
        covered += w;
        if (w > bestW) { bestW = w; best = k; }
        weights[k] = 0;
      }
      touched.length = 0;
      var inSpan = Math.max(0, Math.min(col + 1, spanB) - Math.max(col, spanA));
      if (best >= 0 && bestW >= inSpan - covered) pushRect(rects, best, px0 + col, y, 1, h);
      col = -1;
    }
    function add(k, w) {
      if (weights[k] === 0) touched.push(k);
      weights[k] += w;
    }
    for (var i = firstAbove(e, v0); i < n; i++) {
      var x0 = (s[i] - v0) * scale;
      if (x0 >= pw) break;
      var x1 = (e[i] - v0) * scale, k = kinds[i];
      if (x0 < 0) x0 = 0;
      if (x1 > pw) x1 = pw;
      if (!(x1 > x0)) continue;
      var c0 = Math.floor(x0), c1 = Math.floor(x1);
      if (c0 !== col) { flush(); col = c0; }
      if (c0 === c1) { add(k, x1 - x0); continue; }
      add(k, c0 + 1 - x0);
      flush();
      if (c1 > c0 + 1) pushRect(rects, k, px0 + c0 + 1, y, c1 - c0 - 1, h);
      if (x1 > c1) { col = c1; add(k, x1 - c1); }
    }
    flush();
  }

  function draw() {
    var bottomY = AXIS + rows.length * rowH;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = FONT;
    drawGrid(AXIS, bottomY);
    drawAxis(AXIS - 2, true);
    if (rows.length * rowH > 500) drawAxis(bottomY + 2, false);
    ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.fillStyle = "#222";
    for (var i = 0; i < rows.length; i += labelEvery) {
      var band = rowBand(i);
      ctx.fillText(rows[i].label, labelW - 8, (band[0] + band[1]) / 2);
    }
    // bars in device pixels: one column per device pixel
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    var px0 = Math.round(labelW * dpr), pw = Math.round(plotW * dpr), scale = pw / (v1 - v0);
    var rects = [];
    for (var k = 0; k < NK; k++) rects.push([]);
    ctx.fillStyle = D.colors[OTHER];
    for (i = 0; i < rows.length; i++) {
      var b = rowBand(i), y = Math.round(b[0] * dpr), h = Math.round(b[1] * dpr) - y;
      var a = Math.max(0, (rows[i].t0 - v0) * scale), z = Math.min(pw, (rows[i].t1 - v0) * scale);
      if (z > a) ctx.fillRect(px0 + Math.round(a), y, Math.max(1, Math.round(z) - Math.round(a)), h);
      drawRow(rows[i], y, h, px0, pw, scale, rects);
    }
    for (k = 0; k < NK; k++) {
      var r = rects[k];
      if (!r.length) continue;
      ctx.fillStyle = D.colors[k];
      ctx.beginPath();
      for (var j = 0; j < r.length; j += 4) ctx.rect(r[j], r[j + 1], r[j + 2], r[j + 3]);
      ctx.fill();
    }
    rangeLabel.textContent = "view " + v0.toFixed(6) + " s \u2013 " + v1.toFixed(6) + " s (" + fmtDur(v1 - v0) + ")";
    document.body.dataset.rows = String(rows.length);
    document.body.dataset.rendered = "1";
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  }

  function fmtDur(s) {
    if (s >= 1) return s.toFixed(3) + " s";
    if (s >= 1e-3) return (s * 1e3).toFixed(3) + " ms";
    return (s * 1e6).toFixed(0) + " \u00b5s";
  }

  function setView(a, b) {
    var span = Math.min(TOTAL, Math.max(MIN_SPAN, b - a));
    if (a < 0) a = 0;
    if (a + span > TOTAL) a = TOTAL - span;
    v0 = a; v1 = a + span;
    schedule();
  }

  function pointer(ev) {
    var box = canvas.getBoundingClientRect();
    return {x: ev.clientX - box.left, y: ev.clientY - box.top};
  }
  function timeAt(x) { return v0 + (x - labelW) / plotW * (v1 - v0); }

  canvas.addEventListener("wheel", function (ev) {
    var p = pointer(ev);
    if (p.x < labelW) return;  // over the labels the page scrolls as usual
    ev.preventDefault();
    var delta = ev.deltaY * (ev.deltaMode === 1 ? 16 : (ev.deltaMode === 2 ? 400 : 1));
    var factor = Math.exp(delta * 0.002), t = timeAt(p.x);
    var span = Math.min(TOTAL, Math.max(MIN_SPAN, (v1 - v0) * factor));
    setView(t - (t - v0) / (v1 - v0) * span, t - (t - v0) / (v1 - v0) * span + span);
  }, {passive: false});

  var drag = null;
  canvas.addEventListener("mousedown", function (ev) {
    var p = pointer(ev);
    if (ev.button !== 0 || p.x < labelW) return;
    drag = {x: p.x, v0: v0, v1: v1};
    canvas.classList.add("dragging");
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var dt = (pointer(ev).x - drag.x) / plotW * (drag.v1 - drag.v0);
    setView(drag.v0 - dt, drag.v1 - dt);
  });
  window.addEventListener("mouseup", function () { drag = null; canvas.classList.remove("dragging"); });
  canvas.addEventListener("dblclick", function () { setView(0, TOTAL); });
  document.getElementById("reset").addEventListener("click", function () { setView(0, TOTAL); });

  canvas.addEventListener("mousemove", function (ev) {
    var p = pointer(ev), i = Math.floor((p.y - AXIS) / rowH);
    if (drag || p.x < labelW || p.x > labelW + plotW || i < 0 || i >= rows.length) { tip.hidden = true; return; }
    var row = rows[i], t = timeAt(p.x), lines = [row.label];
    var j = firstAbove(row.starts, t) - 1;
    if (j >= 0 && row.ends[j] > t) {
      lines.push(D.kinds[row.kinds[j]] + (row.agg ? " (dominant in these bins)" : ""));
      lines.push("start " + row.starts[j].toFixed(6) + " s, duration " + fmtDur(row.ends[j] - row.starts[j]));
    } else if (t >= row.t0 && t <= row.t1) {
      lines.push(D.kinds[OTHER] + " (no recorded activity)");
    } else {
      lines.push("not recording");
    }
    var tA = timeAt(Math.floor(p.x)), tB = timeAt(Math.floor(p.x) + 1);
    var inPixel = firstAtLeast(row.starts, tB) - firstAbove(row.ends, tA);
    if (inPixel > 1) lines.push(inPixel + " pieces in this pixel; the colour is the one covering most of it");
    lines.push("at " + t.toFixed(6) + " s");
    tip.textContent = lines.join("\n");
    tip.hidden = false;
    var left = p.x + 14, top = p.y + 14;
    if (left + tip.offsetWidth > cssW) left = Math.max(0, p.x - tip.offsetWidth - 10);
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  window.addEventListener("resize", function () { layout(); schedule(); });

  layout();
  draw();
})();
"""


def render_html(timeline: Timeline, path: str | os.PathLike, max_segments: int = MAX_EMBEDDED_SEGMENTS,
                mode: int = 0o666) -> None:
    """Write one self-contained HTML page (inline CSS, JS and data; no network) for timeline.

    At most about max_segments drawable pieces are embedded; past that, the rows with the
    most segments are aggregated into time bins and the page says so (see _page_data).
    The page replaces a regular file at ``path`` through a new file beside it
    (hpcingest.outputs.replace_file): opening ``path`` itself wrote through a link planted
    there, over its target; anything else there is refused (FileExistsError).
    """
    kinds = _Kinds.of(timeline)
    rows = usage_table(timeline)
    total = _total(rows)
    data, note = _page_data(timeline, kinds, max_segments)
    title = f"hpcingest profile: job {timeline.job_name}, pass {timeline.pass_number}"
    subtitle = (f"{len(timeline.ranks)} ranks, wall {_format_duration(max(0.0, timeline.wall_s))}, "
                f"started {_utc(timeline.started)}, {data['segments']:,} segments; "
                f"busy {100 * total.busy_fraction:.1f}% of rank time")
    replacements = {
        "@TITLE@": html.escape(title), "@SUBTITLE@": html.escape(subtitle),
        "@NOTE@": f'<p class="note" id="aggregated">{html.escape(note)}</p>' if note else "",
        "@LEGEND@": _html_legend(kinds, total), "@TABLE@": _html_table(rows),
        "@CSS@": _CSS, "@JS@": _JS, "@DATA@": _script_json(data),
    }
    # one pass, so a job or host name containing a marker is never expanded
    page = re.sub(r"@[A-Z]+@", lambda match: replacements[match.group(0)], _PAGE)
    replace_file(os.fspath(path), page.encode("utf-8"), mode)


# ---------------------------------------------------------------------------------------------
# PNG

_PNG_WIDTH_PX = 1600
_PNG_DPI = 100
_PNG_MAX_PLOT_PX = 3600


@dataclass
class _PngLayout:
    """Pixel geometry of the PNG, decided before plotting so bins can match pixel columns."""

    left: int
    right: int
    top: int
    bottom: int
    plot_height: int
    legend_columns: int

    @property
    def height(self) -> int:
        return self.top + self.plot_height + self.bottom

    @property
    def plot_width(self) -> int:
        return _PNG_WIDTH_PX - self.left - self.right

    @classmethod
    def of(cls, labels: Iterable[str], n_rows: int, n_kinds: int) -> "_PngLayout":
        row_px = min(40.0, max(3.0, 2400 / max(1, n_rows)))
        columns = min(n_kinds, 3)  # entries say what each kind is: long labels
        legend_lines = math.ceil(n_kinds / max(1, columns))
        widest = max((len(label) for label in labels), default=10)
        return cls(left=int(min(320, max(110, 6.2 * widest + 24))), right=24, top=64,
                   bottom=58 + 22 * legend_lines, plot_height=int(min(_PNG_MAX_PLOT_PX, n_rows * row_px)),
                   legend_columns=columns)


class PlotUnavailable(Exception):
    """matplotlib is not installed (it is the extra hpcingest[plot]: 100 MB nobody needs on every node)."""


def render_png(timeline: Timeline, path: str | os.PathLike) -> None:
    """Write a PNG of timeline: one bar per rank, 1600 px wide, height growing with ranks (capped).

    Each row is aggregated into one bin per pixel column first, so 25M segments cost a few
    hundred thousand rectangles, and the picture matches what the HTML page shows.  Drawn in
    memory and written as render_html writes (never through a link at ``path``).
    """
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("the PNG needs matplotlib, an extra: pip install 'hpcingest[plot]' "
                              "(the HTML timeline and the usage table need nothing more)") from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    kinds = _Kinds.of(timeline)
    n = len(timeline.ranks)
    labels = [f"rank {rank.rank} ({rank.host})" for rank in timeline.ranks]
    layout = _PngLayout.of(labels, n, len(kinds.names))
    width, height = _PNG_WIDTH_PX, layout.height
    figure = Figure(figsize=(width / _PNG_DPI, height / _PNG_DPI), dpi=_PNG_DPI)
    axes = figure.add_axes((layout.left / width, layout.bottom / height,
                            layout.plot_width / width, layout.plot_height / height))
    wall = max(timeline.wall_s, 1e-6)
    edges = np.linspace(0.0, wall, layout.plot_width + 1)
    colors = np.array(list(palette(kinds.names).values()))
    margin = 0.1 if layout.plot_height / max(1, n) >= 6 else 0.0
    for y, rank in enumerate(timeline.ranks):
        span = _span(rank, timeline.started)
        runs = _binned_runs(_raw_runs(rank, kinds, timeline.started), span, edges, len(kinds.names), kinds.other)
        bars = np.column_stack((np.concatenate(([span[0]], runs.starts)),
                                np.concatenate(([span[1] - span[0]], runs.ends - runs.starts))))
        axes.broken_barh(bars, (y + margin, 1 - 2 * margin),
                         facecolors=np.concatenate(([colors[kinds.other]], colors[runs.kinds])),
                         linewidth=0, antialiased=False)
    axes.set_xlim(0, wall)
    axes.set_ylim(n, 0)
    every = max(1, math.ceil(12 / (layout.plot_height / max(1, n))))
    ticks = list(range(0, n, every))
    axes.set_yticks([y + 0.5 for y in ticks], [labels[y] for y in ticks], fontsize=8)
    axes.tick_params(axis="y", length=0)
    axes.set_xlabel("seconds since the first rank started"
                    + ("; irods:NAME is one iRODS API request, from sending it to its reply"
                       if any(name.startswith("irods:") for name in kinds.names) else ""))
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    total = _total(usage_table(timeline))
    figure.suptitle(f"hpcingest profile: job {timeline.job_name}, pass {timeline.pass_number}\n"
                    f"{n} ranks, wall {_format_duration(max(0.0, timeline.wall_s))}, started {_utc(timeline.started)}, "
                    f"busy {100 * total.busy_fraction:.1f}% of rank time",
                    y=1 - 6 / height, va="top", fontsize=11)
    handles = [Patch(facecolor=colors[kinds.names.index(name)], edgecolor="#00000040", label=_legend_label(name))
               for name in kinds.names]
    figure.legend(handles=handles, loc="lower center", ncol=layout.legend_columns, frameon=False, fontsize=8.5,
                  bbox_to_anchor=(0.5, 4 / height))
    picture = io.BytesIO()
    figure.savefig(picture, dpi=_PNG_DPI, format="png")
    replace_file(os.fspath(path), picture.getvalue())


def _legend_label(kind: str) -> str:
    """A PNG legend entry: the kind and what it is (iRODS requests say it once, the first time)."""
    if kind.startswith("irods:"):
        return kind
    return f"{kind}: {kind_meaning(kind)}"
