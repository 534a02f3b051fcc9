"""The job API end to end on the local one-node Slurm: every job a batch job of jobs/slurm."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from hpcingest import sample
from tests.conftest import slurm
from tests.ingest.conftest import catalog, source_view
from tests.landing_zone import wait_for
from tests.serve.conftest import Service, service_environment, stop_all, write_yaml

pytestmark = pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")


@pytest.fixture
def name():
    """A job name no other test run on this cluster uses; its Slurm jobs are cancelled afterwards."""
    unique = f"srv{os.getpid()}x{time.monotonic_ns() % 10**6}"
    yield unique
    subprocess.run(["scancel", "--name", f"hpcingest-{unique}"])


def slurm_service(zone, tmp_path, *options: str) -> Service:
    return Service(tmp_path, service_environment(zone, tmp_path), list(options), launcher="slurm").start()


def queued(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "--name", f"hpcingest-{name}", "-o", "%i"], capture_output=True,
                         text=True).stdout
    return out.split()


def test_a_curled_job_runs_as_a_batch_job_and_the_catalog_equals_the_tree(zone, tmp_path, name):
    tree = tmp_path / "tree"
    sample.generate(tree, files=200, seed=11, max_file_size=32)
    target = f"{zone.home}/slurm_served{os.getpid()}"
    service = slurm_service(zone, tmp_path)
    try:
        submitted = service.curl_put(name, write_yaml(tmp_path / "job.yaml", root=str(tree), target=target,
                                                      timeout=900, ranks=2, append_json="x"))
        assert submitted["launcher"] == "slurm" and submitted["slurm_job_id"]
        assert submitted["ignored"].keys() == {"append_json"}
        fields = subprocess.run(["scontrol", "show", "job", "-o", submitted["slurm_job_id"]], capture_output=True,
                                text=True).stdout
        assert "TimeLimit=00:15:00" in fields and "NumTasks=2" in fields  # timeout is the Slurm time limit
        assert service.token not in fields  # nothing secret on the batch job's command line
        view = service.wait_for(name, ("done",))
        assert view["slurm_job_id"] == submitted["slurm_job_id"] and view["pass"] == 1
        assert catalog(zone, target).objects == source_view(tree).objects
    finally:
        stop_all(service)


def test_a_periodic_chain_runs_two_passes_and_delete_ends_it(zone, tmp_path, name):
    tree = tmp_path / "tree"
    sample.generate(tree, files=40, seed=12, max_file_size=16)
    target = f"{zone.home}/slurm_periodic{os.getpid()}"
    service = slurm_service(zone, tmp_path)
    try:
        service.curl_put(name, write_yaml(tmp_path / "job.yaml", root=str(tree), target=target, interval=3))
        view = service.wait_for(name, ("running",), lambda v: v["pass"] >= 2 and v["next_slurm_job_id"])
        assert view["periodic"] and view["interval"] == 3
        response = service.request("DELETE", f"/job/{name}")
        assert response.status == 202
        stopped = service.wait_for(name, ("stopped",))
        assert stopped["next_slurm_job_id"] is None
        wait_for(lambda: not queued(name), "no pass of the chain queued any more")
        assert catalog(zone, target).objects == source_view(tree).objects
    finally:
        stop_all(service)


def test_a_restarted_service_follows_the_batch_job_to_its_end(slow_zone, tmp_path, name):
    zone = slow_zone
    tree = tmp_path / "tree"
    sample.generate(tree, files=2000, seed=13, max_file_size=16)
    target = f"{zone.home}/slurm_restart{os.getpid()}"
    service = slurm_service(zone, tmp_path)
    try:
        service.curl_put(name, write_yaml(tmp_path / "job.yaml", root=str(tree), target=target))
        service.wait_for(name, ("running",), lambda v: v["progress"]["entries"] > 0)
        service.restart()
        view = service.job(name)
        assert view["state"] == "running" and view["slurm_job_id"], view
        service.wait_for(name, ("done",))
        assert catalog(zone, target).objects == source_view(tree).objects
    finally:
        stop_all(service)


def test_a_batch_job_that_vanishes_shows_failed_with_the_reason_and_delete_cancels_a_pending_one(zone, tmp_path,
                                                                                                name):
    tree = tmp_path / "tree"
    tree.mkdir()
    service = slurm_service(zone, tmp_path, "--sbatch_option=--hold")  # queued, never started by itself
    try:
        job = write_yaml(tmp_path / "job.yaml", root=str(tree), target=f"{zone.home}/held{os.getpid()}")
        held = service.curl_put(name, job)
        assert held["state"] == "pending" and held["slurm_state"] == "PENDING"
        subprocess.run(["scancel", held["slurm_job_id"]], check=True)  # someone else cancels it
        failed = service.wait_for(name, ("failed",))
        assert f"Slurm job {held['slurm_job_id']} ended (CANCELLED" in failed["reason"]
        assert "before the ingest began" in failed["reason"]

        second = service.curl_put(f"{name}b", job)
        assert service.request("DELETE", f"/job/{name}b").json()["stop_requested"]
        assert service.wait_for(f"{name}b", ("stopped",))["reason"] in ("cancelled before it ran", "stopped on request")
        wait_for(lambda: not queued(f"{name}b"), "the held batch job cancelled")
        assert second["slurm_job_id"] not in queued(f"{name}b")
    finally:
        subprocess.run(["scancel", "--name", f"hpcingest-{name}b"])
        stop_all(service)
