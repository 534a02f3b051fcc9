"""Launch safety: singleton launches are refused, and one rank's error ends the whole job."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import slurm
from tests.launchers import Launcher, hpcingest_argv, run


def test_singletons_under_a_multi_task_launcher_are_refused(tmp_path):
    result = run(None, hpcingest_argv("scan", str(tmp_path)), env={"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "0"})
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "started 4 tasks, but MPI sees only this one" in stderr and "--mpi=pmi2" in stderr
    assert "Traceback" not in stderr


@pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")
def test_srun_with_the_wrong_mpi_plugin_is_refused_once(tmp_path):
    command = ["srun", "--mpi=none", "-O", "-n", "2", *hpcingest_argv("scan", str(tmp_path))]
    result = run(None, command)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert stderr.count("MPI sees only this one") == 1, stderr
    assert "scanned" not in result.stdout.decode()


def test_an_exception_on_one_rank_aborts_every_rank():
    result = run(Launcher("mpiexec", 3), [sys.executable, "-m", "tests.mpi_scripts.fail_on_one_rank"])
    assert result.returncode != 0
    assert b"injected failure on rank 1" in result.stderr
