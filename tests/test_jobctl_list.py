"""Job control from the job directory: what `list` shows of a job that died, and pruning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from hpcingest import sample
from hpcingest.ingest.monitor import read_progress
from tests.launchers import Launcher, hpcingest_argv


def launch(zone, tree, jobs, name) -> subprocess.Popen:
    return subprocess.Popen(Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(tree), f"{zone.home}/{name}{os.getpid()}", "--job_dir", str(jobs), "--job_name", name)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **zone.environ()},
        start_new_session=True)


def wait_for_reports(jobs, name, job: subprocess.Popen) -> None:
    """Until the ranks have reported some entries (they rewrite their reports every 2 s)."""
    while job.poll() is None and read_progress(str(jobs / name))[0].entries == 0:
        time.sleep(0.2)
    assert job.poll() is None, job.communicate()[1].decode(errors="replace")


def listing(zone, jobs, *extra) -> tuple[dict, str]:
    result = subprocess.run(hpcingest_argv("list", "--job_dir", str(jobs), *extra), capture_output=True,
                            text=True, env={**os.environ, **zone.environ()}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_list_shows_what_a_job_that_died_had_done(slow_zone, tmp_path):
    tree, jobs = tmp_path / "tree", tmp_path / "jobs"
    sample.generate(tree, files=3000, seed=4, max_file_size=16)
    job = launch(slow_zone, tree, jobs, "died")
    wait_for_reports(jobs, "died", job)
    os.killpg(job.pid, signal.SIGKILL)
    job.communicate(timeout=60)
    reported = read_progress(str(jobs / "died"))[0]
    (died,) = listing(slow_zone, jobs)[0]["singlepass"]
    assert died["status"] == "died"
    assert died["files"] == reported.entries > 0 and died["failures"] == reported.failed


def test_prune_removes_ended_jobs_and_never_a_running_one(slow_zone, tmp_path):
    jobs = tmp_path / "jobs"
    small, big = tmp_path / "small", tmp_path / "big"
    sample.generate(small, files=5, seed=1, max_file_size=16)
    sample.generate(big, files=3000, seed=2, max_file_size=16)
    ended = launch(slow_zone, small, jobs, "ended")
    assert ended.wait(timeout=300) == 0
    jobs_now, _ = listing(slow_zone, jobs, "--prune", "1")
    assert [j["job_name"] for j in jobs_now["singlepass"]] == ["ended"]  # ended moments ago: kept
    running = launch(slow_zone, big, jobs, "running")
    try:
        wait_for_reports(jobs, "running", running)
        jobs_now, said = listing(slow_zone, jobs, "--prune", "0")
        assert [(j["job_name"], j["status"]) for j in jobs_now["singlepass"]] == [("running", "running")]
        assert "pruned job ended (finished" in said and not (jobs / "ended").exists()
        assert sorted(os.listdir(jobs)) == ["running"]
    finally:
        _, err = running.communicate(timeout=600)
    assert running.returncode == 0, err.decode(errors="replace")
    assert json.loads((jobs / "running" / "job.json").read_text())["status"] == "finished"


def test_prune_refuses_a_negative_age(zone, tmp_path):
    result = subprocess.run(hpcingest_argv("list", "--job_dir", str(tmp_path), "--prune", "-1"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--prune" in result.stderr and "Traceback" not in result.stderr


def test_prune_refuses_an_age_that_is_no_finite_number_and_removes_nothing(zone, tmp_path):
    """float() takes "nan" and "inf": NaN passed the `days < 0` check and made a cutoff that
    every job fell short of, so `--prune nan` deleted every ended job."""
    jobs, small = tmp_path / "jobs", tmp_path / "small"
    sample.generate(small, files=5, seed=1, max_file_size=16)
    ended = launch(zone, small, jobs, "ended")
    assert ended.wait(timeout=300) == 0, ended.communicate()[1].decode(errors="replace")
    for days in ("nan", "inf", "-inf", "-1"):
        result = subprocess.run(hpcingest_argv("list", "--job_dir", str(jobs), f"--prune={days}"),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (days, result.stderr)
        assert result.stderr == f"hpcingest list: error: --prune takes a number of days (0 or more), not {days}\n"
        assert sorted(os.listdir(jobs)) == ["ended"]
    assert [j["job_name"] for j in listing(zone, jobs)[0]["singlepass"]] == ["ended"]
