"""Landing zones (--min_age): a periodic job never takes a file that is still being written."""

from __future__ import annotations

import json
import os
import subprocess

from hpcingest.ingest.decide import too_young
from tests.ingest.conftest import HANDLERS
from tests.landing_zone import Writer, check_landed_once, landed, pass_summaries, wait_for, write_through_passes
from tests.launchers import Launcher, hpcingest_argv


def test_too_young_is_measured_from_the_last_change():
    assert too_young(ctime=100.0, now=104.0, min_age=5)
    assert not too_young(ctime=100.0, now=105.0, min_age=5)
    assert not too_young(ctime=100.0, now=100.0, min_age=None) and not too_young(100.0, 100.0, 0)


def test_a_file_written_for_longer_than_an_interval_lands_once_complete(zone, tmp_path):
    src, jobs, log = tmp_path / "landing", tmp_path / "jobs", tmp_path / "hooks"
    src.mkdir()
    (src / "earlier.dat").write_bytes(b"written before the job")
    os.utime(src / "earlier.dat", (1, 1))  # an old mtime does not make a file old: its ctime is now
    growing = str(src / "growing.dat")
    target, interval = f"{zone.home}/landing{os.getpid()}", 2
    job = subprocess.Popen(Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(src), target, "--job_dir", str(jobs), "--job_name", "lz", "--interval", str(interval),
        "--min_age", "5", "--checksum", "--event_handler", os.path.join(HANDLERS, "counting.py"))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **zone.environ(), "HOOK_LOG": str(log), "OPERATION": "PUT_SYNC"})
    try:
        write_through_passes(Writer(growing), str(jobs / "lz"), interval)
        wait_for(lambda: landed(zone, f"{target}/growing.dat", growing), "the complete file in the catalog")
        passes = len(pass_summaries(str(jobs / "lz")))
        wait_for(lambda: len(pass_summaries(str(jobs / "lz"))) > passes + 1, "two more passes")
        stop = subprocess.run(hpcingest_argv("stop", "lz", "--job_dir", str(jobs)), capture_output=True, timeout=300)
        assert stop.returncode == 0, stop.stderr
        out, err = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, err.decode(errors="replace")
    check_landed_once(zone, f"{target}/growing.dat", growing, str(log), str(jobs / "lz"))
    check_landed_once(zone, f"{target}/earlier.dat", str(src / "earlier.dat"), str(log), str(jobs / "lz"))
    assert b"too young (left for a later pass)" in out


def test_an_old_mtime_does_not_make_a_fresh_file_old(zone, tmp_path):
    """A writer that sets an old mtime (touch -d, cp -p, rsync -t) while the file is still being
    written: the file's ctime says it just changed, so it waits."""
    src, jobs = tmp_path / "landing", tmp_path / "jobs"
    src.mkdir()
    (src / "backdated.dat").write_bytes(b"still being written")
    os.utime(src / "backdated.dat", (86400, 86400))  # 2 January 1970
    target = f"{zone.home}/backdated{os.getpid()}"
    result = subprocess.run(Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(src), target, "--job_dir", str(jobs), "--job_name", "old", "--min_age", "3600",
        "--synchronous")), capture_output=True, env={**os.environ, **zone.environ()}, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    (summary,) = pass_summaries(str(jobs / "old"))
    assert (summary["too_young"], summary["failed"], sum(summary["created"].values())) == (1, 0, 0)
    assert landed(zone, f"{target}/backdated.dat", str(src / "backdated.dat")) is None
    listing = subprocess.run(hpcingest_argv("list", "--job_dir", str(jobs)), capture_output=True, text=True,
                             timeout=300)
    (job,) = json.loads(listing.stdout)["singlepass"]
    assert (job["status"], job["too_young"], job["failures"]) == ("finished", 1, 0)
