"""Where the built-in zone was more lenient than iRODS 5.0.2, and now refuses as it does: path
registration by a rodsuser, removing a non-empty home, modDataObjMeta on all replicas, a vault
the server's account cannot reach; and how the catalog keeps passwords.

The tests that use the session's zone hold against a real zone too (its default policy)."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid

import pytest
from irods import exception as ex
from irods.models import Resource
from irods.session import iRODSSession

from hpcingest.irods.errors import operation_error
from hpcingest.zone.testing import start_zone

builtin_only = pytest.mark.skipif(
    bool(os.environ.get("IRODS_ENVIRONMENT_FILE")),
    reason="tests the built-in zone itself; IRODS_ENVIRONMENT_FILE points the suite at a real zone")


def _user_session(zone, name: str, password: str = "alicepw") -> iRODSSession:
    return iRODSSession(host=zone.host, port=zone.port, user=name, password=password, zone=zone.zone)


def _refusal(call) -> tuple[str, int]:
    """The server's error name and code (PRC 3.3.0 raises KeyError for codes it has no class for)."""
    with pytest.raises((ex.iRODSException, KeyError)) as info:
        call()
    error = operation_error(info.value)
    assert error is not None, info.value
    return error.name, error.code


def _local_file(directory: str, name: str, data: bytes = b"data") -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as out:
        out.write(data)
    return path


@pytest.fixture
def solo_resource(zone, session, world_dir):
    """A standalone storage resource whose vault the server's account can reach."""
    name = f"solo_{uuid.uuid4().hex[:8]}"
    session.resources.create(name, "unixfilesystem", _default_host(session, zone), os.path.join(world_dir, "vault"))
    yield name
    try:
        session.resources.remove(name)
    except ex.CAT_RESOURCE_NOT_EMPTY:
        pass


def _default_host(session, zone) -> str:
    """The host of the zone's default resource, where new vaults go too."""
    return session.query(Resource.location).filter(Resource.name == zone.default_resource).one()[Resource.location]


def test_a_rodsuser_may_not_register_in_place_under_the_default_policy(zone, session, alice, world_dir):
    home = f"/{zone.zone}/home/{alice}"
    physical = _local_file(world_dir, "f")
    os.makedirs(os.path.join(world_dir, "d"))
    _local_file(os.path.join(world_dir, "d"), "g")
    with _user_session(zone, alice) as own:
        assert _refusal(lambda: own.data_objects.register(physical, f"{home}/f", dataSize="4")) == \
            ("PATH_REG_NOT_ALLOWED", -129000)
        assert _refusal(lambda: own.collections.register(os.path.join(world_dir, "d"), f"{home}/d")) == \
            ("PATH_REG_NOT_ALLOWED", -129000)
        assert _refusal(lambda: own.data_objects.register(physical, f"{home}/f", dataSize="4",
                                                          noChkFilePerm="")) == ("SYS_NO_API_PRIV", -13000)
        own.data_objects.put(physical, f"{home}/put")  # the connection is fine, and PUT is allowed
        assert _refusal(lambda: own.data_objects.register(physical, f"{home}/put", dataSize="4", regRepl="")) == \
            ("PATH_REG_NOT_ALLOWED", -129000)
        assert not own.data_objects.exists(f"{home}/f") and not own.collections.exists(f"{home}/d")
    session.data_objects.register(physical, f"{home}/by_admin", dataSize="4")  # a rodsadmin may
    assert session.data_objects.get(f"{home}/by_admin").replicas[0].path == physical


@builtin_only
@pytest.mark.parametrize("subprocess_mode", [False, True], ids=["in-process", "cli"])
def test_a_zone_can_allow_path_registration_for_rodsusers(tmp_path, world_dir, subprocess_mode):
    zone = start_zone(tmp_path / "open", allow_path_registration=True, subprocess_mode=subprocess_mode)
    try:
        with zone.session() as admin:
            admin.users.create("bob", "rodsuser")
            admin.users.modify("bob", "password", "bobpw")
        physical = _local_file(world_dir, "f")
        with _user_session(zone, "bob", "bobpw") as bob:
            bob.data_objects.register(physical, f"/{zone.zone}/home/bob/f", dataSize="4")
            assert bob.data_objects.get(f"/{zone.zone}/home/bob/f").replicas[0].path == physical
    finally:
        zone.stop()


