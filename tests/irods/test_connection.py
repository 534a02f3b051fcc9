"""The per-rank connection: login errors, idle disconnect, one socket per session, reconnects."""

from __future__ import annotations

import logging
import pickle
import re
import socket
import threading
import time
import uuid

import pytest
from irods.models import Collection

from hpcingest.irods import (IrodsAgentRefused, IrodsAuthError, IrodsConnection, IrodsConnectionError, IrodsOperationError, RetryPolicy,
                             resolve_settings)
from hpcingest.irods import operations as ops
from hpcingest.zone.testing import start_zone

from .conftest import client_sockets_to, counted_requests, require_builtin, zone_environ

WRONG = "not-the-Password-42"


def variable_settings(zone, monkeypatch, user=None, password=None, port=None):
    monkeypatch.setenv("IRODS_PASSWORD", password or zone.password)
    return resolve_settings({"IRODS_HOST": zone.host, "IRODS_PORT": str(port or zone.port),
                             "IRODS_USER_NAME": user or zone.user, "IRODS_ZONE_NAME": zone.zone,
                             "IRODS_PASSWORD": "set"})


def home_exists(session):
    return len(session.query(Collection.id).filter(Collection.name == f"/{session.zone}/home/{session.username}").execute()) == 1


def test_a_wrong_password_is_an_auth_error_at_once(zone, monkeypatch):
    settings = variable_settings(zone, monkeypatch, password=WRONG)
    with IrodsConnection(settings) as conn:
        started = time.monotonic()
        with pytest.raises(IrodsAuthError) as info:
            conn.call(home_exists)
        assert time.monotonic() - started < 5
        assert conn.stats.retries == 0 and conn.open_connections() == 0
    text = str(info.value)
    assert "wrong password (CAT_INVALID_AUTHENTICATION)" in text and f"{zone.user}#{zone.zone}" in text
    assert WRONG not in text and WRONG not in repr(info.value) and info.value.__cause__ is None


def test_an_unknown_user_is_an_auth_error(zone, monkeypatch):
    settings = variable_settings(zone, monkeypatch, user=f"nobody_{uuid.uuid4().hex[:6]}")
    with IrodsConnection(settings) as conn, pytest.raises(IrodsAuthError, match="unknown user|wrong password"):
        conn.call(home_exists)


def test_the_session_is_opened_lazily_and_reused(zone, settings):
    baseline = client_sockets_to(zone.port)
    with IrodsConnection(settings) as conn:
        assert conn.open_connections() == 0 and client_sockets_to(zone.port) == baseline
        for _ in range(5):
            assert conn.call(home_exists)
        assert conn.stats.sessions_opened == 1 and conn.open_connections() == 1
        assert client_sockets_to(zone.port) == baseline + 1
        # connected with the short connect timeout, then waits long for slow replies
        assert conn.call(lambda s: [c.socket.gettimeout() for c in s.pool.idle]) == [conn.connection_timeout]
    assert client_sockets_to(zone.port) == baseline


def test_idle_disconnect_then_transparent_reconnect(zone, settings):
    baseline = client_sockets_to(zone.port)
    # idle long enough that a loaded machine does not reap the session before it is counted
    with IrodsConnection(settings, idle_disconnect_seconds=2.0) as conn:
        assert conn.call(home_exists)
        assert client_sockets_to(zone.port) == baseline + 1
        deadline = time.monotonic() + 30
        while conn.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.open_connections() == 0 and conn.stats.idle_disconnects == 1
        assert client_sockets_to(zone.port) == baseline  # the socket is really closed, not just dropped
        assert conn.call(home_exists)
        stats = conn.stats
        assert stats.sessions_opened == 2 and stats.reconnects == 0 and conn.open_connections() == 1


def test_one_tcp_connection_after_failures_and_parallel_puts(zone, settings, workdir, tmp_path):
    baseline = client_sockets_to(zone.port)
    small = tmp_path / "small"
    small.write_bytes(b"s" * 100)
    with IrodsConnection(settings) as conn:
        with pytest.raises(IrodsOperationError):
            conn.call(ops.put_file, str(small), f"{workdir}/missing/coll/small")
        with pytest.raises(IrodsOperationError):  # a failed open: PRC leaves its connection marked busy
            conn.call(ops.append_file, str(small), f"{workdir}/missing/coll/small", 0)
        assert conn.call(home_exists)
        assert conn.open_connections() == 1 and client_sockets_to(zone.port) == baseline + 1
        big = tmp_path / "big"
        with open(big, "wb") as out:
            out.truncate(33 * 1024 * 1024)
        assert conn.call(ops.put_file, str(big), f"{workdir}/big").method == "parallel"
        assert conn.open_connections() <= 1 and client_sockets_to(zone.port) <= baseline + 1
        assert conn.call(home_exists)
        assert conn.open_connections() == 1 and client_sockets_to(zone.port) == baseline + 1
        conn.cleanup()
        assert conn.open_connections() == 0 and client_sockets_to(zone.port) == baseline


