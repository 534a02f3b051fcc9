"""The per-rank progress reports of real passes: whose reports count, and the walk's own counts."""

from __future__ import annotations

import json
import os
import subprocess

from hpcingest import sample
from hpcingest.ingest.monitor import read_rank_progress, sum_progress
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