def test_removing_a_non_empty_home_collection_is_refused(zone, session, alice):
    home = f"/{zone.zone}/home/{alice}"
    session.collections.create(f"{home}/kept")
    assert _refusal(lambda: session.collections.remove(home, recurse=True, force=True)) == \
        ("CANT_RM_NON_EMPTY_HOME_COLL", -354000)
    assert session.collections.exists(f"{home}/kept")
    assert _refusal(lambda: session.users.remove(alice)) == ("CAT_COLLECTION_NOT_EMPTY", -821000)


def test_mod_data_obj_meta_on_all_replicas_leaves_one_good(zone, session, workdir, world_dir, solo_resource):
    path = f"{workdir}/two"
    session.data_objects.register(_local_file(world_dir, "a"), path, dataSize="4")
    session.data_objects.register(_local_file(world_dir, "b"), path, dataSize="4", regRepl="",
                                  destRescName=solo_resource)
    session.data_objects.modDataObjMeta({"objPath": path}, {"dataSize": "9", "allReplStatus": "1"})
    replicas = sorted(session.data_objects.get(path).replicas, key=lambda r: r.number)
    assert [r.size for r in replicas] == [9, 9]
    # each replica in turn is made the good one and the others stale: one good replica remains
    assert sorted(r.status for r in replicas) == ["0", "1"]
    if zone.builtin:
        assert [r.status for r in replicas] == ["0", "1"]


@builtin_only
def test_a_vault_the_zones_account_cannot_reach_fails_creates_as_unixfilesystem_does(tmp_path, world_dir):
    if os.geteuid() != 0:
        pytest.skip("running the zone under a service account needs root")
    zone = start_zone(os.path.join(world_dir, "zone"), service_account="nobody")
    private = tmp_path / "private"  # tmp_path is private to root
    try:
        with zone.session() as admin:
            host = _default_host(admin, zone)
            admin.resources.create("unreachable", "unixfilesystem", host, str(private / "vault"))
            admin.resources.create("reachable", "unixfilesystem", host, os.path.join(world_dir, "new", "vault"))
            assert not private.exists()  # creating a resource does not touch its vault
            source = _local_file(world_dir, "src")
            assert _refusal(lambda: admin.data_objects.put(source, f"{zone.home}/x", destRescName="unreachable")) \
                == ("UNIX_FILE_GET_FS_FREESPACE_ERR", -526013)
            admin.data_objects.put(source, f"{zone.home}/y", destRescName="reachable")
            vault_file = admin.data_objects.get(f"{zone.home}/y").replicas[0].path
            assert os.stat(vault_file).st_uid == 65534  # made by the zone's own account
            assert _refusal(lambda: admin.data_objects.register(str(private / "f"), f"{zone.home}/z",
                                                                regChksum="")) == ("UNIX_FILE_STAT_ERR", -516013)
    finally:
        zone.stop()


@builtin_only
def test_the_catalog_keeps_passwords_obfuscated_in_a_private_root(tmp_path):
    root = tmp_path / "private_zone"
    admin_secret, user_secret = "Admin-Secret-91c2", "User-Secret-55ab"
    zone = start_zone(root, password=admin_secret)
    try:
        with zone.session() as admin:
            admin.users.create("carol", "rodsuser")
            admin.users.modify("carol", "password", user_secret)
        with _user_session(zone, "carol", user_secret) as carol:
            carol.collections.get(f"/{zone.zone}/home/carol")
    finally:
        zone.stop()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    for name in ("catalog.key", "catalog.sqlite"):
        assert stat.S_IMODE(os.stat(root / name).st_mode) == 0o600
    for name in os.listdir(root):
        if os.path.isfile(root / name):
            content = (root / name).read_bytes()
            assert admin_secret.encode() not in content and user_secret.encode() not in content, name
    with sqlite3.connect(root / "catalog.sqlite") as db:
        stored = [row[0] for row in db.execute("SELECT rcat_password FROM r_user_password")]
    assert len(stored) == 2 and all(value.startswith(".E_") for value in stored)
    again = start_zone(root, password=admin_secret)  # the key survives a restart
    try:
        with _user_session(again, "carol", user_secret) as carol:
            carol.collections.get(f"/{again.zone}/home/carol")
    finally:
        again.stop()


@builtin_only
def test_a_catalog_with_plain_passwords_is_obfuscated_on_start(tmp_path):
    root = tmp_path / "old_zone"
    start_zone(root, password="rods").stop()
    with sqlite3.connect(root / "catalog.sqlite") as db:  # as a catalog from before kept it
        db.execute("UPDATE r_user_password SET rcat_password = 'rods'")
    zone = start_zone(root, password="rods")
    try:
        with zone.session() as admin:
            admin.collections.get(zone.home)
    finally:
        zone.stop()
    with sqlite3.connect(root / "catalog.sqlite") as db:
        assert all(row[0].startswith(".E_") for row in db.execute("SELECT rcat_password FROM r_user_password"))


