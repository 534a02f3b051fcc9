"""Names with control characters survive the catalog's replies: the server sends them raw in its
XML, where a parser turns a carriage return into a line feed and refuses other control
characters.  Every pass after the first consults the catalog, so this is where they broke:
register --ignore_cache met CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, PUT_SYNC met
OVERWRITE_WITHOUT_FORCE_FLAG, and a delete mode would have taken them for gone."""

from __future__ import annotations

import os
import time

import pytest

from tests.ingest.conftest import HANDLERS, catalog, start
from tests.ingest.test_put import read_object
from tests.ingest.test_register import ok
from tests.launchers import Launcher

NAMES = ["cr\rinside", "crlf\r\nline", "trailing-cr\r", "ctrl\x01a", "escape\x1b[31m", "plain"]


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "dir\rwith-cr").mkdir(parents=True)
    for name in NAMES:
        (src / name).write_bytes(name.encode())
        (src / "dir\rwith-cr" / name).write_bytes(b"in dir " + name.encode())
    return src


def expected(tree) -> set[str]:
    return {*NAMES, *(f"dir\rwith-cr/{name}" for name in NAMES)}


def run(zone, tree, target, jobs, operation, *extra, delete_mode="DO_NOT_DELETE"):
    return start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "counting.py"), "--job_name", "n",
                 *extra, launcher=Launcher("mpiexec", 2), job_dir=jobs,
                 env={"OPERATION": operation, "DELETE_MODE": delete_mode, "HOOK_LOG": os.devnull})


def test_register_twice_ignoring_the_cache(zone, target, tree, tmp_path):
    jobs = tmp_path / "jobs"
    ok(run(zone, tree, target, jobs, "REGISTER_SYNC"))
    assert set(catalog(zone, target).objects) == expected(tree)
    out = ok(run(zone, tree, target, jobs, "REGISTER_SYNC", "--ignore_cache", delete_mode="UNREGISTER"))
    assert "failed 0" in out and "created 0" in out
    assert set(catalog(zone, target).objects) == expected(tree)


def test_put_sync_of_changed_files_overwrites_them_and_deletes_nothing(zone, target, tree, tmp_path):
    jobs = tmp_path / "jobs"
    ok(run(zone, tree, target, jobs, "PUT_SYNC", delete_mode="NO_TRASH"))
    time.sleep(1.1)
    for name in NAMES:
        (tree / name).write_bytes(b"changed " + name.encode())
    out = ok(run(zone, tree, target, jobs, "PUT_SYNC", delete_mode="NO_TRASH"))
    assert "failed 0" in out and f"updated PUT_SYNC {len(NAMES)}" in out
    assert set(catalog(zone, target).objects) == expected(tree)
    for name in NAMES:
        assert read_object(zone, f"{target}/{name}") == b"changed " + name.encode()
