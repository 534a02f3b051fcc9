"""Login (both flows, bad password, unknown user, proxy users), GenQuery paging, raw APIs."""

from __future__ import annotations

import os

import pytest
from irods import exception as ex
from irods.column import In, Like
from irods.message import FileOpenRequest, StringStringMap, iRODSMessage
from irods.models import Collection, DataObject
from irods.session import iRODSSession


def _login(zone, **kwargs) -> iRODSSession:
    options = dict(host=zone.host, port=zone.port, zone=zone.zone, user=zone.user, password=zone.password)
    options.update(kwargs)
    return iRODSSession(**options)


def test_bad_password_and_unknown_user(zone):
    with _login(zone, password="wrong") as sess, pytest.raises(ex.CAT_INVALID_AUTHENTICATION):
        sess.collections.get(zone.home)
    with _login(zone, user="nosuchuser", password="x") as sess, pytest.raises(ex.CAT_INVALID_USER):
        sess.collections.get(zone.home)


def test_legacy_auth_flow(zone):
    import irods.client_configuration as config

    saved = config.legacy_auth.force_legacy_auth
    config.legacy_auth.force_legacy_auth = True
    try:
        with _login(zone) as sess:
            assert sess.collections.get(zone.home).path == zone.home
        with _login(zone, password="wrong") as sess, pytest.raises(ex.CAT_INVALID_AUTHENTICATION):
            sess.collections.get(zone.home)
    finally:
        config.legacy_auth.force_legacy_auth = saved


def test_negotiation_is_answered_with_refuse(zone):
    with _login(zone, irods_client_server_negotiation="request_server_negotiation",
                irods_client_server_policy="CS_NEG_REFUSE") as sess:
        assert sess.collections.get(zone.home).path == zone.home
    with _login(zone, irods_client_server_negotiation="request_server_negotiation",
                irods_client_server_policy="CS_NEG_REQUIRE") as sess:
        with pytest.raises(ex.NetworkException):
            sess.collections.get(zone.home)


def test_proxy_login_as_admin_acts_as_client_user(zone, alice, tmp_path):
    with _login(zone, client_user=alice) as sess:
        assert sess.username == alice
        home = f"/{zone.zone}/home/{alice}"
        coll = sess.collections.create(f"{home}/by_proxy")
        assert coll.owner_name == alice
        local = tmp_path / "f"
        local.write_bytes(b"data")
        sess.data_objects.put(str(local), f"{home}/by_proxy/f")
        assert sess.data_objects.get(f"{home}/by_proxy/f").owner_name == alice


def test_proxy_login_refused_for_ordinary_user(zone, alice):
    with _login(zone, user=alice, password="alicepw") as sess:
        assert sess.collections.get(f"/{zone.zone}/home/{alice}")
    with _login(zone, user=alice, password="alicepw", client_user=zone.user) as sess:
        with pytest.raises(ex.SYS_PROXYUSER_NO_PRIV):
            sess.collections.get(zone.home)


def test_ordinary_user_cannot_write_into_admin_home(zone, alice):
    with _login(zone, user=alice, password="alicepw") as sess:
        with pytest.raises(ex.CAT_NO_ACCESS_PERMISSION):
            sess.collections.create(f"{zone.home}/alice_was_here")


def test_genquery_paging_over_1500_rows(session, workdir, tmp_path):
    phys = tmp_path / "p"
    phys.write_bytes(b"")
    for i in range(1500):
        session.data_objects.register(str(phys), f"{workdir}/obj{i:05d}", dataSize="0")
    query = session.query(DataObject.name).filter(Collection.name == workdir)
    names = [row[DataObject.name] for row in query]
    assert names == [f"obj{i:05d}" for i in range(1500)]
    batches = [len(batch) for batch in query.get_batches()]
    assert batches[:3] == [500, 500, 500] and not any(batches[3:])  # a full page always has a continuation
    counted = session.query(DataObject.id).filter(Collection.name == workdir).count(DataObject.id).one()
    assert int(counted[DataObject.id]) == 1500
    page = session.query(DataObject.name).filter(Collection.name == workdir).filter(
        Like(DataObject.name, "obj0149%")).all()
    assert len(page) == 10
    assert session.query(DataObject.name).filter(Collection.name == workdir + "/none").all().rows == []


