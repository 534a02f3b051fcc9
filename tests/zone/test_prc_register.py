"""Register in place (new object and as replica, root and leaf targets), resource hierarchies
(DIRECT_CHILD_ACCESS, HIERARCHY_ERROR) and modDataObjMeta, driven by PRC."""

from __future__ import annotations

import uuid

import pytest
from irods import exception as ex
from irods.models import DataObject


@pytest.fixture
def hierarchy(session, tmp_path):
    """root (random) -> mid (passthru) -> leaf_a, and root -> leaf_b; plus a standalone resource."""
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}_{tag}" for k in ("root", "mid", "leaf_a", "leaf_b", "solo")}
    made = []
    for key, rtype in (("root", "random"), ("mid", "passthru")):
        made.append(session.resources.create(names[key], rtype))
    for key in ("leaf_a", "leaf_b", "solo"):
        made.append(session.resources.create(names[key], "unixfilesystem", "localhost", str(tmp_path / key)))
    session.resources.add_child(names["root"], names["mid"])
    session.resources.add_child(names["mid"], names["leaf_a"])
    session.resources.add_child(names["root"], names["leaf_b"])
    yield names
    for parent, child in (("mid", "leaf_a"), ("root", "leaf_b"), ("root", "mid")):
        session.resources.remove_child(names[parent], names[child])
    for key in ("leaf_a", "leaf_b", "solo", "mid", "root"):
        try:
            session.resources.remove(names[key])
        except ex.CAT_RESOURCE_NOT_EMPTY:
            pass


