"""The progress display: rate, percentage and ETA from the ranks' reports, and bytes registered.

The first tests write per-rank reports as the ranks do (one every 2 s of report time) and
read them with the display in between, as `watch` does on a terminal; the others watch real
jobs.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess

from hpcingest import sample
from hpcingest.ingest.display import ProgressDisplay
from hpcingest.ingest.monitor import progress_dir
from hpcingest.jobdir import JobDirectory, JobRecord, write_private
from tests.launchers import Launcher, hpcingest_argv

TOKEN = "a" * 32


def job_directory(tmp_path, last_pass_entries=None) -> JobDirectory:
    job = JobDirectory(str(tmp_path / "jobs"), "shown")
    job.create()
    job.save(JobRecord(job_name="shown", source="/src", target="/t", options={}, status="running",
                       pass_number=2, last_pass_entries=last_pass_entries))
    os.makedirs(progress_dir(job.path), exist_ok=True)
    return job


def report(job: JobDirectory, rank: int, at: float, entries: int, **more) -> None:
    """A rank's report file: the counts a report always had, and ``more`` (tag, walk counts)."""
    fields = {"entries": entries, "time": at, "pass_number": 2, "pass_start": 1000.0, "done": False, **more}
    write_private(os.path.join(progress_dir(job.path), f"rank{rank:05d}.json"), json.dumps(fields))


def walk(listed=0, found=0, made=0, statted=0, entries=0) -> dict:
    return {"pass_token": TOKEN, "ranks": 2, "walk": {
        "directories_listed": listed, "directories_found": found, "batches_made": made,
        "batches_statted": statted, "entries": entries}}


def shown(display: ProgressDisplay) -> str:
    display.show_once()
    return display.out.getvalue().splitlines()[-1]


def test_rate_and_eta_hold_steady_between_report_rewrites(tmp_path):
    """Reports every 2 s, redraws every 1 s: the rate is the ranks' 500 entries/s each every
    time (not 0, then twice that), and the ETA is on every line and only goes down."""
    job = job_directory(tmp_path, last_pass_entries=40_000)
    display = ProgressDisplay(job, out=io.StringIO(), period_s=1.0)
    lines = []
    for step in range(12):
        at = 1000.0 + 2 * step
        for rank in (0, 1):
            report(job, rank, at + 0.3 * rank, int(500 * (at + 0.3 * rank - 1000)))
        lines += [shown(display), shown(display)]  # two redraws per rewrite
    rates = [float(re.search(r"([\d,]+) entries/s", line).group(1).replace(",", "")) for line in lines[2:]]
    assert all(950 <= rate <= 1050 for rate in rates), rates
    etas = [int(re.search(r"ETA ([\d,]+) s", line).group(1).replace(",", "")) for line in lines]
    assert etas == sorted(etas, reverse=True), lines


def test_reports_of_an_earlier_pass_or_wider_run_are_left_out(tmp_path):
    job = job_directory(tmp_path)
    report(job, 0, 1010.0, 60_000, pass_token="b" * 32, ranks=2, done=True)
    report(job, 1, 1010.0, 50_000, pass_token="b" * 32, ranks=2, done=True)
    report(job, 0, 1020.0, 1_000, pass_token=TOKEN, ranks=1)
    report(job, 1, 1019.0, 7_000, pass_token=TOKEN, ranks=2)  # left by a wider run of this pass
    line = shown(ProgressDisplay(job, out=io.StringIO()))
    assert "1,000 entries" in line and "1 ranks" in line, line


def test_a_first_pass_shows_percentage_and_eta_once_the_walk_is_over(tmp_path):
    job = job_directory(tmp_path)  # a first pass: no earlier pass to compare with
    display = ProgressDisplay(job, out=io.StringIO())
    report(job, 0, 1010.0, 100, **walk(listed=1, found=2, made=4, statted=3, entries=150))
    report(job, 1, 1010.0, 100, **walk(listed=1, made=3, statted=2, entries=100))
    assert "%" not in shown(display)  # still walking
    over = walk(listed=3, found=2, made=10, statted=10, entries=600)
    report(job, 0, 1012.0, 150, **over)
    report(job, 1, 1012.0, 150, **walk())
    assert "%" not in shown(display)  # balanced on one reading only: a report may be late
    report(job, 0, 1014.0, 150, **over)
    report(job, 1, 1014.0, 150, **walk())
    line = shown(display)
    assert "50.0%" in line and re.search(r"ETA \d", line), line  # 300 of the 600 entries walked
    report(job, 0, 1016.0, 200, **over)
    report(job, 1, 1016.0, 200, **walk())
    line = shown(display)
    assert "66.7%" in line and re.search(r"ETA \d", line), line  # known once, the total stays


def test_counts_that_balance_on_stale_reports_are_not_the_end_of_the_walk(tmp_path):
    """One rank's report predates work another rank already reported: the sums balance on that
    reading, and the next reading, every report rewritten, shows more to walk."""
    job = job_directory(tmp_path)
    display = ProgressDisplay(job, out=io.StringIO())
    report(job, 0, 1010.0, 50, **walk(listed=1, made=1, statted=1, entries=50))
    report(job, 1, 1011.0, 0, **walk(listed=1, found=1))
    assert "%" not in shown(display)
    report(job, 0, 1012.0, 80, **walk(listed=1, found=1, made=3, statted=2, entries=80))
    report(job, 1, 1013.0, 0, **walk(listed=1, found=1))
    assert "%" not in shown(display)


# -- real jobs --------------------------------------------------------------------------------
def progress_lines(zone, tree, tmp_path, name) -> list[str]:
    """`start --progress` of a first pass with 2 ranks: its progress lines."""
    result = subprocess.run(Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(tree), f"{zone.home}/{name}{os.getpid()}", "--job_dir", str(tmp_path / "jobs"),
        "--job_name", name, "--synchronous", "--progress")), capture_output=True, text=True,
        env={**os.environ, **zone.environ()}, timeout=300)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("pass 1")]


def test_a_first_pass_shows_its_percentage_from_the_walk(zone, tmp_path):
    """No earlier pass to compare with: the total comes from the walk's own counts."""
    tree = tmp_path / "tree"
    sample.generate(tree, files=300, seed=5, max_file_size=16)
    line = progress_lines(zone, tree, tmp_path, "first")[-1]
    assert "100.0%" in line, line


def test_a_register_pass_shows_the_bytes_it_registered(zone, tmp_path):
    tree = tmp_path / "big"
    tree.mkdir()
    for name in ("a", "b", "c"):
        with open(tree / name, "wb") as f:
            f.truncate(2**20)  # sparse: registering never reads it
    line = progress_lines(zone, tree, tmp_path, "bytes")[-1]
    assert "3.0 MiB registered" in line and "0.0 MiB" not in line, line
