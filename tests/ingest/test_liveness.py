"""A rank that dies ends the job in bounded time, with one message, a died record and a
checkpoint that resumes at once: the heartbeat watch on its own, then real ranks under srun
without --kill-on-bad-exit (where nothing else would end the job)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from hpcingest import sample
from hpcingest.ingest import liveness
from tests.conftest import slurm
from tests.ingest.conftest import catalog, source_view
from tests.launchers import hpcingest_argv


class Watched:
    """A PeerWatch as one rank runs it, with what its callbacks saw."""

    def __init__(self, job_path: str, rank: int, size: int, timeout_s: float = 4.0) -> None:
        self.lost: list[str] = []
        self.forced: list[tuple[str, bool]] = []
        self.called = threading.Event()
        self.watch = liveness.PeerWatch(job_path, rank, size, timeout_s, self._lost, self._force, grace_s=0.5)

    def _lost(self, message: str) -> None:
        self.lost.append(message)
        self.called.set()

    def _force(self, message: str, wrote: bool) -> None:
        self.forced.append((message, wrote))


def test_a_rank_that_stops_beating_is_named_by_rank_0_and_every_rank_learns_it(tmp_path):
    job = str(tmp_path)
    ranks = [Watched(job, r, 3) for r in range(3)]
    for r in ranks:
        r.watch.__enter__()
    ranks[2].watch._done.set()  # rank 2 dies: its thread stops, its heartbeat file stays
    ranks[2].watch._thread.join()
    for r in (ranks[0], ranks[1]):
        assert r.called.wait(30), "nobody noticed the silent rank"
    assert ranks[0].watch.wrote_notice and not ranks[1].watch.wrote_notice
    assert ranks[0].lost[0].startswith("rank 2 on host ") and "no heartbeat" in ranks[0].lost[0]
    assert ranks[1].lost == ranks[0].lost  # the others read the notice: one message for the job
    time.sleep(2.0)  # past the grace period: nobody called handled(), so each ends its process
    assert ranks[0].forced == [(ranks[0].lost[0], True)] and ranks[1].forced == [(ranks[0].lost[0], False)]


def test_a_rank_that_leaves_normally_is_not_taken_for_dead(tmp_path):
    job = str(tmp_path)
    ranks = [Watched(job, r, 2, timeout_s=1.0) for r in range(2)]
    for r in ranks:
        r.watch.__enter__()
    ranks[1].watch.__exit__(None, None, None)  # done before rank 0 ever looked: its heartbeat is a "left" mark
    time.sleep(3.0)  # three timeouts
    ranks[0].watch.__exit__(None, None, None)
    assert ranks[0].lost == []
    assert sorted(os.listdir(tmp_path / "alive")) == ["rank00000.left", "rank00001.left"]


def rank_pids(marker: str) -> dict[int, int]:
    """The pid of each hpcingest rank whose command line holds ``marker``, by SLURM_PROCID."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if marker.encode() not in cmdline or b"-m\0hpcingest\0start" not in cmdline:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        except OSError:
            continue
        if b"SLURM_PROCID" in env:
            found[int(env[b"SLURM_PROCID"])] = int(pid)
    return found


@pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")
@pytest.mark.parametrize("victim", [0, 2])
def test_kill_9_of_a_rank_under_srun_ends_the_job_and_it_resumes(slow_zone, tmp_path, victim):
    tree, jobs, target = tmp_path / "src", tmp_path / "jobs", f"{slow_zone.home}/lost{victim}"
    sample.generate(tree, files=3000, seed=4, max_file_size=64)
    start = hpcingest_argv("start", str(tree), target, "--job_dir", str(jobs), "--job_name", "lost",
                           "--synchronous", "--max_rate", "300", "--dead_rank_timeout", "5")
    job = subprocess.Popen(["srun", "--mpi=pmi2", "-O", "-n", "4", "--kill-on-bad-exit=0", *start],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, **slow_zone.environ()})
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(catalog(slow_zone, target).objects) < 200:
            assert job.poll() is None, job.communicate()
            time.sleep(0.2)
        pids = rank_pids(str(tree))
        assert len(pids) == 4, pids
        os.kill(pids[victim], signal.SIGKILL)
        out, err = job.communicate(timeout=300)  # a hang guard; without the watch: the time limit
    finally:
        if job.poll() is None:
            job.kill()
    text = err.decode(errors="replace")
    assert job.returncode != 0
    messages = [line for line in text.splitlines() if "hpcingest start: error:" in line]
    assert len(messages) == 1 and f"rank {victim} on host " in messages[0], text
    assert "Traceback" not in text
    record = json.loads((jobs / "lost" / "job.json").read_text())
    assert record["status"] == "died"
    listed = subprocess.run(hpcingest_argv("list", "--job_dir", str(jobs)), capture_output=True, text=True)
    assert [j["status"] for j in json.loads(listed.stdout)["singlepass"]] == ["died"]
    resumed = subprocess.run(["srun", "--mpi=pmi2", "-O", "-n", "2", *hpcingest_argv(
        "resume", "lost", "--job_dir", str(jobs))], capture_output=True, env={**os.environ, **slow_zone.environ()},
        timeout=600)
    assert resumed.returncode == 0, resumed.stderr.decode(errors="replace")
    assert catalog(slow_zone, target).objects == source_view(tree).objects