@builtin_only
def test_a_shared_directory_is_not_taken_as_a_root(tmp_path, capsys):
    from hpcingest.zone import cli

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "someone_elses_file").write_text("x")
    os.chmod(shared, 0o755)
    assert cli.main(["--root", str(shared), "--port", "0"]) == 1
    assert "not a zone root" in capsys.readouterr().err
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755


def test_removing_a_registered_object_unregisters_it_and_keeps_its_file(zone, session, workdir, world_dir):
    physical = _local_file(world_dir, "keep")
    session.data_objects.register(physical, f"{workdir}/keep", dataSize="4")
    session.data_objects.unlink(f"{workdir}/keep", force=True)
    assert not session.data_objects.exists(f"{workdir}/keep") and os.path.exists(physical)
    session.collections.create(f"{workdir}/sub")
    session.data_objects.register(physical, f"{workdir}/sub/keep", dataSize="4")
    session.data_objects.put(physical, f"{workdir}/sub/copy")
    vault_file = session.data_objects.get(f"{workdir}/sub/copy").replicas[0].path
    session.collections.remove(f"{workdir}/sub", recurse=True, force=True)
    assert os.path.exists(physical)  # outside the vault: unregistered only
    if zone.builtin:  # the test cannot see a real server's vault
        assert not os.path.exists(vault_file)  # in the vault: deleted


def test_paths_past_max_name_len_are_refused_and_a_long_file_path_is_cut(session, workdir, world_dir):
    """iRODS 5.0.2 unpacks ``str objPath[MAX_NAME_LEN]`` / ``collName`` and refuses a string that
    does not fit with its NUL (USER_PACKSTRUCT_INPUT_ERR, packStruct.cpp unpackXmlString) before
    the API runs; a register's filePath is a keyword of any length, copied into a MAX_NAME_LEN
    buffer by rstrcpy: cut to 1,087 bytes and registered so when dataSize is given."""
    fits = f"{workdir}/" + "c" * (1087 - len(workdir) - 1)
    session.collections.create(fits)
    assert session.collections.exists(fits)
    assert _refusal(lambda: session.collections.create(fits + "x")) == ("USER_PACKSTRUCT_INPUT_ERR", -308000)
    assert _refusal(lambda: session.data_objects.register(_local_file(world_dir, "f"), fits + "x", dataSize="4")) \
        == ("USER_PACKSTRUCT_INPUT_ERR", -308000)
    deep = os.path.join(world_dir, *["p" * 200] * 6)
    os.makedirs(deep)
    physical = _local_file(deep, "file")
    assert len(physical) > 1087
    session.data_objects.register(physical, f"{workdir}/cut", dataSize="4")
    assert session.data_objects.get(f"{workdir}/cut").replicas[0].path == physical[:1087]


def test_a_data_name_past_the_catalogs_1000_characters_is_a_sql_error(session, workdir, world_dir):
    """r_data_main.data_name is varchar(1000): a name of 1,001-1,087 bytes fits the path buffers,
    and PostgreSQL refuses the row, which iRODS 5.0.2 answers with CAT_SQL_ERR, whether the object
    is registered or renamed to it; 1,000 characters fit, whatever their bytes.  (Registered, not
    uploaded: a unixfilesystem vault cannot create a file of such a name, NAME_MAX being 255 bytes;
    an S3 resource can, and S3 keys run to 1,024 bytes.)"""
    fits, past = f"{workdir}/" + "n" * 990 + "é" * 10, f"{workdir}/" + "n" * 1001  # 1,010 bytes fit: 1,000 characters
    assert len(past.encode()) < 1088 and len(fits.encode()) < 1088  # both paths fit MAX_NAME_LEN
    local = _local_file(world_dir, "long")
    session.data_objects.register(local, fits, dataSize="4")
    assert session.data_objects.exists(fits)
    assert _refusal(lambda: session.data_objects.register(local, past, dataSize="4")) == ("CAT_SQL_ERR", -806000)
    assert _refusal(lambda: session.data_objects.move(fits, past)) == ("CAT_SQL_ERR", -806000)
    assert session.data_objects.exists(fits) and not session.data_objects.exists(past)