def test_an_irods_error_is_never_retried(zone, connection, workdir, tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"data")
    expect_counts = zone.builtin
    with counted_requests(zone) if expect_counts else _nothing() as counts:
        with pytest.raises(IrodsOperationError) as info:
            connection.call(ops.register, str(source), f"{workdir}/no/such/f", 4, 0)
    error = info.value
    assert (error.name, error.code, error.after_retry) == ("CAT_UNKNOWN_COLLECTION", -814000, False)
    assert connection.stats.retries == 0
    if expect_counts:
        assert counts.get("PHY_PATH_REG_AN") == 1


class _nothing:
    def __enter__(self):
        return {}

    def __exit__(self, *_):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_settings(zone, monkeypatch, host="127.0.0.1", port=None):
    settings = variable_settings(zone, monkeypatch, port=port or _free_port())
    return type(settings)(**{**settings.__dict__, "host": host})


def gave_up_after(message: str) -> float:
    return float(re.search(r"gave up after (\d+) s", message).group(1))


def test_an_unreachable_zone_gives_up_after_the_budget_saying_why(zone, monkeypatch):
    policy = RetryPolicy(budget_seconds=1.0, first_delay=0.1, max_delay=0.4)
    with IrodsConnection(unreachable_settings(zone, monkeypatch), retry=policy) as conn:
        with pytest.raises(IrodsConnectionError) as info:
            conn.call(home_exists)
        stats = conn.stats
        assert stats.connection_losses >= 2 and stats.reconnects == 0 and stats.retries == 0
    message = str(info.value)
    assert message.startswith("cannot reach iRODS at rods#") and "lost the connection" not in message
    assert "connection refused" in message and "the budget is 1 s, --irods_retry_seconds" in message
    assert gave_up_after(message) <= 1


def _listener(backlog: int) -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    return listener


