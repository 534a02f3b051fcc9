"""Resource targeting as the old test suite checks it: root and leaf work for REGISTER, PUT to a
leaf or a middle resource fails (DIRECT_CHILD_ACCESS), replicas are registered and updated."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from irods.models import Collection, DataObject

from tests.ingest.conftest import HANDLERS, start
from tests.ingest.test_register import ok
from tests.launchers import Launcher

ROOT, MIDDLE, LEAF_A, LEAF_B = "regiResc2Root", "regiResc2", "regiResc2a", "regiResc2b"


@pytest.fixture(scope="module")
def resources(zone, module_world_dir):
    """regiResc2Root (random) -> regiResc2 (random) -> regiResc2a, regiResc2b (unixfilesystem),
    whose vaults the server's account can make."""
    vaults = Path(module_world_dir) / "vaults"
    with zone.session() as session:
        existing = {r.name for r in session.resources.list()} if hasattr(session.resources, "list") else set()
        for name, kind in ((ROOT, "random"), (MIDDLE, "random")):
            if name not in existing:
                session.resources.create(name, kind)
        host = socket.gethostname() if not zone.builtin else "localhost"
        for leaf in (LEAF_A, LEAF_B):
            if leaf not in existing:
                session.resources.create(leaf, "unixfilesystem", host, str(vaults / leaf))
            else:  # a zone reused from an earlier run: its vault directory is gone
                session.resources.modify(leaf, "path", str(vaults / leaf))
        for parent, child in ((ROOT, MIDDLE), (MIDDLE, LEAF_A), (MIDDLE, LEAF_B)):
            try:
                session.resources.add_child(parent, child)
            except Exception:  # noqa: BLE001 - already a child on a reused zone
                pass
    return vaults


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    for i in range(6):
        (root / str(i)).write_bytes(str(i).encode() * i)
    return root


def replicas(zone, target: str) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    with zone.session() as session:
        for row in session.query(DataObject.name, DataObject.replica_number, DataObject.resc_hier, DataObject.size,
                                 DataObject.path, DataObject.replica_status).filter(Collection.name == target):
            found.setdefault(row[DataObject.name], []).append(
                (row[DataObject.replica_number], row[DataObject.resc_hier], int(row[DataObject.size]),
                 row[DataObject.path], row[DataObject.replica_status]))
    return {k: sorted(v) for k, v in found.items()}


def run(zone, tree, target, tmp_path, operation, resource, job="r"):
    return start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "counting.py"), "--job_name", job,
                 launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs",
                 env={"OPERATION": operation, "TO_RESOURCE": resource, "HOOK_LOG": str(tmp_path / "hooks")})


@pytest.mark.parametrize("resource", [ROOT, LEAF_A])
def test_register_to_root_or_leaf(zone, resources, tree, target, tmp_path, resource):
    ok(run(zone, tree, target, tmp_path, "REGISTER_SYNC", resource))
    got = replicas(zone, target)
    assert set(got) == {str(i) for i in range(6)}
    for name, reps in got.items():
        assert len(reps) == 1
        hierarchy = reps[0][1]
        assert hierarchy.split(";")[-1] in (LEAF_A, LEAF_B)
        assert resource in hierarchy.split(";")
        assert reps[0][3] == os.path.realpath(tree / name)


@pytest.mark.parametrize("operation, resource", [("REGISTER_SYNC", MIDDLE), ("PUT", LEAF_A), ("PUT", MIDDLE)])
def test_writes_to_a_middle_or_leaf_resource_fail_per_file(zone, resources, tree, target, tmp_path, operation,
                                                          resource):
    result = run(zone, tree, target, tmp_path, operation, resource, job="bad")
    assert result.returncode != 0
    assert "failed 6" in result.stdout.decode()
    report = (tmp_path / "jobs" / "bad" / "failures.jsonl").read_text()
    assert report.count('"kind": "failed"') == 6


def test_put_then_register_as_replica_then_update_in_place(zone, resources, tree, target, tmp_path):
    ok(run(zone, tree, target, tmp_path, "PUT", "", job="put"))  # to the default resource
    time.sleep(1.1)
    for i in range(6):
        (tree / str(i)).write_bytes(b"new content %d" % i)
    ok(run(zone, tree, target, tmp_path, "REGISTER_AS_REPLICA_SYNC", LEAF_A, job="put"))
    got = replicas(zone, target)
    for i in range(6):
        reps = got[str(i)]
        assert len(reps) == 2, reps
        registered = [r for r in reps if r[3] == os.path.realpath(tree / str(i))]
        assert len(registered) == 1 and registered[0][1].endswith(LEAF_A)
        assert registered[0][2] == len(b"new content %d" % i)
    time.sleep(1.1)
    (tree / "3").write_bytes(b"longer content than before")
    ok(run(zone, tree, target, tmp_path, "REGISTER_AS_REPLICA_SYNC", LEAF_A, job="put"))
    reps = replicas(zone, target)["3"]
    assert len(reps) == 2
    registered = [r for r in reps if r[3] == os.path.realpath(tree / "3")]
    assert registered[0][2] == len(b"longer content than before")


def test_register_as_replica_refuses_a_replica_there_with_another_path(zone, resources, tree, target, tmp_path):
    ok(run(zone, tree, target, tmp_path, "PUT", ROOT, job="other"))  # vault copies under the root's leaves
    time.sleep(1.1)
    for i in range(6):
        (tree / str(i)).write_bytes(b"changed %d" % i)
    result = run(zone, tree, target, tmp_path, "REGISTER_AS_REPLICA_SYNC", ROOT, job="other")
    assert "failed 6" in result.stdout.decode(), result.stdout.decode()
    report = (tmp_path / "jobs" / "other" / "failures.jsonl").read_text()
    assert report.count('"error": "wrong_resource_or_path"') == 6
    assert all(len(reps) == 1 for reps in replicas(zone, target).values())
