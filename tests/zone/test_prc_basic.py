"""PRC drives the zone over TCP: collections, put/get, open modes, chksum, unlink, metadata."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from irods import exception as ex
from irods.meta import AVUOperation, iRODSMeta
from irods.models import DataObject


def _sha2(data: bytes) -> str:
    return "sha2:" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_collection_create_get_exists_remove(session, workdir):
    deep = f"{workdir}/a/b/c"
    coll = session.collections.create(deep)
    assert coll.path == deep and coll.name == "c"
    assert session.collections.exists(f"{workdir}/a/b")
    assert session.collections.create(deep).id == coll.id  # existing + recursive is fine
    with pytest.raises(ex.CAT_UNKNOWN_COLLECTION):
        session.collections.create(f"{workdir}/missing/x", recurse=False)
    session.collections.remove(f"{workdir}/a", recurse=True, force=True)
    assert not session.collections.exists(f"{workdir}/a")
    with pytest.raises(ex.CollectionDoesNotExist):
        session.collections.get(f"{workdir}/a")


def test_collection_remove_non_recursive_of_non_empty_fails(session, workdir):
    session.collections.create(f"{workdir}/p/q")
    with pytest.raises(ex.CAT_COLLECTION_NOT_EMPTY):
        session.collections.remove(f"{workdir}/p", recurse=False, force=True)


def test_small_put_get_roundtrip(session, workdir, tmp_path):
    data = os.urandom(100_000)
    local = tmp_path / "small.bin"
    local.write_bytes(data)
    obj = session.data_objects.put(str(local), f"{workdir}/small.bin", return_data_object=True)
    assert obj.size == len(data)
    assert obj.replicas[0].status == "1"
    out = tmp_path / "back.bin"
    session.data_objects.get(f"{workdir}/small.bin", str(out))
    assert out.read_bytes() == data
    assert session.data_objects.exists(f"{workdir}/small.bin")
    assert not session.data_objects.exists(f"{workdir}/nothere.bin")


def test_large_parallel_put_and_get(session, workdir, tmp_path):
    size = 33 * 1024 * 1024 + 12345  # > 32 MiB: PRC uses parallel transfer over several connections
    data = os.urandom(1024 * 1024) * 33 + os.urandom(12345)
    assert len(data) == size
    local = tmp_path / "large.bin"
    local.write_bytes(data)
    session.data_objects.put(str(local), f"{workdir}/large.bin", num_threads=3)
    obj = session.data_objects.get(f"{workdir}/large.bin")
    assert obj.size == size and obj.replicas[0].status == "1"
    out = tmp_path / "large.out"
    session.data_objects.get(f"{workdir}/large.bin", str(out), num_threads=3)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_open_append_and_random_access(session, workdir):
    path = f"{workdir}/edit.txt"
    with session.data_objects.open(path, "w") as f:
        f.write(b"hello")
    with session.data_objects.open(path, "a") as f:
        f.write(b" world")
    with session.data_objects.open(path, "r+") as f:
        f.seek(0)
        f.write(b"J")
        f.seek(6)
        assert f.read() == b"world"
    with session.data_objects.open(path, "r") as f:
        assert f.read() == b"Jello world"
    assert session.data_objects.get(path).size == 11


def test_create_then_overwrite_by_put(session, workdir, tmp_path):
    obj = session.data_objects.create(f"{workdir}/empty")
    assert obj.size == 0
    local = tmp_path / "x"
    local.write_bytes(b"abc")
    session.data_objects.put(str(local), f"{workdir}/empty")
    assert session.data_objects.get(f"{workdir}/empty").size == 3


def test_open_missing_object_for_read_fails(session, workdir):
    with pytest.raises(ex.OBJ_PATH_DOES_NOT_EXIST):
        session.data_objects.open(f"{workdir}/none", "r")


def test_chksum_and_verify(session, workdir, tmp_path):
    data = b"checksum me\n"
    local = tmp_path / "c.txt"
    local.write_bytes(data)
    session.data_objects.put(str(local), f"{workdir}/c.txt")
    assert session.data_objects.chksum(f"{workdir}/c.txt") == _sha2(data)
    assert session.data_objects.get(f"{workdir}/c.txt").checksum == _sha2(data)
    session.data_objects.put(str(local), f"{workdir}/c2.txt", regChksum="")
    assert session.data_objects.get(f"{workdir}/c2.txt").checksum == _sha2(data)


def test_unlink_to_trash_force_and_unregister(zone, session, workdir, tmp_path):
    local = tmp_path / "u.txt"
    local.write_bytes(b"u")
    for name in ("t", "f"):
        session.data_objects.put(str(local), f"{workdir}/{name}")
    session.data_objects.unlink(f"{workdir}/t")
    assert not session.data_objects.exists(f"{workdir}/t")
    trash = f"/{zone.zone}/trash/home/{zone.user}/{workdir.rsplit('/', 1)[1]}"
    assert session.data_objects.exists(f"{trash}/t")
    session.collections.remove(trash, recurse=True, force=True)
    session.data_objects.unlink(f"{workdir}/f", force=True)
    assert not session.data_objects.exists(f"{workdir}/f")
    session.data_objects.register(str(local), f"{workdir}/r")
    session.data_objects.unregister(f"{workdir}/r")
    assert not session.data_objects.exists(f"{workdir}/r") and local.exists()


def test_metadata_add_get_set_remove(session, workdir):
    obj = session.data_objects.create(f"{workdir}/m")
    obj.metadata.add("k1", "v1", "u1")
    obj.metadata.add("k2", "v2")
    with pytest.raises(ex.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME):
        obj.metadata.add("k1", "v1", "u1")
    got = {(m.name, m.value, m.units) for m in session.metadata.get(DataObject, obj.path)}
    assert got == {("k1", "v1", "u1"), ("k2", "v2", None)}
    obj.metadata.set("k2", "v3")
    assert [m.value for m in obj.metadata.get_all("k2")] == ["v3"]
    obj.metadata.remove("k1", "v1", "u1")
    with pytest.raises(ex.CAT_SUCCESS_BUT_WITH_NO_INFO):
        obj.metadata.remove("k1", "v1", "u1")
    coll = session.collections.get(workdir)
    coll.metadata.add("ck", "cv")
    assert coll.metadata["ck"].value == "cv"


def test_metadata_atomic_and_json_error(session, workdir):
    obj = session.data_objects.create(f"{workdir}/atomic")
    obj.metadata.apply_atomic_operations(AVUOperation(operation="add", avu=iRODSMeta("a", "1")),
                                         AVUOperation(operation="add", avu=iRODSMeta("b", "2", "u")))
    obj.metadata.apply_atomic_operations(AVUOperation(operation="remove", avu=iRODSMeta("a", "1")),
                                         AVUOperation(operation="add", avu=iRODSMeta("b", "2", "u")))
    assert {(m.name, m.value) for m in session.data_objects.get(obj.path).metadata.items()} == {("b", "2")}
    session.data_objects.unlink(obj.path, force=True)
    with pytest.raises(ex.SYS_INVALID_INPUT_PARAM) as info:
        obj.metadata.apply_atomic_operations(AVUOperation(operation="add", avu=iRODSMeta("c", "3")))
    body = info.value.server_msg.get_json_encoded_struct()
    assert "error_message" in body and body["operation_index"] == 0


def test_move_copy_replicate_truncate_touch(session, workdir, tmp_path):
    local = tmp_path / "o"
    local.write_bytes(b"0123456789")
    session.data_objects.put(str(local), f"{workdir}/o")
    session.collections.create(f"{workdir}/dir/sub")
    session.data_objects.move(f"{workdir}/o", f"{workdir}/dir")
    assert session.data_objects.exists(f"{workdir}/dir/o") and not session.data_objects.exists(f"{workdir}/o")
    session.collections.move(f"{workdir}/dir", f"{workdir}/moved")
    assert session.data_objects.exists(f"{workdir}/moved/o") and session.collections.exists(f"{workdir}/moved/sub")
    session.data_objects.copy(f"{workdir}/moved/o", f"{workdir}/copy")
    with session.data_objects.open(f"{workdir}/copy", "r") as f:
        assert f.read() == b"0123456789"
    session.data_objects.truncate(f"{workdir}/copy", 4)
    assert session.data_objects.get(f"{workdir}/copy").size == 4
    session.data_objects.touch(f"{workdir}/copy", seconds_since_epoch=1500000000)
    assert int(session.data_objects.get(f"{workdir}/copy").modify_time.timestamp()) == 1500000000
