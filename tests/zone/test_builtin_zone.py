"""Properties of the built-in zone itself: restart persistence, concurrency, bad input, the CLI,
API accounting, the reported version and the added latency."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest
from irods import exception as ex
from irods.column import Like
from irods.models import Collection, DataObject

from hpcingest.zone import cli
from hpcingest.zone.testing import start_zone

builtin_only = pytest.mark.skipif(
    bool(os.environ.get("IRODS_ENVIRONMENT_FILE")),
    reason="tests the built-in zone itself; IRODS_ENVIRONMENT_FILE points the suite at a real zone")


@builtin_only
def test_catalog_survives_restart(tmp_path):
    root = tmp_path / "persist"
    zone = start_zone(root)
    local = tmp_path / "f"
    local.write_bytes(b"persist me")
    try:
        with zone.session() as sess:
            sess.collections.create(f"{zone.home}/keep/sub")
            sess.data_objects.put(str(local), f"{zone.home}/keep/f")
            sess.data_objects.get(f"{zone.home}/keep/f").metadata.add("k", "v")
            sess.users.create("persisted_user", "rodsuser")
    finally:
        zone.stop()
    again = start_zone(root)
    try:
        with again.session() as sess:
            obj = sess.data_objects.get(f"{again.home}/keep/f")
            assert obj.size == 10 and obj.metadata["k"].value == "v"
            assert sess.collections.exists(f"{again.home}/keep/sub")
            assert sess.users.get("persisted_user").type == "rodsuser"
            with sess.data_objects.open(obj.path, "r") as f:
                assert f.read() == b"persist me"
            sess.collections.create(f"{again.home}/new")  # ids keep advancing without clashes
            sess.data_objects.put(str(local), f"{again.home}/new/f2")
    finally:
        again.stop()


def test_32_concurrent_clients_leave_a_consistent_catalog(zone, workdir, tmp_path):
    clients, per_client = 32, 6
    local = tmp_path / "c"
    local.write_bytes(b"0123456789")
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with zone.session() as sess:
                sub = f"{workdir}/c{index:02d}"
                sess.collections.create(sub)
                for i in range(per_client):
                    sess.data_objects.put(str(local), f"{sub}/put{i}")
                    sess.data_objects.register(str(local), f"{sub}/reg{i}", dataSize="10")
                    sess.data_objects.register(str(local), f"{workdir}/shared_{index}_{i}", dataSize="10")
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    with zone.session() as sess:
        rows = list(sess.query(Collection.name, DataObject.name, DataObject.size, DataObject.replica_status)
                    .filter(Like(Collection.name, f"{workdir}%")))
    assert len(rows) == clients * per_client * 3
    assert len({(r[Collection.name], r[DataObject.name]) for r in rows}) == len(rows)
    assert all(r[DataObject.size] == 10 and r[DataObject.replica_status] == "1" for r in rows)
    if zone.builtin:
        with sqlite3.connect(os.path.join(zone.root, "catalog.sqlite")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _send(sock: socket.socket, msg_type: str, body: bytes = b"", int_info: int = 0) -> None:
    header = (f"<MsgHeader_PI><type>{msg_type}</type><msgLen>{len(body)}</msgLen><errorLen>0</errorLen>"
              f"<bsLen>0</bsLen><intInfo>{int_info}</intInfo></MsgHeader_PI>").encode()
    sock.sendall(struct.pack(">I", len(header)) + header + body)


_READERS: dict[int, object] = {}


def _recv(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one reply; one buffered reader per socket, since a reader may read ahead."""
    stream = _READERS.setdefault(sock.fileno(), sock.makefile("rb"))
    (length,) = struct.unpack(">I", stream.read(4))
    header = stream.read(length)
    msg_len = int(header.split(b"<msgLen>")[1].split(b"<")[0])
    error_len = int(header.split(b"<errorLen>")[1].split(b"<")[0])
    bs_len = int(header.split(b"<bsLen>")[1].split(b"<")[0])
    body = stream.read(msg_len)
    stream.read(error_len + bs_len)
    return header, body


def _startup(zone) -> tuple[socket.socket, bytes]:
    """A raw connection past RODS_CONNECT, and the server's RODS_VERSION reply body."""
    sock = socket.create_connection((zone.host, zone.port))
    sock.settimeout(120)  # a safety net against a hung test, not a performance limit
    _READERS.pop(sock.fileno(), None)
    startup = (f"<StartupPack_PI><irodsProt>1</irodsProt><connectCnt>0</connectCnt><proxyUser>{zone.user}"
               f"</proxyUser><proxyRcatZone>{zone.zone}</proxyRcatZone><clientUser>{zone.user}</clientUser>"
               f"<clientRcatZone>{zone.zone}</clientRcatZone><relVersion>rods4.3.4</relVersion>"
               f"<apiVersion>d</apiVersion><option>raw</option></StartupPack_PI>").encode()
    _send(sock, "RODS_CONNECT", startup)
    header, body = _recv(sock)
    assert b"RODS_VERSION" in header and b"<intInfo>0</intInfo>" in header
    return sock, body


