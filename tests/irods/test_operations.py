"""Each operation's effect, checked through a plain PRC session, and what each costs in requests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
from irods.column import Like
from irods.models import Collection, DataObject, Resource

from hpcingest.irods import IrodsConnection, IrodsOperationError, resolve_settings
from hpcingest.irods import operations as ops
from hpcingest.irods.listing import MAX_NAME_BYTES_PER_QUERY, name_batches

from .conftest import counted_requests

MTIME = 1_600_000_123


def sha2(data: bytes) -> str:
    return "sha2:" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def local_file(directory, name: str, data: bytes, mtime: int | None = MTIME) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as out:
        out.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def read_object(plain, path: str) -> bytes:
    with plain.data_objects.open(path, "r") as source:
        return source.read()


def replicas(plain, path: str):
    return sorted(plain.data_objects.get(path).replicas, key=lambda r: r.number)


@pytest.fixture(scope="module")
def second_resource(zone, module_world_dir):
    """A second storage resource, on the host the default one lives on (its vault where the
    server's account can make it)."""
    name = f"second_{uuid.uuid4().hex[:6]}"
    vault = os.path.join(module_world_dir, "second_vault")
    with zone.session() as admin:
        host = admin.query(Resource.location).filter(Resource.name == zone.default_resource).one()[Resource.location]
        admin.resources.create(name, "unixfilesystem", host, vault)
    yield name
    with zone.session() as admin:
        admin.resources.remove(name)


def test_ensure_collection_creates_ancestors_once(connection, plain, workdir):
    deep = f"{workdir}/a/b/c"
    assert connection.call(ops.ensure_collection, deep) is True
    assert plain.collections.exists(deep) and plain.collections.exists(f"{workdir}/a/b")
    assert connection.call(ops.ensure_collection, deep + "/") is False


def test_ensure_collection_over_a_data_object_fails(connection, plain, workdir, tmp_path):
    connection.call(ops.put_file, local_file(tmp_path, "f", b"x"), f"{workdir}/f")
    with pytest.raises(IrodsOperationError) as info:
        connection.call(ops.ensure_collection, f"{workdir}/f/sub")
    assert (info.value.name, info.value.code) == ("CAT_NAME_EXISTS_AS_DATAOBJ", -834000)


def test_register_records_size_mtime_path_and_checksum(connection, plain, workdir, world_dir, zone):
    data = b"registered bytes\n" * 100
    source = local_file(world_dir, "reg.bin", data)  # the server reads it for the checksum
    connection.call(ops.register, source, f"{workdir}/reg.bin", len(data), os.path.getmtime(source), checksum=True)
    (replica,) = replicas(plain, f"{workdir}/reg.bin")
    assert replica.size == len(data) and int(replica.modify_time.timestamp()) == MTIME
    assert replica.path == source and replica.status == "1" and replica.checksum == sha2(data)
    assert replica.resource_name == zone.default_resource
    with pytest.raises(IrodsOperationError) as info:
        connection.call(ops.register, source, f"{workdir}/reg.bin", len(data), MTIME)
    assert (info.value.name, info.value.code) == ("CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME", -809000)


def test_pipelined_registrations_each_get_their_own_reply(connection, plain, workdir, tmp_path):
    sources = [local_file(tmp_path, f"p{i}.bin", b"x" * i) for i in range(12)]
    registrations = [ops.Registration(path, f"{workdir}/p{i}.bin", i, MTIME) for i, path in enumerate(sources)]
    registrations[4] = ops.Registration(sources[4], f"{workdir}/no/such/collection/p4.bin", 4, MTIME)
    registrations[9] = ops.Registration(sources[9], f"{workdir}/p8.bin", 9, MTIME)  # p8 is registered just before
    outcomes = connection.call(ops.register_pipelined, registrations, window=5)  # replies span three windows
    assert [i for i, outcome in enumerate(outcomes) if outcome is not None] == [4, 9]
    assert outcomes[9].name == "CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME"
    assert outcomes[4].name in ("CAT_UNKNOWN_COLLECTION", "USER_FILE_DOES_NOT_EXIST")
    for i in (0, 1, 2, 3, 5, 6, 7, 8, 10, 11):
        (replica,) = replicas(plain, f"{workdir}/p{i}.bin")
        assert (replica.size, replica.path, int(replica.modify_time.timestamp())) == (i, sources[i], MTIME)
    # the connection is in step afterwards: an ordinary call gets its own reply
    assert connection.call(ops.ensure_collection, f"{workdir}/after") is True


def test_register_as_replica_then_update_one_replica(connection, plain, workdir, tmp_path, second_resource):
    first = local_file(tmp_path, "v1", b"old")
    connection.call(ops.register, first, f"{workdir}/obj", 3, MTIME)
    second = local_file(tmp_path, "v2", b"newer!", mtime=MTIME + 60)
    connection.call(ops.register, second, f"{workdir}/obj", 6, MTIME + 60, resource=second_resource, as_replica=True)
    old, new = replicas(plain, f"{workdir}/obj")
    assert (old.number, old.size, old.status) == (0, 3, "0")
    assert (new.number, new.size, new.status, new.resource_name, new.path) == (1, 6, "1", second_resource, second)
    connection.call(ops.update_replica_metadata, f"{workdir}/obj", 7, MTIME + 120, replica_number=1)
    old, new = replicas(plain, f"{workdir}/obj")
    assert (new.size, int(new.modify_time.timestamp()), new.status) == (7, MTIME + 120, "1")
    assert (old.size, int(old.modify_time.timestamp()), old.status) == (3, MTIME, "0")


def test_update_all_replicas(connection, plain, workdir, world_dir, second_resource, zone):
    source = local_file(world_dir, "a", b"abc")  # the server reads both for the checksums below
    connection.call(ops.register, source, f"{workdir}/all", 3, MTIME)
    copy = local_file(world_dir, "a_copy", b"abc")
    connection.call(ops.register, copy, f"{workdir}/all", 3, MTIME, resource=second_resource, as_replica=True)
    connection.call(ops.update_replica_metadata, f"{workdir}/all", 11, MTIME + 5)
    updated = replicas(plain, f"{workdir}/all")
    assert [(r.size, int(r.modify_time.timestamp())) for r in updated] == [(11, MTIME + 5)] * 2
    # the server makes each replica in turn the good one and the rest stale: one stays good
    assert sorted(r.status for r in updated) == ["0", "1"]
    plain.data_objects.chksum(f"{workdir}/all", ChksumAll="")
    assert all(r.checksum for r in replicas(plain, f"{workdir}/all"))
    connection.call(ops.update_replica_metadata, f"{workdir}/all", 12, MTIME + 6, clear_checksum=True)
    assert [(r.size, r.checksum) for r in replicas(plain, f"{workdir}/all")] == [(12, None)] * 2
    with pytest.raises(IrodsOperationError) as info:
        connection.call(ops.update_replica_metadata, f"{workdir}/none", 1, MTIME)
    assert info.value.code < 0


def test_put_small_file_in_one_request(connection, plain, workdir, tmp_path, zone):
    data = os.urandom(100_000)
    source = local_file(tmp_path, "small", data)
    connection.call(lambda session: None)  # log in before counting
    with counted_requests(zone) if zone.builtin else _no_counts() as counts:
        result = connection.call(ops.put_file, source, f"{workdir}/small", checksum=True)
    assert result == ops.PutResult(len(data), "single-buffer")
    if zone.builtin:
        assert counts == {"DATA_OBJ_PUT_AN": 1}
    assert read_object(plain, f"{workdir}/small") == data
    (replica,) = replicas(plain, f"{workdir}/small")
    assert replica.size == len(data) and replica.status == "1" and replica.checksum == sha2(data)


def test_put_refuses_to_overwrite_unless_asked(connection, plain, workdir, tmp_path):
    connection.call(ops.put_file, local_file(tmp_path, "one", b"first"), f"{workdir}/p")
    with pytest.raises(IrodsOperationError) as info:
        connection.call(ops.put_file, local_file(tmp_path, "two", b"second version"), f"{workdir}/p")
    assert (info.value.name, info.value.code) == ("OVERWRITE_WITHOUT_FORCE_FLAG", -312000)
    connection.call(ops.put_file, os.path.join(tmp_path, "two"), f"{workdir}/p", overwrite=True)
    assert read_object(plain, f"{workdir}/p") == b"second version"


def test_put_empty_file_and_to_a_resource(connection, plain, workdir, tmp_path, second_resource):
    connection.call(ops.put_file, local_file(tmp_path, "empty", b""), f"{workdir}/empty", resource=second_resource)
    (replica,) = replicas(plain, f"{workdir}/empty")
    assert replica.size == 0 and replica.resource_name == second_resource


def test_put_large_file_in_parallel(connection, plain, workdir, tmp_path):
    data = os.urandom(1024 * 1024) * 33 + b"tail"
    source = local_file(tmp_path, "large", data)
    result = connection.call(ops.put_file, source, f"{workdir}/large", checksum=True)
    assert result == ops.PutResult(len(data), "parallel")
    (replica,) = replicas(plain, f"{workdir}/large")
    assert replica.size == len(data) and replica.checksum == sha2(data)
    assert hashlib.sha256(read_object(plain, f"{workdir}/large")).digest() == hashlib.sha256(data).digest()
    with pytest.raises(IrodsOperationError, match="OVERWRITE_WITHOUT_FORCE_FLAG"):
        connection.call(ops.put_file, source, f"{workdir}/large")


def test_append_copies_the_tail_in_large_writes(connection, plain, workdir, tmp_path, zone):
    head = b"h" * 1000
    source = local_file(tmp_path, "log", head)
    connection.call(ops.put_file, source, f"{workdir}/log")
    tail = os.urandom(9 * 1024 * 1024)
    with open(source, "ab") as out:
        out.write(tail)
    with counted_requests(zone) if zone.builtin else _no_counts() as counts:
        assert connection.call(ops.append_file, source, f"{workdir}/log", len(head)) == len(tail)
    if zone.builtin:
        assert counts["DATA_OBJ_WRITE_AN"] == 2  # 8 MiB + 1 MiB, not 9216 writes of 1 KiB
    assert read_object(plain, f"{workdir}/log") == head + tail
    assert replicas(plain, f"{workdir}/log")[0].size == len(head) + len(tail)
    with pytest.raises(ValueError, match="fewer than the offset"):
        connection.call(ops.append_file, source, f"{workdir}/log", len(head) + len(tail) + 1)


def test_batch_listing(connection, plain, workdir, tmp_path, second_resource):
    names = [f"file_{i:03d}" for i in range(60)] + ["it's quoted"]
    for i, name in enumerate(names):
        source = local_file(tmp_path, f"src{i}", b"z" * i, mtime=MTIME + i)
        connection.call(ops.register, source, f"{workdir}/{name}", i, MTIME + i)
    connection.call(ops.register, os.path.join(tmp_path, "src5"), f"{workdir}/file_005", 5, MTIME + 5,
                    resource=second_resource, as_replica=True)
    wanted = names[:50] + ["it's quoted", "absent_1", "absent_2"]
    found = connection.call(ops.list_collection_objects, workdir, wanted)
    assert set(found) == set(names[:50]) | {"it's quoted"}
    info = found["file_007"]
    assert (info.size, info.modify_time, len(info.replicas)) == (7, MTIME + 7, 1)
    assert info.replicas[0].physical_path == os.path.join(tmp_path, "src7")
    assert info.replicas[0].resource == info.replicas[0].hierarchy != ""
    five = found["file_005"]
    assert [r.number for r in five.replicas] == [0, 1] and five.replicas[1].resource == second_resource
    assert five.current.number == 1  # replica 0 went stale when the newer one was registered
    assert found["it's quoted"].size == 60
    assert connection.call(ops.list_collection_objects, workdir, wanted, whole_collection=True) == found
    assert connection.call(ops.list_collection_objects, f"{workdir}/nothing_here", wanted) == {}
    assert connection.call(ops.list_collection_objects, workdir, []) == {}
    like = plain.query(DataObject.name).filter(Collection.name == workdir).filter(Like(DataObject.name, "file_%"))
    assert len({row[DataObject.name] for row in like}) == 60  # other tests' objects in the zone do not count


def test_name_batches_respect_the_server_limits():
    names = [f"{i:04d}" + "n" * 250 for i in range(300)]
    batches = list(name_batches(names))
    assert sorted(sum(batches, [])) == sorted(names)
    assert all(sum(len(n) + 1 for n in batch) <= MAX_NAME_BYTES_PER_QUERY for batch in batches)
    assert len(list(name_batches(str(i) for i in range(1200)))) == 3


def test_avus(connection, plain, workdir, tmp_path):
    connection.call(ops.put_file, local_file(tmp_path, "m", b"m"), f"{workdir}/m")
    assert connection.call(ops.add_avu_if_absent, f"{workdir}/m", "source", "/lustre/x", "path") is True
    assert connection.call(ops.add_avu_if_absent, f"{workdir}/m", "source", "/lustre/x", "path") is False
    connection.call(ops.set_avu, f"{workdir}/m", "mode", "0644")
    connection.call(ops.set_avu, f"{workdir}/m", "mode", "0600")
    avus = {(m.name, m.value, m.units) for m in plain.data_objects.get(f"{workdir}/m").metadata.items()}
    assert avus == {("source", "/lustre/x", "path"), ("mode", "0600", None)}
    assert connection.call(ops.add_avu_if_absent, workdir, "ingested_by", "hpcingest", collection=True)
    assert [(m.name, m.value) for m in plain.collections.get(workdir).metadata.items()] == \
        [("ingested_by", "hpcingest")]
    with pytest.raises(IrodsOperationError) as info:
        connection.call(ops.set_avu, f"{workdir}/missing", "a", "b")
    assert info.value.name == "CAT_UNKNOWN_FILE"


def test_request_counts(zone, connection, workdir, tmp_path):
    """The costs the ingest planner relies on, measured on the built-in zone's per-API counters."""
    if not zone.builtin:
        pytest.skip("per-API counters exist only in the built-in zone")
    connection.call(lambda session: None)  # log in before counting
    names = [f"n{i:02d}" for i in range(50)]
    sources = [local_file(tmp_path, name, name.encode()) for name in names]
    with counted_requests(zone) as register_counts:
        connection.call(ops.register, sources[0], f"{workdir}/{names[0]}", 3, MTIME)
    assert register_counts == {"PHY_PATH_REG_AN": 1}
    for name, source in zip(names[1:], sources[1:]):
        connection.call(ops.register, source, f"{workdir}/{name}", 3, MTIME)
    with counted_requests(zone) as query_counts:
        found = connection.call(ops.list_collection_objects, workdir, names)
    assert len(found) == 50 and query_counts == {"GEN_QUERY_AN": 1}
    with counted_requests(zone) as misc:
        assert connection.call(ops.ensure_collection, workdir) is False
        connection.call(ops.update_replica_metadata, f"{workdir}/n00", 4, MTIME)
        connection.call(ops.add_avu_if_absent, f"{workdir}/n00", "k", "v")
        connection.call(ops.set_avu, f"{workdir}/n00", "k2", "v")
    assert misc == {"GEN_QUERY_AN": 1, "MOD_DATA_OBJ_META_AN": 1, "MOD_AVU_METADATA_AN": 2}
    with counted_requests(zone) as create_counts:
        assert connection.call(ops.ensure_collection, f"{workdir}/new/deeper") is True
    assert create_counts == {"GEN_QUERY_AN": 1, "COLL_CREATE_AN": 1}


class _no_counts:
    def __enter__(self):
        return {}

    def __exit__(self, *_):
        return False


def test_puts_of_every_size_go_to_the_environments_default_resource(zone, plain, workdir, tmp_path,
                                                                    second_resource):
    """irods_default_resource: python-irodsclient's own put (used above 32 MiB) sends it, and so did
    the old framework for every file; the single-call PUT (up to 32 MiB) sent none, so the server's
    default took the small files and the environment's the large ones."""
    with open(zone.env_file, encoding="utf-8") as source:
        environment = dict(json.load(source), irods_default_resource=second_resource)
    env_file = tmp_path / "irods_environment.json"
    env_file.write_text(json.dumps(environment))
    settings = resolve_settings({"IRODS_ENVIRONMENT_FILE": str(env_file), "IRODS_AUTHENTICATION_FILE": zone.auth_file})
    small = local_file(tmp_path, "small", b"s" * 1000)
    large = local_file(tmp_path, "large", os.urandom(1024 * 1024) * 33)
    with IrodsConnection(settings) as connection:
        assert connection.call(ops.put_file, small, f"{workdir}/small").method == "single-buffer"
        assert connection.call(ops.put_file, large, f"{workdir}/large").method == "parallel"
        assert connection.call(ops.put_file, small, f"{workdir}/explicit", resource=zone.default_resource)
    assert [r.resource_name for r in replicas(plain, f"{workdir}/small")] == [second_resource]
    assert [r.resource_name for r in replicas(plain, f"{workdir}/large")] == [second_resource]
    assert [r.resource_name for r in replicas(plain, f"{workdir}/explicit")] == [zone.default_resource]
