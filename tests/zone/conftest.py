"""Fixtures for the zone tests: one zone per test module, one fresh collection per test.

When $IRODS_ENVIRONMENT_FILE is set the tests run against that (real) zone instead; tests of the
built-in zone itself (restart, CLI, statistics) are skipped then, with the reason given.
"""

from __future__ import annotations

import uuid

import pytest
from irods.session import iRODSSession

from hpcingest.zone.testing import RunningZone, zone_from_environment_or_start


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory):
    with zone_from_environment_or_start(tmp_path_factory.mktemp("zone")) as running:
        yield running


@pytest.fixture
def session(zone: RunningZone):
    with zone.session() as sess:
        yield sess


@pytest.fixture
def workdir(zone: RunningZone, session: iRODSSession):
    """A fresh collection under the admin's home, removed (forced) afterwards."""
    path = f"{zone.home}/t_{uuid.uuid4().hex[:12]}"
    session.collections.create(path)
    yield path
    if session.collections.exists(path):
        session.collections.remove(path, recurse=True, force=True)


@pytest.fixture
def alice(zone: RunningZone, session: iRODSSession):
    """An ordinary rodsuser with a password, removed afterwards."""
    name = f"alice_{uuid.uuid4().hex[:8]}"
    user = session.users.create(name, "rodsuser")
    user.modify("password", "alicepw")
    yield name
    with zone.session() as admin:
        home = f"/{zone.zone}/home/{name}"
        for coll in (home, f"/{zone.zone}/trash/home/{name}"):
            if admin.collections.exists(coll):
                for sub in admin.collections.get(coll).subcollections:
                    sub.remove(recurse=True, force=True)
                for obj in admin.collections.get(coll).data_objects:
                    obj.unlink(force=True)
        admin.users.remove(name)