def _connected(zone) -> socket.socket:
    sock, body = _startup(zone)
    assert b"<status>0</status>" in body
    return sock


def _still_serving(zone) -> None:
    with zone.session() as sess:
        assert sess.collections.get(zone.home).path == zone.home


@pytest.mark.parametrize("payload", [
    struct.pack(">I", 0x7FFFFFFF) + b"<MsgHeader_PI>",  # over-long length prefix
    struct.pack(">I", 5) + b"junk!",  # a header that is not one
    b"\x00\x00",  # disconnect inside the length prefix
])
def test_garbage_before_handshake_drops_only_that_connection(zone, payload):
    with socket.create_connection((zone.host, zone.port)) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(30)
        try:
            sock.recv(100)
        except OSError:
            pass
    _still_serving(zone)


def test_disconnect_mid_message_and_malformed_bodies(zone, session, workdir):
    before = len(list(session.query(Collection.name)))
    with _connected(zone) as sock:  # promise 1000 body bytes, send 10, vanish
        header = (b"<MsgHeader_PI><type>RODS_API_REQ</type><msgLen>1000</msgLen><errorLen>0</errorLen>"
                  b"<bsLen>0</bsLen><intInfo>681</intInfo></MsgHeader_PI>")
        sock.sendall(struct.pack(">I", len(header)) + header + b"<CollInpNe")
    with _connected(zone) as sock:  # an API before login is refused, the connection stays usable
        _send(sock, "RODS_API_REQ", b"<CollInpNew_PI><collName>/x</collName></CollInpNew_PI>", 681)
        header, _ = _recv(sock)
        assert b"<intInfo>-13000</intInfo>" in header
        _send(sock, "RODS_API_REQ", b"<not xml at all", 702)
        header, _ = _recv(sock)
        assert b"<intInfo>-" in header
    _still_serving(zone)
    assert len(list(session.query(Collection.name))) == before


@builtin_only
def test_pipelined_requests_are_answered_in_order(zone):
    with _connected(zone) as sock:
        burst = 3000
        header = (b"<MsgHeader_PI><type>RODS_API_REQ</type><msgLen>0</msgLen><errorLen>0</errorLen>"
                  b"<bsLen>0</bsLen><intInfo>702</intInfo></MsgHeader_PI>")
        sock.sendall((struct.pack(">I", len(header)) + header) * burst)
        for _ in range(burst):
            reply_header, _ = _recv(sock)
            assert b"<intInfo>-13000</intInfo>" in reply_header
    _still_serving(zone)


def test_dropped_writer_leaves_a_stale_unlocked_replica(zone, session, workdir):
    path = f"{workdir}/abandoned"
    with zone.session() as writer:
        handle = writer.data_objects.open(path, "w")
        handle.write(b"partial")
        handle.flush()
        # the connection goes away without DATA_OBJ_CLOSE, as when a client process dies
        for conn in list(writer.pool.active):
            conn.socket.close()
        writer.pool.active.clear()
    for _ in range(200):
        replica = session.data_objects.get(path).replicas[0]
        if replica.status != "2":
            break
        time.sleep(0.05)
    assert replica.status == "0"
    with session.data_objects.open(path, "w") as again:  # no lock is left behind
        again.write(b"complete")
    assert session.data_objects.get(path).replicas[0].status == "1"


def test_reported_version_and_5x_fields(tmp_path):
    zone = start_zone(tmp_path / "v5", version="5.0.2")
    local = tmp_path / "f"
    local.write_bytes(b"five")
    try:
        with zone.session() as sess:
            assert sess.server_version == (5, 0, 2)
            sess.data_objects.put(str(local), f"{zone.home}/f")
            sess.data_objects.modDataObjMeta({"objPath": f"{zone.home}/f"}, {"dataSize": 4})
            obj = sess.data_objects.get(f"{zone.home}/f")
            assert obj.size == 4 and obj.replicas[0].access_time is not None
    finally:
        zone.stop()


@builtin_only
def test_api_stats_and_latency(tmp_path):
    zone = start_zone(tmp_path / "slow", latency_ms=30)
    try:
        with zone.session() as sess:
            started = time.perf_counter()
            sess.collections.get(zone.home)
            assert time.perf_counter() - started >= 0.03
        stats = zone.api_stats()
        assert stats["702"]["name"] == "GEN_QUERY_AN" and stats["702"]["count"] >= 1
        assert stats["110000"]["count"] >= 2 and 0 < stats["702"]["total_seconds"]  # latency is not service time
    finally:
        zone.stop()
    with open(tmp_path / "slow" / "api_stats.json", encoding="utf-8") as source:
        assert json.load(source)["702"]["count"] >= 1


