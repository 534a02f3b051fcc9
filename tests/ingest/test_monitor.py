"""The per-rank progress reports of real passes: whose reports count, and the walk's own counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from hpcingest import sample
from hpcingest.ingest.monitor import Progress, job_stall, read_rank_progress, sum_progress
from hpcingest.zone.testing import environment_zone, start_zone
from tests.launchers import Launcher, hpcingest_argv


def start(zone, tree, target, jobs, ranks, *extra) -> subprocess.CompletedProcess:
    result = subprocess.run(Launcher("mpiexec", ranks).command(hpcingest_argv(
        "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "m", "--synchronous", *extra)),
        capture_output=True, text=True, env={**os.environ, **zone.environ()}, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_a_narrower_rerun_shows_only_its_own_ranks(zone, tmp_path):
    """After a 4-rank pass, a 1-rank pass: the reports the wider pass left are not summed in."""
    tree = tmp_path / "tree"
    sample.generate(tree, files=400, seed=7, max_file_size=16)
    target, jobs = f"{zone.home}/narrower{os.getpid()}", tmp_path / "jobs"
    start(zone, tree, target, jobs, 4)
    with open(jobs / "m" / "summary.json") as f:
        entries = json.load(f)["entries"]
    lines = start(zone, tree, target, jobs, 1, "--progress").stdout.splitlines()
    last = [line for line in lines if line.startswith("pass 2")][-1]
    assert f"  {entries:,} entries" in last and "  1 ranks" in last, last


def test_the_walk_counts_balance_when_a_pass_ends(zone, tmp_path):
    """Every directory found was listed, every batch made was statted, and the entries walked
    are the pass's entries: what the display relies on to know a first pass's total."""
    tree = tmp_path / "tree"
    sample.generate(tree, files=600, seed=8, max_file_size=16)
    jobs = tmp_path / "jobs"
    start(zone, tree, f"{zone.home}/walk{os.getpid()}", jobs, 4, "--files_per_task", "7")
    reports = read_rank_progress(str(jobs / "m"))
    total = sum_progress(reports)
    with open(jobs / "m" / "summary.json") as f:
        summary = json.load(f)
    assert len(reports) == 4 and total.done
    assert total.walk.balanced(), total.walk
    assert total.walk.entries == total.entries == summary["entries"]
    assert total.walk.directories_found == summary["entries_by_type"]["directory"]


def _listed(jobs) -> dict:
    """The job as `list` shows it ({} before it is recorded)."""
    out = subprocess.run(hpcingest_argv("list", "--job_dir", str(jobs)), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return next(iter(json.loads(out.stdout)["singlepass"]), {})


def _poll(condition, what: str, tries: int = 600):
    """Poll every 0.2 s; the bound only keeps a broken run from hanging the suite."""
    for _ in range(tries):
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}")


def test_a_job_that_makes_no_progress_says_so_with_what_its_ranks_wait_for(tmp_path):
    """A job against real iRODS "did not finish in 600 s, no failure recorded, every rank's
    heartbeat fresh": nothing said it was stuck, nor on what.  Here the zone goes away in the
    middle of a pass; once no rank has made progress for --stall_after seconds, `list`, `watch`
    and the log (job_stalled, once) say so and that the ranks are retrying iRODS; when the zone
    is back the pass finishes and the log says progress resumed."""
    if environment_zone() is not None:
        pytest.skip("stops and restarts the zone (the built-in one)")
    root = tmp_path / "zone"
    zone = start_zone(root, subprocess_mode=True, service_ms=8.0)
    tree, jobs, log = tmp_path / "tree", tmp_path / "jobs", tmp_path / "ingest.log"
    sample.generate(tree, files=3000, seed=10, max_file_size=16)
    command = Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(tree), f"{zone.home}/stalls", "--job_dir", str(jobs), "--job_name", "s", "--synchronous",
        "--stall_after", "2", "--log_filename", str(log)))
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, **zone.environ()}, start_new_session=True)
    back = None
    try:
        _poll(lambda: job.poll() is None and _listed(jobs).get("files", 0) > 0, "progress")
        port = zone.port
        zone.stop()
        stalled = _poll(lambda: (lambda info: info if info["stalled_s"] is not None else None)(_listed(jobs)),
                        "the job listed as stalled")
        assert stalled["status"] == "running" and stalled["stalled_s"] >= 2
        assert any("ranks" in w or "rank:" in w for w in stalled["waiting_for"])
        assert any("retrying" in w and f":{port}" in w for w in stalled["waiting_for"]), stalled["waiting_for"]
        watcher = subprocess.Popen(hpcingest_argv("watch", "s", "--job_dir", str(jobs), "--interval", "0.2"),
                                   stdout=subprocess.PIPE, text=True)
        first = watcher.stdout.readline()
        watcher.terminate()
        watcher.wait()
        assert "STALLED: no progress for" in first and "retrying" in first, first
        back = start_zone(root, subprocess_mode=True, port=port, service_ms=8.0)
        out, err = job.communicate(timeout=600)
        assert job.returncode == 0, err[-3000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        zone.stop()
        if back is not None:
            back.stop()
    events = [json.loads(line) for line in open(f"{log}.rank0") if line.startswith("{")]
    stalls = [e for e in events if e["event"] == "job_stalled"]
    assert len(stalls) == 1 and any("retrying" in w for w in stalls[0]["waiting_for"]), stalls
    assert [e for e in events if e["event"] == "job_progressing"]


def test_a_stall_is_counted_from_the_last_progress_of_any_rank_and_groups_what_ranks_wait_for():
    now = 1000.0
    reports = {0: Progress(time=now, last_change=700.0, waiting_for="iRODS PHY_PATH_REG_AN", waiting_since=650.0),
               1: Progress(time=now, last_change=640.0, waiting_for="iRODS PHY_PATH_REG_AN", waiting_since=600.0),
               2: Progress(time=now, last_change=690.0),
               3: Progress(time=now, last_change=100.0, done=True)}
    stall = job_stall(reports, now)
    assert stall.seconds == 300.0  # the newest change of any rank, 700
    assert stall.waiting_for == ["2 ranks: iRODS PHY_PATH_REG_AN (for 400 s)",
                                 "1 rank: nothing outside themselves (working, or out of work)"]
    assert job_stall({3: reports[3]}, now) is None  # every rank is done: nothing stalls