def test_genquery_conditions(session, workdir, tmp_path):
    phys = tmp_path / "q"
    phys.write_bytes(b"")
    for name, size in (("a'quote", 1), ("b", 20), ("c", 300)):
        session.data_objects.register(str(phys), f"{workdir}/{name}", dataSize=str(size))

    def names(*criteria):
        query = session.query(DataObject.name).filter(Collection.name == workdir, *criteria)
        return [r[DataObject.name] for r in query]

    assert names(DataObject.size >= 20) == ["b", "c"]
    assert names(DataObject.name == "a'quote") == ["a'quote"]
    assert names(In(DataObject.name, ["b", "c"])) == ["b", "c"]
    ordered = session.query(DataObject.name).filter(Collection.name == workdir).order_by(
        DataObject.size, order="desc")
    assert [r[DataObject.name] for r in ordered] == ["c", "b", "a'quote"]


def _raw_request(session, api_number: int, body=None, bs: bytes = b""):
    message = iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number, bs=bs)
    with session.pool.get_connection() as conn:
        conn.send(message)
        return conn.recv()


def test_unknown_api_number(session):
    with pytest.raises(ex.SYS_UNMATCHED_API_NUM):
        _raw_request(session, 99999)


def test_single_buffer_data_obj_put(zone, session, workdir):
    data = os.urandom(3000)
    path = f"{workdir}/inline"

    def put(**options):
        keywords = StringStringMap({"dataIncluded": "", **options})  # what iput sends for a single buffer
        body = FileOpenRequest(objPath=path, createMode=0o644, openFlags=0, offset=0, dataSize=len(data),
                               numThreads=0, oprType=1, KeyValPair_PI=keywords)
        return _raw_request(session, 606, body, data)

    put(dataType="generic")
    obj = session.data_objects.get(path)
    assert obj.size == 3000 and obj.replicas[0].status == "1"
    with session.data_objects.open(path, "r") as f:
        assert f.read() == data
    with pytest.raises(ex.OVERWRITE_WITHOUT_FORCE_FLAG):
        put()
    put(forceFlag="", regChksum="")
    assert session.data_objects.get(path).checksum.startswith("sha2:")
    if zone.builtin:  # without dataIncluded a real server opens a parallel portal instead
        body = FileOpenRequest(objPath=path + "2", createMode=0o644, openFlags=0, offset=0, dataSize=len(data),
                               numThreads=0, oprType=1, KeyValPair_PI=StringStringMap({}))
        with pytest.raises(ex.SYS_NOT_SUPPORTED):
            _raw_request(session, 606, body, data)


def test_acl_grant_lets_another_user_read_and_write(zone, session, workdir, alice, tmp_path):
    from irods.access import iRODSAccess

    local = tmp_path / "shared"
    local.write_bytes(b"shared data")
    session.data_objects.put(str(local), f"{workdir}/shared")
    with _login(zone, user=alice, password="alicepw") as sess:
        with pytest.raises(ex.CAT_NO_ACCESS_PERMISSION):
            sess.data_objects.open(f"{workdir}/shared", "r")
    session.acls.set(iRODSAccess("read", f"{workdir}/shared", alice, zone.zone))
    session.acls.set(iRODSAccess("inherit", workdir))
    session.acls.set(iRODSAccess("write", workdir, alice, zone.zone))
    session.collections.create(f"{workdir}/inherited")
    with _login(zone, user=alice, password="alicepw") as sess:
        with sess.data_objects.open(f"{workdir}/shared", "r") as f:
            assert f.read() == b"shared data"
        sess.data_objects.put(str(local), f"{workdir}/inherited/by_alice")  # write inherited on the new collection
    names = {(a.user_name, a.access_name) for a in session.acls.get(session.data_objects.get(f"{workdir}/shared"))}
    assert (alice, "read_object") in names or (alice, "read object") in names


def test_user_changes_own_password(zone, alice):
    with _login(zone, user=alice, password="alicepw") as sess:
        sess.users.modify_password("alicepw", "newalicepw")
    with _login(zone, user=alice, password="newalicepw") as sess:
        assert sess.collections.get(f"/{zone.zone}/home/{alice}")
    with _login(zone, user=alice, password="alicepw") as sess, pytest.raises(ex.CAT_INVALID_AUTHENTICATION):
        sess.collections.get(f"/{zone.zone}/home/{alice}")
