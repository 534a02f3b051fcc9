"""Many ranks against one catalog: which ranks connect to iRODS, and what happens when the server
has no agent (no catalog database connection) left for one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from hpcingest import sample
from hpcingest.ingest.funnel import DEFAULT_CONNECTIONS, chosen_ranks
from hpcingest.zone.testing import environment_zone, start_zone
from tests.ingest.conftest import HANDLERS, catalog, source_view, start
from tests.launchers import HANG_GUARD_S, Launcher, hpcingest_argv


def test_the_connected_ranks_spread_over_the_rank_numbers():
    assert chosen_ranks(128, None) == list(range(0, 128, 8))  # 16 by default, every 8th: one per node of 8
    assert chosen_ranks(4, None) == [0, 1, 2, 3]  # never more than the ranks
    assert chosen_ranks(10, 4) == [0, 2, 5, 7]
    assert chosen_ranks(3, 1) == [0]
    assert len(chosen_ranks(4096, None)) == DEFAULT_CONNECTIONS


@pytest.fixture
def catalog_zone(tmp_path):
    """The real zone if IRODS_ENVIRONMENT_FILE names one (its own database limit applies), else a
    built-in zone modelling a busy server of 2 cores (2 ms per request) whose catalog allows 32
    database connections, well below the 128 ranks of the test."""
    real = environment_zone()
    if real is not None:
        yield real
        return
    zone = start_zone(tmp_path / "zone", subprocess_mode=True, service_ms=2.0, cores=2, max_db_connections=32)
    yield zone
    zone.stop()


def _summary(jobs, name) -> dict:
    with open(jobs / name / "summary.json") as f:
        return json.load(f)


def test_128_ranks_against_a_catalog_of_32_database_connections_finish_exactly(catalog_zone, tmp_path):
    """srun -n 128 against a real iRODS 5.0.2 (100 database connections) did not finish in 600 s:
    every rank connected, the agents past the database's limit were refused, and those ranks
    retried their logins in silence.  By default only 16 ranks connect; nobody is refused."""
    src = tmp_path / "src"
    sample.generate(src, files=1200, seed=5, max_file_size=600)
    target, jobs = f"{catalog_zone.home}/many_ranks_{os.getpid()}", tmp_path / "jobs"
    # batches of 5: about 250 of them, so that every rank has some to ingest
    result = start(catalog_zone, src, target, "--job_name", "many", "--files_per_task", "5",
                   launcher=Launcher("mpiexec", 128), job_dir=jobs)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    expected, got = source_view(str(src)), catalog(catalog_zone, target)
    assert got.collections == expected.collections
    assert got.objects == expected.objects
    summary = _summary(jobs, "many")
    assert summary["agents_refused"] == 0 and summary["ranks_with_connections"] == DEFAULT_CONNECTIONS
    assert summary["failed"] == 0 and summary["ranks"] == 128
    if catalog_zone.builtin:
        assert "agent_refused" not in catalog_zone.api_stats()


def test_ranks_the_server_refuses_an_agent_forward_their_batches_instead(tmp_path):
    """More connections asked for than the catalog allows: the ranks refused at the start of the
    pass say so (log and summary) and send their batches to the ranks that connected."""
    if environment_zone() is not None:
        pytest.skip("needs a zone whose catalog allows 2 database connections (the built-in one)")
    zone = start_zone(tmp_path / "zone", subprocess_mode=True, max_db_connections=2)
    try:
        src = tmp_path / "src"
        sample.generate(src, files=200, seed=6, max_file_size=600)
        target, jobs = f"{zone.home}/refused", tmp_path / "jobs"
        result = start(zone, src, target, "--job_name", "refused", "--irods_connections", "4",
                       launcher=Launcher("mpiexec", 4), job_dir=jobs)
        out, err = result.stdout.decode(), result.stderr.decode(errors="replace")
        assert result.returncode == 0, err[-3000:]
        assert catalog(zone, target).objects == source_view(str(src)).objects
        summary = _summary(jobs, "refused")
        assert summary["ranks_with_connections"] == 2 and summary["agents_refused"] == 2
        assert "the server refused an agent 2 times" in out
        refusals = [json.loads(line) for line in err.splitlines() if '"irods_agent_refused"' in line]
        assert len(refusals) == 2 and all(r["error"] == "CAT_NOT_OPEN" and r["code"] == -824000 for r in refusals)
        assert zone.api_stats()["agent_refused"]["count"] == 2
    finally:
        zone.stop()


def test_files_forwarded_to_one_rank_wait_for_their_collection_made_by_another(zone, target, tmp_path):
    """With several connected ranks, the batch naming a new directory and the batches of that
    directory's files can go to different ranks: the files were registered before their
    collection existed (CAT_UNKNOWN_COLLECTION).  A forwarded batch with subdirectories is now
    waited for before they are listed."""
    src = tmp_path / "src"
    sample.generate(src, files=1000, seed=7, max_file_size=100)
    result = start(zone, src, target, "--irods_connections", "2", "--files_per_task", "5", "--event_handler",
                   os.path.join(HANDLERS, "slow_collections.py"), launcher=Launcher("mpiexec", 4),
                   job_dir=tmp_path / "jobs")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    expected, got = source_view(str(src)), catalog(zone, target)
    assert got.collections == expected.collections and got.objects == expected.objects


def test_a_stop_ends_a_pass_whose_ranks_wait_on_a_connected_rank(tmp_path):
    """`hpcingest stop` while ranks without a connection wait for room at a connected rank: the
    connected rank drops the batches it holds, so nothing acknowledges them; the waiting ranks
    stop waiting, and the job stops and resumes to an exact catalog."""
    if environment_zone() is not None:
        pytest.skip("needs a slow zone (the built-in one with --service-ms)")
    zone = start_zone(tmp_path / "zone", subprocess_mode=True, service_ms=8.0)
    try:
        src, jobs, target = tmp_path / "src", tmp_path / "jobs", f"{zone.home}/stopped"
        sample.generate(src, files=3000, seed=9, max_file_size=64)
        command = Launcher("mpiexec", 6).command(hpcingest_argv(
            "start", str(src), target, "--job_dir", str(jobs), "--job_name", "w", "--synchronous",
            "--irods_connections", "1", "--files_per_task", "10"))
        job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **zone.environ()}, start_new_session=True)
        try:
            for _ in range(3000):  # until a few hundred files are in: the senders' windows are full by then
                if job.poll() is not None or len(catalog(zone, target).objects) >= 300:
                    break
                time.sleep(0.1)
            stop = subprocess.run(hpcingest_argv("stop", "w", "--job_dir", str(jobs)), capture_output=True,
                                  env={**os.environ, **zone.environ()}, timeout=HANG_GUARD_S)
            assert stop.returncode == 0, stop.stderr
            out, err = job.communicate(timeout=HANG_GUARD_S)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        assert job.returncode == 0 and b"was stopped" in out, err[-3000:]
        resumed = start(zone, src, target, "--job_name", "w", launcher=Launcher("mpiexec", 2), job_dir=jobs)
        assert resumed.returncode == 0, resumed.stderr.decode(errors="replace")[-3000:]
        assert catalog(zone, target).objects == source_view(str(src)).objects
    finally:
        zone.stop()
