"""Shared fixtures: launchers for real MPI jobs (mpiexec, and srun when Slurm runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

import pytest

from tests.browser import browser  # noqa: F401  (a headless Chromium, per test module)
from tests.launchers import Launcher, slurm_available
from tests.s3server import s3_server, s3_server_behind  # noqa: F401  (the S3 endpoint fixtures)

_SLURM = None


def slurm() -> bool:
    global _SLURM
    if _SLURM is None:
        _SLURM = slurm_available()
    return _SLURM


def launcher_params(ranks=(1, 2, 4, 8), srun_ranks=(4,)):
    """pytest params for each mpiexec rank count plus srun on the local one-node Slurm."""
    params = [pytest.param(Launcher("mpiexec", n), id=f"mpiexec-{n}") for n in ranks]
    params += [pytest.param(Launcher("srun", n), id=f"srun-{n}",
                            marks=pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)"))
               for n in srun_ranks]
    return params


# A real server runs under its own account and reaches only what that account may; the built-in
# zone runs under this one (when the tests run as root), so a test that lets the server read its
# private files, or puts a vault where the server cannot go, fails here as against a real zone.
SERVICE_ACCOUNT = "nobody"


@pytest.fixture(scope="session")
def zone(tmp_path_factory):
    """The iRODS zone for the session: IRODS_ENVIRONMENT_FILE's, or the built-in one."""
    from hpcingest.zone.testing import zone_from_environment_or_start

    with zone_from_environment_or_start(tmp_path_factory.mktemp("zone"), service_account=SERVICE_ACCOUNT) as running:
        yield running


@contextmanager
def world_directory():
    """A scratch directory every user, and so the iRODS server's account, can reach: what the
    server must read (files registered with checksums) and vaults of new resources go here."""
    path = tempfile.mkdtemp(prefix="hpcingest-test-", dir="/tmp")
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", path])
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def slow_zone(tmp_path):
    """A built-in zone of the test's own that serves 8 ms per request and connection, so jobs
    last long enough to be interrupted (pipelined requests would hide a mere latency)."""
    from hpcingest.zone.testing import start_zone

    zone = start_zone(tmp_path / "zone", subprocess_mode=True, service_ms=8.0)
    yield zone
    zone.stop()


@pytest.fixture
def world_dir():
    """A scratch directory every user can reach (tmp_path is private to root)."""
    with world_directory() as path:
        yield path


@pytest.fixture(scope="module")
def module_world_dir():
    """world_dir for a module's fixtures (resources and their vaults)."""
    with world_directory() as path:
        yield path