def _file(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_register_new_object_with_size_modify_and_checksum(session, workdir, tmp_path):
    phys = _file(tmp_path, "r1.bin", b"x" * 5000)
    session.data_objects.register(phys, f"{workdir}/r1", dataSize="5000", dataModify="1000000000")
    obj = session.data_objects.get(f"{workdir}/r1")
    assert obj.size == 5000 and obj.replicas[0].path == phys and obj.replicas[0].status == "1"
    assert int(obj.modify_time.timestamp()) == 1000000000
    session.data_objects.register(phys, f"{workdir}/r2", regChksum="")
    assert session.data_objects.get(f"{workdir}/r2").checksum.startswith("sha2:")
    with pytest.raises(ex.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME):
        session.data_objects.register(phys, f"{workdir}/r1")
    with pytest.raises(ex.CAT_UNKNOWN_COLLECTION):
        session.data_objects.register(phys, f"{workdir}/nope/r1")
    with pytest.raises(ex.CAT_NAME_EXISTS_AS_COLLECTION):
        session.data_objects.register(phys, workdir)


def test_register_missing_file_needs_size(session, workdir, tmp_path):
    missing = str(tmp_path / "not-there")
    session.data_objects.register(missing, f"{workdir}/m1", dataSize="7")
    assert session.data_objects.get(f"{workdir}/m1").size == 7
    with pytest.raises(ex.UNIX_FILE_STAT_ERR):
        session.data_objects.register(missing, f"{workdir}/m2")


def test_register_to_root_leaf_and_as_replica(session, workdir, tmp_path, hierarchy):
    phys = _file(tmp_path, "h.bin", b"hier")
    session.data_objects.register(phys, f"{workdir}/to_root", destRescName=hierarchy["root"])
    hier = session.data_objects.get(f"{workdir}/to_root").replicas[0].resc_hier
    assert hier in (f"{hierarchy['root']};{hierarchy['mid']};{hierarchy['leaf_a']}",
                    f"{hierarchy['root']};{hierarchy['leaf_b']}")
    session.data_objects.register(phys, f"{workdir}/to_leaf", destRescName=hierarchy["leaf_a"])
    assert session.data_objects.get(f"{workdir}/to_leaf").replicas[0].resc_hier.endswith(hierarchy["leaf_a"])
    with pytest.raises(ex.HIERARCHY_ERROR):
        session.data_objects.register(phys, f"{workdir}/to_mid", destRescName=hierarchy["mid"])
    # as a replica
    second = _file(tmp_path, "h2.bin", b"hier")
    session.data_objects.register(second, f"{workdir}/to_leaf", regRepl="", destRescName=hierarchy["solo"])
    replicas = session.data_objects.get(f"{workdir}/to_leaf").replicas
    assert [(r.number, r.status) for r in replicas] == [(0, "0"), (1, "1")]
    assert replicas[1].path == second and replicas[1].resource_name == hierarchy["solo"]
    with pytest.raises(ex.SYS_COPY_ALREADY_IN_RESC):
        session.data_objects.register(second, f"{workdir}/to_leaf", regRepl="", destRescName=hierarchy["solo"])
    with pytest.raises(ex.CAT_NO_ROWS_FOUND):
        session.data_objects.register(second, f"{workdir}/absent", regRepl="", destRescName=hierarchy["solo"])


def test_writes_to_child_resource_fail_with_direct_child_access(session, workdir, tmp_path, hierarchy):
    local = _file(tmp_path, "p.bin", b"payload")
    with pytest.raises(ex.DIRECT_CHILD_ACCESS):
        session.data_objects.put(local, f"{workdir}/p1", destRescName=hierarchy["leaf_b"])
    with pytest.raises(ex.DIRECT_CHILD_ACCESS):
        session.data_objects.put(local, f"{workdir}/p2", destRescName=hierarchy["mid"])
    session.data_objects.put(local, f"{workdir}/p3", destRescName=hierarchy["root"])
    obj = session.data_objects.get(f"{workdir}/p3")
    assert obj.replicas[0].resc_hier.startswith(hierarchy["root"] + ";") and obj.size == 7
    with pytest.raises(ex.SYS_RESC_DOES_NOT_EXIST):
        session.data_objects.put(local, f"{workdir}/p4", destRescName="no_such_resource")


def test_mod_data_obj_meta(session, workdir, tmp_path):
    phys = _file(tmp_path, "mm.bin", b"1234")
    path = f"{workdir}/mm"
    session.data_objects.register(phys, path)
    session.data_objects.modDataObjMeta({"objPath": path}, {"dataSize": 4096, "dataModify": 4096,
                                                            "allReplStatus": 1})
    row = session.query(DataObject.size, DataObject.modify_time).filter(DataObject.name == "mm").one()
    assert row[DataObject.size] == 4096 and int(row[DataObject.modify_time].timestamp()) == 4096
    session.data_objects.modDataObjMeta({"objPath": path, "replNum": 0}, {"dataComments": "hello"})
    assert session.data_objects.get(path).comments == "hello"
    with pytest.raises(ex.CAT_NO_ROWS_FOUND):
        session.data_objects.modDataObjMeta({"objPath": f"{workdir}/none"}, {"dataSize": 1})


def test_replicate_and_trim(session, workdir, tmp_path, hierarchy):
    local = _file(tmp_path, "rep.bin", b"replicate me")
    path = f"{workdir}/rep"
    session.data_objects.put(local, path)
    session.data_objects.replicate(path, hierarchy["solo"])
    replicas = session.data_objects.get(path).replicas
    assert [(r.number, r.status, r.resource_name) for r in replicas][1] == (1, "1", hierarchy["solo"])
    with open(replicas[1].path, "rb") as copy:
        assert copy.read() == b"replicate me"
    with session.data_objects.open(path, "a") as f:  # a write stales the other replica
        f.write(b"!")
    assert [r.status for r in session.data_objects.get(path).replicas] == ["1", "0"]
    session.data_objects.trim(path, replNum="1")
    assert len(session.data_objects.get(path).replicas) == 1


def test_replication_resource_copies_writes_to_every_child(session, workdir, tmp_path):
    tag = uuid.uuid4().hex[:8]
    root = session.resources.create(f"repl_{tag}", "replication")
    leaves = [session.resources.create(f"rleaf{i}_{tag}", "unixfilesystem", "localhost", str(tmp_path / f"r{i}"))
              for i in range(3)]
    for leaf in leaves:
        session.resources.add_child(root.name, leaf.name)
    try:
        path = f"{workdir}/replicated"
        with session.data_objects.open(path, "w", destRescName=root.name) as f:
            f.write(b"three copies")
        replicas = session.data_objects.get(path).replicas
        assert sorted(r.resource_name for r in replicas) == sorted(leaf.name for leaf in leaves)
        assert {r.status for r in replicas} == {"1"} and {r.size for r in replicas} == {12}
        session.data_objects.unlink(path, force=True)
    finally:
        for leaf in leaves:
            session.resources.remove_child(root.name, leaf.name)
            session.resources.remove(leaf.name)
        session.resources.remove(root.name)