@pytest.fixture
def blackholed_port():
    """A port whose SYNs are dropped, like a firewall's: a listener whose accept queue is full."""
    listener = _listener(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    time.sleep(0.2)
    yield listener.getsockname()[1]
    for sock in [*fillers, listener]:
        sock.close()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word."""
    listener = _listener(16)
    accepted = []

    def accept_quietly() -> None:
        try:
            for _ in range(16):
                accepted.append(listener.accept())
        except OSError:
            pass  # the listener was closed at the end of the test

    threading.Thread(target=accept_quietly, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("kind, cause", [("blackholed", "no answer to connecting within"),
                                         ("silent", "connected, but no reply within")])
def test_the_budget_includes_the_connect_timeout(zone, monkeypatch, request, kind, cause):
    """A dropped SYN waits the whole connect timeout: that wait counts against the budget
    (it took budget + 30 s, and the message said "within 60 s")."""
    port = request.getfixturevalue(f"{kind}_port")
    connect_timeout = 120.0  # far longer than the budget: each connect must be cut to what is left
    started = time.monotonic()
    with IrodsConnection(unreachable_settings(zone, monkeypatch, port=port), connect_timeout=connect_timeout,
                         retry=RetryPolicy(budget_seconds=2.0, first_delay=0.1)) as conn:
        with pytest.raises(IrodsConnectionError) as info:
            conn.call(home_exists)
    assert time.monotonic() - started < connect_timeout  # not one whole connect timeout
    message = str(info.value)
    assert cause in message and gave_up_after(message) <= 2, message


def test_a_host_name_that_does_not_resolve_fails_at_once(zone, monkeypatch):
    settings = unreachable_settings(zone, monkeypatch, host="no-such-host.invalid")
    with IrodsConnection(settings, retry=RetryPolicy(budget_seconds=30)) as conn:
        with pytest.raises(IrodsConnectionError, match="no-such-host.invalid:.*the host name does not resolve"):
            conn.call(home_exists)
        assert conn.stats.connection_losses == 1  # no retries


def test_reconnect_across_a_zone_restart(zone, tmp_path):
    require_builtin(zone, "restarting the zone")
    root = tmp_path / "restartable"
    first = start_zone(root)
    port = first.port
    restarted = []
    try:
        settings = resolve_settings(zone_environ(first))
        with IrodsConnection(settings, retry=RetryPolicy(budget_seconds=30, first_delay=0.1)) as conn:
            coll = f"{first.home}/survives"
            assert conn.call(ops.ensure_collection, coll)
            first.stop()

            def restart():
                time.sleep(0.5)
                restarted.append(start_zone(root, port=port))

            helper = threading.Thread(target=restart)
            helper.start()
            assert conn.call(ops.ensure_collection, coll) is False  # same catalog, after a reconnect
            helper.join()
            stats = conn.stats
            assert stats.connection_losses >= 1 and stats.reconnects == 1 and stats.retries == 1
            assert stats.sessions_opened == 2
            assert conn.open_connections() == 1
    finally:
        first.stop()
        for again in restarted:
            again.stop()


def test_a_login_refused_for_capacity_is_named_and_retried_until_an_agent_is_free(zone, tmp_path, caplog):
    """The server past its database connections refuses new agents (a RODS_VERSION with
    CAT_NOT_OPEN); python-irodsclient only sees the socket close.  A refusal is named, counted,
    raised at once by connect() and retried by call() until another client leaves."""
    require_builtin(zone, "a zone with 1 database connection")
    full = start_zone(tmp_path / "full", max_db_connections=1)
    try:
        settings = resolve_settings(zone_environ(full))
        with IrodsConnection(settings) as holder, \
                IrodsConnection(settings, retry=RetryPolicy(budget_seconds=30, first_delay=0.1)) as waiting:
            holder.connect()
            with pytest.raises(IrodsAgentRefused, match=r"CAT_NOT_OPEN \(-824000\).*max_connections") as refused:
                waiting.connect()
            assert refused.value.code == -824000 and pickle.loads(pickle.dumps(refused.value)).code == -824000
            threading.Timer(0.5, holder.cleanup).start()  # the other client leaves
            with caplog.at_level(logging.WARNING, logger="hpcingest.irods.connection"):
                assert waiting.call(home_exists)
            assert "refused a new agent: CAT_NOT_OPEN" in caplog.text
            assert waiting.stats.agents_refused >= 2 and holder.stats.agents_refused == 0
    finally:
        full.stop()


def test_proxied_sessions_act_as_the_user(zone, plain, settings):
    name = f"carol_{uuid.uuid4().hex[:8]}"
    plain.users.create(name, "rodsuser")
    home = f"/{zone.zone}/home/{name}"
    try:
        with IrodsConnection(settings) as conn:
            assert conn.call(ops.ensure_collection, f"{home}/from_ingest", as_user=name)
            assert conn.call(home_exists) and conn.open_connections() == 2  # one session per identity
        owner = plain.query(Collection.owner_name).filter(Collection.name == f"{home}/from_ingest").one()
        assert owner[Collection.owner_name] == name
    finally:
        if plain.collections.exists(home):  # a non-empty home itself cannot be removed
            for sub in plain.collections.get(home).subcollections:
                sub.remove(recurse=True, force=True)
        plain.users.remove(name)


@pytest.fixture
def distinctive_user(plain):
    """A user whose password is found nowhere by chance (a zone's admin password may be its name)."""
    name, password = f"dana_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    plain.users.create(name, "rodsuser")
    plain.users.modify(name, "password", password)
    yield name, password
    plain.users.remove(name)


def test_no_secret_in_reprs_pickles_or_logs(zone, distinctive_user, monkeypatch, caplog):
    name, secret = distinctive_user
    settings = variable_settings(zone, monkeypatch, user=name, password=secret)
    caplog.set_level(logging.DEBUG)
    with IrodsConnection(settings, idle_disconnect_seconds=0.2) as conn:
        conn.call(home_exists)
        time.sleep(0.5)
        conn.call(home_exists)
        texts = [repr(conn), repr(settings), str(settings), settings.describe(), repr(conn.stats)]
        assert not any(secret in text for text in texts)
        assert secret.encode() not in pickle.dumps(settings)
    assert caplog.records and secret not in caplog.text
