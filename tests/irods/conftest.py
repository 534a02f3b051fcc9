"""Fixtures for the iRODS layer: one zone per module (or the real one $IRODS_ENVIRONMENT_FILE names),
settings pointing at it, a fresh collection per test and helpers to count requests and sockets.
"""

from __future__ import annotations

import gc
import os
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest
from irods.session import iRODSSession

from hpcingest.irods import IrodsConnection, IrodsSettings, resolve_settings
from hpcingest.zone.testing import RunningZone, zone_from_environment_or_start
from tests.conftest import SERVICE_ACCOUNT

ZONE_PASSWORD = "Zone-Secret-7f3a"  # distinctive, so a leak into a repr, pickle or log is visible


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningZone]:
    with zone_from_environment_or_start(tmp_path_factory.mktemp("zone"), password=ZONE_PASSWORD,
                                        service_account=SERVICE_ACCOUNT) as running:
        yield running


def zone_environ(zone: RunningZone) -> dict[str, str]:
    """Only the env-file variables, so a developer's own $IRODS_* settings cannot leak in."""
    return {"IRODS_ENVIRONMENT_FILE": zone.env_file, "IRODS_AUTHENTICATION_FILE": zone.auth_file}


@pytest.fixture
def settings(zone: RunningZone) -> IrodsSettings:
    return resolve_settings(zone_environ(zone))


@pytest.fixture
def connection(settings: IrodsSettings) -> Iterator[IrodsConnection]:
    with IrodsConnection(settings) as conn:
        yield conn


@pytest.fixture
def plain(zone: RunningZone) -> Iterator[iRODSSession]:
    """A plain PRC session, independent of the code under test, to check effects with."""
    with zone.session() as sess:
        yield sess


@pytest.fixture
def workdir(zone: RunningZone, plain: iRODSSession) -> Iterator[str]:
    path = f"{zone.home}/irods_t_{uuid.uuid4().hex[:12]}"
    plain.collections.create(path)
    yield path
    if plain.collections.exists(path):
        plain.collections.remove(path, recurse=True, force=True)


def require_builtin(zone: RunningZone, what: str) -> None:
    if not zone.builtin:
        pytest.skip(f"{what} needs the built-in zone (a real zone is configured by $IRODS_ENVIRONMENT_FILE)")


@contextmanager
def counted_requests(zone: RunningZone) -> Iterator[dict[str, int]]:
    """API name -> requests served inside the block (built-in zone only)."""
    require_builtin(zone, "counting API requests")
    before = zone.api_stats()
    counts: dict[str, int] = {}
    yield counts
    after = zone.api_stats()
    for number, entry in after.items():
        delta = entry["count"] - before.get(number, {}).get("count", 0)
        if delta:
            counts[entry["name"]] = delta


def client_sockets_to(port: int) -> int:
    """Established TCP sockets of this process whose peer port is ``port`` (from /proc, Linux only).

    Collects garbage first: a PRC connection whose login failed keeps its socket until then.
    """
    gc.collect()
    inodes = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as source:
            next(source)
            for line in source:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01":
                    inodes.add(fields[9])
    mine = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            mine += 1
    return mine
