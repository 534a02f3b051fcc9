"""Launch safety: singleton launches are refused, and one rank's error ends the whole job."""

from __future__ import annotations

import json
import os
import subprocess
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


NO_MPI = {"MPI4PY_LIBMPI": "/nonexistent/libmpi.so"}  # mpi4py then cannot load any MPI library, as in a fresh venv


def test_without_an_mpi_library_one_process_scans_alone(tmp_path):
    """pip install hpcingest brings no MPI: `hpcingest scan SRC` died with 'cannot load MPI library'."""
    from hpcingest.sample import generate

    tree = generate(str(tmp_path / "tree"), files=300, seed=1)
    listing, summary = tmp_path / "list", tmp_path / "summary.json"
    result = run(None, hpcingest_argv("scan", os.fsdecode(tree.root), "--list", str(listing), "--json", str(summary)),
                 env=NO_MPI)
    assert result.returncode == 0, result.stderr.decode()
    found = subprocess.run(["find", os.fsdecode(tree.root), "-mindepth", "1", "-printf", "%P\\0"],
                           capture_output=True, check=True).stdout
    assert sorted(listing.read_bytes().split(b"\0")) == sorted(found.split(b"\0"))
    counts = json.loads(summary.read_text())
    assert counts["ranks"] == 1 and counts["files"] == tree.files and counts["errors"] == 0


def test_without_an_mpi_library_one_process_ingests_alone(zone, tmp_path):
    from hpcingest.sample import generate
    from tests.ingest.conftest import catalog, source_view

    tree = generate(str(tmp_path / "tree"), files=60, seed=2, max_file_size=64)
    target = f"{zone.home}/no_mpi{os.getpid()}"
    result = run(None, hpcingest_argv("start", os.fsdecode(tree.root), target, "--synchronous", "--job_dir",
                                      str(tmp_path / "jobs")), env={**zone.environ(), **NO_MPI})
    assert result.returncode == 0, result.stderr.decode()
    assert catalog(zone, target).objects == source_view(tree.root).objects


def test_without_an_mpi_library_a_launcher_gets_one_line_saying_how_to_get_mpi(tmp_path):
    result = run(None, hpcingest_argv("scan", str(tmp_path)), env={**NO_MPI, "PMI_SIZE": "2", "PMI_RANK": "0"})
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert "started 2 tasks but no MPI library could be loaded" in line
    assert "hpcingest[mpich]" in line and "MPI4PY_LIBMPI" in line


@pytest.mark.parametrize("command", [["scan", "."], ["list"], ["--help"]])
def test_a_reader_that_goes_away_is_no_traceback(tmp_path, command):
    """`hpcingest scan SRC | head -1`: the reader closed the pipe before the summary was written."""
    job = subprocess.Popen([sys.executable, "-m", "hpcingest", *command], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={**os.environ, "HPCINGEST_HOME": str(tmp_path)})
    job.stdout.close()
    err = job.stderr.read().decode(errors="replace")
    assert job.wait(timeout=300) == 141 and "Traceback" not in err, err
