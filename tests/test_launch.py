"""Launch safety: singleton launches are refused, and one rank's error ends the whole job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import launcher_params, slurm
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


MPICH_WHEEL = """MPICH Version:      5.0.2
MPICH Device:       ch4:ucx ofi
MPICH configure:    --with-device=ch4:ucx,ofi --with-pm=hydra:gforker
"""


@pytest.mark.parametrize("environ, expected", [
    ({"MPI_LOCALNRANKS": "4", "PMI_SIZE": "4"}, "ofi"),  # hydra, one node
    ({"MPI_LOCALNRANKS": "2", "PMI_SIZE": "4"}, None),  # hydra, two nodes
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_NODES": "1", "PMI_SIZE": "4"}, "ofi"),  # srun --mpi=pmi2, one node
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_NODES": "2", "PMI_SIZE": "4"}, None),
    ({"SLURM_JOB_NUM_NODES": "1", "PMI_SIZE": "4"}, None),  # a launcher that says nothing of its nodes
    ({"MPI_LOCALNRANKS": "4", "PMI_SIZE": "4", "MPIR_CVAR_CH4_NETMOD": "ucx"}, None),  # the user's choice stands
])
def test_one_node_jobs_of_an_mpich_with_ucx_and_ofi_start_ofi(environ, expected):
    from hpcingest.launch import local_netmod

    assert local_netmod(MPICH_WHEEL, environ) == expected


@pytest.mark.parametrize("version", [
    MPICH_WHEEL.replace("ch4:ucx ofi", "ch4:ucx"),
    MPICH_WHEEL.replace("ch4:ucx ofi", "ch4:ofi"),
    "Open MPI v5.0.11, package: Open MPI",
    "Intel(R) MPI Library 2021.13 for Linux* OS",
])
def test_other_mpi_libraries_and_builds_keep_their_own_netmod(version):
    from hpcingest.launch import local_netmod

    assert local_netmod(version, {"MPI_LOCALNRANKS": "4", "PMI_SIZE": "4"}) is None


def library_version() -> str:
    """The MPI library's version text, read without starting MPI in the test process."""
    probe = "import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; print(MPI.Get_library_version())"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("launcher", launcher_params(ranks=(2,), srun_ranks=(2,)))
@pytest.mark.parametrize("chosen, started", [(None, b"MPIDI_OFI_ENABLE_DATA:"), ("ucx", b"UCX netmod Capability")])
def test_a_one_node_job_starts_the_netmod_of_cheap_start_up_unless_told(launcher, chosen, started, tmp_path):
    """The mpich wheel started UCX for ranks that all share one node: 28 s of MPI_Init for 256
    ranks on 2 cores, 10 s with OFI (RESULTS.md, "MPI start-up")."""
    from hpcingest.launch import local_netmod

    if local_netmod(library_version(), {"MPI_LOCALNRANKS": "2", "PMI_SIZE": "2"}) is None:
        pytest.skip("not an MPICH built with both UCX and OFI")
    env = {"MPIR_CVAR_DEBUG_SUMMARY": "1"}  # MPICH describes the netmod it started on stdout
    if chosen:
        env["MPIR_CVAR_CH4_NETMOD"] = chosen
    result = run(launcher, hpcingest_argv("scan", str(tmp_path)), env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert started in result.stdout and b"scanned" in result.stdout


_ENDING_RANK = r"""
import atexit, os, sys, threading, time
from hpcingest.launch import exit_process, init_world
from hpcingest.lazy import lazy_module

comm = init_world() if sys.argv[2] != "no-mpi" else None
sys.path.insert(0, os.path.dirname(sys.argv[1]))
never_used = lazy_module("loud_on_import")  # as ranks without an iRODS connection hold python-irodsclient's


class FreedByTheTeardown:
    def __del__(self):
        print("freed by the teardown", flush=True)


kept = FreedByTheTeardown()
atexit.register(print, "atexit ran", flush=True)
left_open = open(f"{sys.argv[1]}.{comm.Get_rank() if comm else 0}", "w")
left_open.write("still buffered")
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished", flush=True))).start()
exit_process(3)
"""


def _ending_script(tmp_path):
    (tmp_path / "loud_on_import.py").write_text("print('imported', flush=True)\n")
    script = tmp_path / "ending.py"
    script.write_text(_ENDING_RANK)
    return script


@pytest.mark.parametrize("launcher", launcher_params(ranks=(2,), srun_ranks=(2,)))
def test_a_rank_ends_without_the_teardown_but_with_its_atexit_functions_files_and_status(launcher, tmp_path):
    """256 ranks on 2 cores spent 2.2 s in the interpreter's teardown after the summary
    (RESULTS.md, "Ranks end without the interpreter's teardown"); what of it matters must still happen."""
    script = _ending_script(tmp_path)
    result = run(launcher, [sys.executable, str(script), str(tmp_path / "out"), "plain"])
    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.count(b"atexit ran") == 2
    assert b"freed by the teardown" not in result.stdout  # no teardown
    assert b"imported" not in result.stdout  # what the flush looked at was not loaded by looking (30 ms a rank)
    assert b"BAD TERMINATION" not in result.stdout + result.stderr  # the launcher saw two clean ends
    assert [(tmp_path / f"out.{rank}").read_text() for rank in (0, 1)] == ["still buffered"] * 2


@pytest.mark.parametrize("case, launcher", [("thread", Launcher("mpiexec", 2)), ("no-mpi", None)])
def test_a_process_with_a_thread_to_wait_for_or_no_mpi_gets_the_interpreters_own_exit(case, launcher, tmp_path):
    script = _ending_script(tmp_path)
    result = run(launcher, [sys.executable, str(script), str(tmp_path / "out"), case])
    assert result.returncode == 3, result.stderr.decode()
    ranks = launcher.ranks if launcher else 1
    assert result.stdout.count(b"freed by the teardown") == ranks
    assert result.stdout.count(b"atexit ran") == ranks
    assert result.stdout.count(b"thread finished") == (ranks if case == "thread" else 0)
    assert (tmp_path / "out.0").read_text() == "still buffered"
