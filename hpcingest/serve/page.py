"""The status page at ``/`` and the token form a browser gets instead while it has no session.

One self-contained page (inline CSS and script under a per-response nonce, nothing fetched
from elsewhere) that asks ``GET /job`` every two seconds and redraws: every job with its state,
a progress bar, rate, counts, failures and links to the failure report and the timeline.
Every name is put into the page as text (``textContent``), never as markup.
"""

from __future__ import annotations

import html
import re

POLL_MS = 2000

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2733; background: #f6f7f9; }
h1 { font-size: 20px; margin: 0 0 .2em; }
#meta { color: #5b6673; margin-bottom: 1em; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { padding: .45em .6em; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: middle; }
th { background: #eef1f4; font-weight: 600; }
td:first-child { white-space: nowrap; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.state { display: inline-block; padding: .1em .55em; border-radius: 1em; color: #fff; font-size: 12px; }
.pending { background: #8a6d00; } .running { background: #1f6feb; } .done { background: #1a7f37; }
.failed { background: #cf222e; } .stopped { background: #57606a; }
.bar { position: relative; width: 220px; height: 16px; background: #e3e6ea; border-radius: 3px; overflow: hidden; }
.fill { position: absolute; left: 0; top: 0; bottom: 0; background: #1f6feb; }
.fill.done { background: #1a7f37; } .fill.failed { background: #cf222e; } .fill.stopped { background: #8c959f; }
.fill.unknown { width: 30%; animation: slide 1.4s linear infinite; opacity: .6; }
@keyframes slide { from { left: -30%; } to { left: 100%; } }
.bartext { font-size: 12px; color: #5b6673; }
.reason { font-size: 12px; color: #5b6673; max-width: 28em; }
.path { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; max-width: 24em; }
#empty { padding: 1em; color: #5b6673; }
form { background: #fff; padding: 1.5em; max-width: 28em; box-shadow: 0 1px 2px #0002; }
input[type=password] { width: 100%; padding: .4em; margin: .5em 0 1em; }
"""

_SCRIPT = """
(function () {
  "use strict";
  const columns = ["Job", "State", "Pass", "Progress", "Rate", "Created", "Updated", "Unchanged",
                   "Too young", "Failures", "Timeline", "Source \\u2192 target"];
  const number = (n) => (n || 0).toLocaleString("en-US");
  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== undefined && text !== null) td.textContent = String(text);
    row.appendChild(td);
    return td;
  }
  function link(td, href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  }
  function progressCell(row, job) {
    const td = cell(row), p = job.progress || {};
    const bar = document.createElement("div"), fill = document.createElement("div");
    bar.className = "bar";
    fill.className = "fill";
    let text = number(p.entries) + " entries";
    if (p.percent !== null && p.percent !== undefined) {
      fill.style.width = p.percent + "%";
      if (job.state !== "running" && job.state !== "pending") fill.classList.add(job.state);
      text = number(p.entries) + " / " + number(p.total) + " (" + p.percent.toFixed(1) + "%)";
    } else if (job.state === "running") {
      fill.classList.add("unknown");
    } else {
      fill.style.width = "0";
    }
    bar.appendChild(fill);
    td.appendChild(bar);
    const label = document.createElement("div");
    label.className = "bartext";
    label.textContent = text;
    td.appendChild(label);
    td.dataset.percent = p.percent === null || p.percent === undefined ? "" : String(p.percent);
  }
  function render(jobs) {
    const body = document.getElementById("jobs");
    body.replaceChildren();
    for (const job of jobs) {
      const row = document.createElement("tr"), p = job.progress || {};
      row.dataset.job = job.job_name;
      row.dataset.state = job.state;
      cell(row, job.job_name);
      const state = cell(row);
      const badge = document.createElement("span");
      badge.className = "state " + job.state;
      badge.textContent = job.state;
      state.appendChild(badge);
      if (job.reason) {
        const why = document.createElement("div");
        why.className = "reason";
        why.textContent = job.reason;
        state.appendChild(why);
      }
      cell(row, job.pass, "num");
      progressCell(row, job);
      cell(row, job.state === "running" && !job.waiting ? number(Math.round(p.rate || 0)) + "/s" : "\\u2014", "num");
      cell(row, number(p.created), "num");
      cell(row, number(p.updated), "num");
      cell(row, number(p.unchanged), "num");
      cell(row, number(p.too_young), "num");
      const failures = cell(row, null, "num");
      link(failures, "job/" + encodeURIComponent(job.job_name) + "/failures", number(job.failures));
      const timeline = cell(row);
      if (job.profile) link(timeline, "job/" + encodeURIComponent(job.job_name) + "/profile", "timeline");
      else timeline.textContent = "\\u2014";
      cell(row, job.source ? job.source + " \\u2192 " + job.target : "", "path");
      body.appendChild(row);
    }
    document.getElementById("empty").hidden = jobs.length > 0;
    const updates = Number(document.body.dataset.updates || "0") + 1;
    document.body.dataset.updates = String(updates);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.rendered = "1";
  }
  async function poll() {
    try {
      const response = await fetch("job", {credentials: "same-origin", cache: "no-store"});
      if (response.status === 401) { window.location.reload(); return; }
      if (response.ok) render(await response.json());
    } catch (err) {
      document.getElementById("updated").textContent = "unreachable (" + err + ")";
    }
    window.setTimeout(poll, @POLL@);
  }
  const head = document.getElementById("head");
  for (const name of columns) {
    const th = document.createElement("th");
    th.textContent = name;
    head.appendChild(th);
  }
  poll();
})();
"""

_STATUS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpcingest jobs</title>
<style nonce="@NONCE@">@STYLE@</style></head>
<body>
<h1>hpcingest jobs</h1>
<div id="meta">@LAUNCHER@ &middot; job directory <span class="path">@JOBROOT@</span> &middot; updated
<span id="updated">&mdash;</span> &middot; <a href="metrics">metrics</a></div>
<table><thead><tr id="head"></tr></thead><tbody id="jobs"></tbody></table>
<div id="empty" hidden>No jobs yet: <code>curl -X PUT -H "Authorization: Bearer $TOKEN" --data-binary @job.yaml
.../job/NAME</code></div>
<script nonce="@NONCE@">@SCRIPT@</script>
</body></html>
"""

_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpcingest: token</title>
<style nonce="@NONCE@">@STYLE@</style></head>
<body data-rendered="1">
<h1>hpcingest jobs</h1>
<form method="post" action="login">
<p>@MESSAGE@</p>
<label for="token">Token (the first line of the service's token file)</label>
<input type="password" id="token" name="token" autocomplete="current-password" autofocus>
<button type="submit">Show jobs</button>
</form>
</body></html>
"""


def _fill(template: str, values: dict[str, str]) -> str:
    """One pass, so a value holding a marker (a job root named @SCRIPT@) is never expanded."""
    return re.sub(r"@([A-Z]+)@", lambda match: values[match.group(1)], template)


def status_page(nonce: str, launcher: str, job_root: str) -> str:
    script = _SCRIPT.replace("@POLL@", str(POLL_MS))
    return _fill(_STATUS_PAGE, {"NONCE": nonce, "STYLE": _STYLE, "SCRIPT": script,
                                "LAUNCHER": html.escape(f"launcher {launcher}"), "JOBROOT": html.escape(job_root)})


def login_page(nonce: str, wrong: bool = False) -> str:
    message = ("That is not the token." if wrong else
               "This service needs its token: programs send <code>Authorization: Bearer &lt;token&gt;</code>.")
    return _fill(_LOGIN_PAGE, {"NONCE": nonce, "STYLE": _STYLE, "MESSAGE": message})
