"""SIGTERM (a time limit, scancel) and SIGINT (a terminal) end a pass with a checkpoint: no
traceback, the job recorded as stopped, the exit status 128 + the signal, and a rerun that
finds the entries done before the signal recorded as unchanged, not to be checked again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from hpcingest import sample
from tests.conftest import slurm
from tests.ingest.conftest import catalog, source_view
from tests.launchers import Launcher, hpcingest_argv


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    sample.generate(root, files=3000, seed=6, max_file_size=64)
    return root


def start_argv(tree, target, jobs) -> list[str]:
    # --max_rate keeps the pass long enough to be interrupted on any machine
    return hpcingest_argv("start", str(tree), target, "--job_dir", str(jobs), "--job_name", "sig", "--synchronous",
                          "--max_rate", "300")


def wait_for_progress(zone, target, job: subprocess.Popen, count: int = 300) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(catalog(zone, target).objects) < count:
        assert job.poll() is None, job.communicate()
        time.sleep(0.2)


def rank_pids(tree) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if cmdline[1:4] == [b"-m", b"hpcingest", b"start"] and os.fsencode(tree) in cmdline:
            found.append(int(pid))
    return found


def check_stopped_then_resumed(zone, tree, target, jobs, out: bytes, err: bytes, returncode: int, signum: int):
    text = err.decode(errors="replace")
    assert returncode == 128 + signum, text + out.decode(errors="replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert f"was stopped by {signal.Signals(signum).name}" in out.decode()
    assert json.loads((jobs / "sig" / "job.json").read_text())["status"] == "stopped"
    done_before = len(catalog(zone, target).objects)
    resumed = subprocess.run(Launcher("mpiexec", 2).command(hpcingest_argv("resume", "sig", "--job_dir", str(jobs))),
                             capture_output=True, env={**os.environ, **zone.environ()}, timeout=600)
    summary = resumed.stdout.decode()
    assert resumed.returncode == 0, resumed.stderr.decode(errors="replace") + summary
    assert catalog(zone, target).objects == source_view(tree).objects
    # what was done before the signal was committed: the rerun does not look at it again
    checked_again = int(re.search(r"metadata-only ([\d,]+)", summary).group(1).replace(",", ""))
    assert checked_again <= 50, (done_before, summary)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_every_rank_stops_the_pass_with_a_checkpoint(slow_zone, tree, tmp_path, signum):
    jobs, target = tmp_path / "jobs", f"{slow_zone.home}/sig{uuid.uuid4().hex[:6]}"
    job = subprocess.Popen(Launcher("mpiexec", 4).command(start_argv(tree, target, jobs)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={**os.environ, **slow_zone.environ()})
    try:
        wait_for_progress(slow_zone, target, job)
        for pid in rank_pids(tree):  # as scancel and a terminal do: every rank gets it ...
            os.kill(pid, signum)
        job.send_signal(signum)  # ... and the launcher forwards it once more
        out, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    check_stopped_then_resumed(slow_zone, tree, target, jobs, out, err, job.returncode, signum)


@pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")
def test_scancel_with_sigterm_under_srun_stops_the_pass_with_a_checkpoint(slow_zone, tree, tmp_path):
    """What the batch scripts do at the time limit (--signal=B:TERM, trapped, scancel --signal=TERM)."""
    jobs, target, name = tmp_path / "jobs", f"{slow_zone.home}/scancel", f"hpcingest-test-{uuid.uuid4().hex[:8]}"
    job = subprocess.Popen(["srun", "--mpi=pmi2", "-O", "-n", "4", "-J", name, *start_argv(tree, target, jobs)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **slow_zone.environ()})
    try:
        wait_for_progress(slow_zone, target, job)
        subprocess.run(["scancel", "--signal=TERM", "--name", name], check=True, timeout=60)
        out, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    check_stopped_then_resumed(slow_zone, tree, target, jobs, out, err, job.returncode, signal.SIGTERM)