@builtin_only
@pytest.mark.parametrize("model", ["latency", "service"])
def test_latency_delays_replies_but_a_busy_agent_holds_the_next_request(tmp_path, model):
    """--latency-ms is a slow network: requests already in the server's socket go on being
    served while a reply travels.  --service-ms is a slow agent: the next request waits."""
    from irods.api_number import api_number
    from irods.message import CollectionRequest, StringStringMap, iRODSMessage

    requests = 5
    zone = start_zone(tmp_path / model, **{f"{model}_ms": 400.0})
    try:
        with zone.session() as sess, sess.pool.get_connection() as conn:
            for i in range(requests):  # pipelined: all sent before any reply is read
                body = CollectionRequest(collName=f"{zone.home}/c{i}", KeyValPair_PI=StringStringMap({}))
                conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number["COLL_CREATE_AN"]))
            conn.recv()
            served_at_first_reply = zone.api_stats()[str(api_number["COLL_CREATE_AN"])]["count"]
            for _ in range(requests - 1):
                conn.recv()
        if model == "latency":
            assert served_at_first_reply == requests
        else:
            assert served_at_first_reply < requests
    finally:
        zone.stop()


@builtin_only
def test_the_agent_past_the_catalogs_database_connections_is_refused_as_irods_refuses_it(tmp_path):
    """Every agent holds a database connection; iRODS 5.0.2 answers the connection whose agent
    cannot get one with a RODS_VERSION carrying CAT_NOT_OPEN and closes it, so python-irodsclient's
    login fails on the closed socket.  An agent that goes frees its database connection."""
    zone = start_zone(tmp_path / "full", max_db_connections=2)
    try:
        with zone.session() as first, zone.session() as second:
            first.collections.get(zone.home)
            second.collections.get(zone.home)
            with zone.session() as third, pytest.raises(ex.NetworkException):
                third.collections.get(zone.home)
            sock, version = _startup(zone)
            with sock:
                assert b"<status>-824000</status>" in version
                assert sock.recv(1) == b""  # the agent is gone
            assert zone.api_stats()["agent_refused"]["count"] == 2
            first.cleanup()  # one agent goes: its database connection is free again
            with zone.session() as fourth:
                assert fourth.collections.get(zone.home).path == zone.home
    finally:
        zone.stop()


@builtin_only
@pytest.mark.parametrize("cores", [1, 2])
def test_cores_bound_the_requests_in_service_at_once(tmp_path, cores):
    """--cores models a busy server: with 4 connections each waiting for one 200 ms request, the
    last reply comes after 4 services on one core, after 2 on two."""
    from irods.api_number import api_number
    from irods.message import CollectionRequest, StringStringMap, iRODSMessage

    zone = start_zone(tmp_path / f"cores{cores}", service_ms=200.0, cores=cores)
    try:
        sessions = [zone.session() for _ in range(4)]
        connections = [s.pool.get_connection() for s in sessions]  # logged in before the clock starts
        started = time.perf_counter()
        for i, conn in enumerate(connections):
            body = CollectionRequest(collName=f"{zone.home}/core{i}", KeyValPair_PI=StringStringMap({}))
            conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number["COLL_CREATE_AN"]))
        for conn in connections:
            conn.recv()
        assert time.perf_counter() - started >= 0.2 * 4 / cores
        for conn, sess in zip(connections, sessions):
            conn.release()
            sess.cleanup()
    finally:
        zone.stop()


@builtin_only
def test_subprocess_zone_cli_signals_and_password_privacy(tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    zone = start_zone(tmp_path / "sub", subprocess_mode=True, password=secret)
    try:
        with open(f"/proc/{zone.pid}/cmdline", "rb") as source:
            assert secret.encode() not in source.read()
        env = dict(os.environ, **zone.environ())
        code = ("from irods.session import iRODSSession; import os\n"
                "with iRODSSession(irods_env_file=os.environ['IRODS_ENVIRONMENT_FILE']) as s:\n"
                "    print(s.collections.get('/tempZone/home/rods').path)\n")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "/tempZone/home/rods"
        assert zone.api_stats()["110000"]["count"] >= 2
        with open(zone.env_file, encoding="utf-8") as source:
            env_json = json.load(source)
        assert env_json["irods_port"] == zone.port and env_json["irods_host"] == "localhost"
        os.kill(zone.pid, signal.SIGTERM)
        assert zone.wait() == 0  # a clean exit on SIGTERM
    finally:
        zone.stop()
    assert os.path.exists(tmp_path / "sub" / "api_stats.json")


@builtin_only
def test_cli_rejects_bad_input_without_traceback(tmp_path, capsys):
    assert cli.main(["--root", str(tmp_path)]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "70000"]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "0", "--version", "9.9.9"]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "0", "--log-level", "loud"]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "0", "--latency-ms", "-1"]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "0", "--cores", "-1"]) == 2
    assert cli.main(["--root", str(tmp_path), "--port", "0", "--max-db-connections", "0"]) == 2
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        assert cli.main(["--root", str(tmp_path / "r"), "--port", str(blocker.getsockname()[1])]) == 1
    finally:
        blocker.close()
    assert cli.main(["--root", "/proc/forbidden/zone", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot start" in err


def test_unknown_collection_errors(zone, session, workdir):
    with pytest.raises(ex.CAT_UNKNOWN_COLLECTION):
        session.collections.remove(f"{workdir}/none", recurse=True, force=True)
