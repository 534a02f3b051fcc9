"""A clean install: the wheel, in a fresh venv, with only the core dependencies from PyPI.

What a site gets from `pip wheel .` and `pip install hpcingest-*.whl` (README, Install): the
commands work, a plain `hpcingest scan` runs as one process with no MPI library anywhere, the
old framework's entry points exist, matplotlib (the extra hpcingest[plot]) and scandir-rs are
not installed, and `hpcingest profile` says in one line how to get the PNG.  Needs PyPI.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from hpcingest.sample import generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = {"boto3", "mpi4py", "numpy", "python-irodsclient", "structlog"}  # at least these, and no extra's
INSTALL_GUARD_S = 1200  # against a hung download only; nothing here is a performance limit


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPI4PY_LIBMPI")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_GUARD_S, env={**env, **kwargs.pop("env", {})},
                          **kwargs)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> str:
    """A new venv holding the wheel built from this checkout and its core dependencies."""
    work = tmp_path_factory.mktemp("install")
    built = run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", str(work / "wheels")])
    assert built.returncode == 0, built.stderr
    (wheel,) = glob.glob(str(work / "wheels" / "hpcingest-*.whl"))
    created = run(["/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable, "-m", "venv",
                   str(work / "venv")])
    assert created.returncode == 0, created.stderr
    installed = run([str(work / "venv" / "bin" / "pip"), "install", "--disable-pip-version-check", wheel])
    assert installed.returncode == 0, installed.stderr
    return str(work / "venv" / "bin")


def test_the_wheel_installs_only_the_core_dependencies(venv):
    shown = run([f"{venv}/pip", "show", "hpcingest"]).stdout
    requires = next(line for line in shown.splitlines() if line.startswith("Requires:"))
    required = {name.strip() for name in requires.split(":", 1)[1].split(",")}
    assert CORE <= required and not required & {"matplotlib", "scandir-rs"}
    for absent in ("matplotlib", "scandir_rs"):
        probe = run([f"{venv}/python", "-c", f"import {absent}"])
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    mpi = run([f"{venv}/python", "-c", "from mpi4py import MPI"])
    assert mpi.returncode != 0 and "cannot load MPI library" in mpi.stderr  # no MPI: no extra, none on the system


def test_the_commands_and_the_old_entry_points_work(venv):
    for argv in ([f"{venv}/hpcingest", "--help"], [f"{venv}/irods_capability_automated_ingest", "--help"],
                 [f"{venv}/python", "-m", "irods_capability_automated_ingest.irods_sync", "start", "--help"]):
        result = run(argv)
        assert result.returncode == 0 and "usage:" in result.stdout, (argv, result.stderr)


def test_scan_runs_as_one_process_without_mpi(venv, tmp_path):
    tree = generate(str(tmp_path / "tree"), files=200, seed=1)
    result = run([f"{venv}/hpcingest", "scan", os.fsdecode(tree.root), "--json", str(tmp_path / "scan.json")])
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "scan.json").read_text())
    assert summary["ranks"] == 1 and summary["files"] == tree.files and summary["errors"] == 0


def test_profile_says_how_to_get_the_picture(venv, tmp_path):
    """An ingest with --profile into the built-in zone, then `hpcingest profile`, all in the fresh venv."""
    zone = subprocess.Popen([f"{venv}/hpcingest", "zone", "--root", str(tmp_path / "zone"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "HPCINGEST_ZONE_PASSWORD": "rods"})
    try:
        assert "listening on" in zone.stdout.readline()
        environ = {"IRODS_ENVIRONMENT_FILE": str(tmp_path / "zone" / "irods_environment.json"),
                   "IRODS_AUTHENTICATION_FILE": str(tmp_path / "zone" / ".irodsA")}
        tree = generate(str(tmp_path / "tree"), files=30, seed=2, max_file_size=64)
        jobs = str(tmp_path / "jobs")
        started = run([f"{venv}/hpcingest", "start", os.fsdecode(tree.root), "/tempZone/home/rods/clean",
                       "--job_name", "clean", "--job_dir", jobs, "--profile", "--synchronous"], env=environ)
        assert started.returncode == 0, started.stderr
        drawn = run([f"{venv}/hpcingest", "profile", "clean", "--job_dir", jobs, "--output", str(tmp_path)])
    finally:
        zone.terminate()
        zone.wait()
    assert drawn.returncode == 0, drawn.stderr
    assert "picture:  not drawn: the PNG needs matplotlib, an extra: pip install 'hpcingest[plot]'" in drawn.stdout
    assert (tmp_path / "profile-clean-pass1.html").exists() and not (tmp_path / "profile-clean-pass1.png").exists()
