"""The Slurm batch scripts in jobs/slurm, submitted with sbatch to the local one-node cluster."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import slurm
from tests.ingest.conftest import catalog, source_view

pytestmark = pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "jobs", "slurm")


def sbatch(zone, tmp_path, script, *args, extra_env=None, wait=True):
    env = {**os.environ, **zone.environ(), "HPCINGEST_PYTHON": sys.executable,
           "HPCINGEST_HOME": str(tmp_path / "home"), **(extra_env or {})}
    command = ["sbatch", "--parsable", "--ntasks=2", f"--output={tmp_path}/slurm-%j.out",
               f"--chdir={os.getcwd()}", *(["--wait"] if wait else []), os.path.join(SCRIPTS, script), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_one_shot_batch_script(zone, target, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(20):
        (src / "d" / f"f{i}").write_bytes(b"x" * i)
    result = sbatch(zone, tmp_path, "ingest.sbatch", str(src), target, extra_env={"HPCINGEST_JOB_NAME": "batch1"})
    job_id = result.stdout.strip().split(";")[0]
    output = open(tmp_path / f"slurm-{job_id}.out").read() if job_id else ""
    assert result.returncode == 0, result.stderr + output
    assert "entries 21" in output and "failed 0" in output
    assert catalog(zone, target).objects == source_view(src).objects
    assert (tmp_path / "home" / "jobs" / "batch1" / "job.json").exists()


def test_periodic_script_runs_a_pass_and_resubmits_itself(zone, target, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    result = sbatch(zone, tmp_path, "periodic.sbatch", str(src), target, "3600",
                    extra_env={"HPCINGEST_JOB_NAME": "per1"})
    try:
        assert result.returncode == 0, result.stderr
        assert catalog(zone, target).objects == source_view(src).objects
        queued = subprocess.run(["squeue", "-h", "--name", "hpcingest-periodic", "-o", "%i %T %r"],
                                capture_output=True, text=True).stdout.split("\n")
        assert any("PENDING" in line for line in queued), queued
    finally:
        subprocess.run(["scancel", "--name", "hpcingest-periodic"])
