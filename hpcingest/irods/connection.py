"""One persistent, self-healing iRODS session per rank (and per proxied user).

An ingest rank makes thousands of small calls, so it must not pay a TCP connect and a login per
file; but a rank that idles (waiting for work, or for the other ranks) must not pin a server agent
either, and a server restart in the middle of a multi-hour job must not kill it.  Hence:

* sessions are opened on first need and closed after ``idle_disconnect_seconds`` without use,
  by a small reaper thread, and reopened transparently on the next call;
* a call that loses its connection is re-sent on a fresh session, with bounded exponential
  backoff, while an iRODS error code is never retried (it is the caller's per-file failure) and
  an authentication failure is raised at once;
* calls are serialized, and after each one the session is trimmed back to at most one TCP
  connection, because PRC's pool silently grows (a parallel put opens several connections, and an
  open that fails leaves its connection marked busy forever).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from hpcingest import waits

from . import refusal, timing
from .errors import (IrodsAgentRefused, IrodsConnectionError, auth_error, is_auth_failure, is_connection_lost,
                     operation_error, refusal_in)
from .settings import IrodsSettings

if TYPE_CHECKING:
    from irods.session import iRODSSession


def load_client() -> None:
    """Import python-irodsclient now: for a rank that will connect before the others can go
    on (it checks the login and the target while they wait), better while they are still
    starting up themselves.  Other ranks load it only if and when they connect."""
    import irods.session  # noqa: F401

log = logging.getLogger(__name__)

T = TypeVar("T")
Identity = tuple[str, str]


@dataclass(frozen=True)
class RetryPolicy:
    """How long a rank keeps trying to reach the zone before it gives the call up."""

    budget_seconds: float = 60.0
    first_delay: float = 0.25
    max_delay: float = 8.0
    factor: float = 2.0

    def delays(self):
        delay = self.first_delay
        while True:
            yield delay
            delay = min(self.max_delay, delay * self.factor)


@dataclass
class ConnectionStats:
    """Counters for the job summary."""

    sessions_opened: int = 0
    connection_losses: int = 0  # calls that failed on the transport
    reconnects: int = 0  # sessions re-established after a loss
    retries: int = 0  # calls re-sent after a loss (the server may have seen the first one)
    idle_disconnects: int = 0
    calls: int = 0
    agents_refused: int = 0  # logins the server answered without starting an agent


class _Backoff:
    """Exponential delays until the budget is spent.  The budget is counted from the start
    of the first failed attempt (its connect included) and every later connect is cut to
    what is left of it, so giving up takes the budget, not the budget plus a connect
    timeout (a dropped SYN waits the whole timeout)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._delays = policy.delays()
        self.budget = policy.budget_seconds
        self.started: float | None = None
        self.attempts = 0

    def failed(self, attempt_started: float) -> None:
        if self.started is None:
            self.started = attempt_started

    def next_delay(self) -> float | None:
        assert self.started is not None
        self.attempts += 1
        delay = next(self._delays)
        return None if time.monotonic() + delay >= self.started + self.budget else delay

    def connect_timeout(self, limit: float) -> float:
        """The next connect's timeout: ``limit``, but never past the end of the budget."""
        if self.started is None:
            return min(limit, self.budget)
        return max(0.05, min(limit, self.started + self.budget - time.monotonic()))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - (self.started or time.monotonic())


class _Slot:
    __slots__ = ("session", "last_used")

    def __init__(self, session: iRODSSession) -> None:
        self.session = session
        self.last_used = time.monotonic()


class IrodsConnection:
    """Runs ``fn(session, ...)`` on this rank's session, reconnecting and retrying on dropped links."""

    def __init__(self, settings: IrodsSettings, idle_disconnect_seconds: float | None = 60.0,
                 client_user: str | None = None, client_zone: str | None = None,
                 retry: RetryPolicy | None = None, connection_timeout: float = 600.0,
                 connect_timeout: float = 30.0, application_name: str = "hpcingest") -> None:
        self.settings = settings
        self.idle_disconnect_seconds = idle_disconnect_seconds
        self.retry = retry or RetryPolicy()
        self.connection_timeout = connection_timeout
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self._default_identity = (client_user or settings.user, client_zone or settings.zone)
        self._slots: dict[Identity, _Slot] = {}
        self._stats = ConnectionStats()
        self._lock = threading.Condition(threading.RLock())
        self._reaper: threading.Thread | None = None
        self._closed = False
        self._reached = False  # a session was ever opened: failures since are losses, not "unreachable"
        self._last_connect_timeout = connect_timeout

    # ------------------------------------------------------------------------------------------
    # public

    @property
    def stats(self) -> ConnectionStats:
        with self._lock:
            return replace(self._stats)

    def call(self, fn: Callable[..., T], /, *args: Any, as_user: str | None = None, as_zone: str | None = None,
             **kwargs: Any) -> T:
        """``fn(session, *args, **kwargs)``; ``as_user`` runs it as that user through a proxied session.

        ``fn`` must not keep connections busy after it returns (close what it opens).
        """
        identity = self._identity(as_user, as_zone)
        backoff = _Backoff(self.retry)
        sends = 0
        lost = False
        first_loss = 0.0
        with self._lock:
            self._stats.calls += 1
            while True:
                if self._closed:
                    raise IrodsConnectionError("this IrodsConnection has been closed")
                attempt_started = time.monotonic()
                try:
                    session = self._session_for(identity, backoff.connect_timeout(self.connect_timeout))
                    if lost:
                        self._stats.reconnects += 1
                        lost = False
                    sends += 1
                    if sends > 1:
                        self._stats.retries += 1
                    try:
                        return fn(session, *args, **kwargs)
                    finally:
                        self._after_use(identity)
                except Exception as exc:  # classified below; anything unknown is re-raised untouched
                    self._classify(exc, identity, after_retry=sends > 1)
                    lost = True
                    self._stats.connection_losses += 1
                    self._stats.agents_refused += refusal_in(exc) is not None
                    self._discard(identity)
                    backoff.failed(attempt_started)
                    cause = unreachable_cause(exc, self._last_connect_timeout)
                    delay = None if cause.permanent and not self._reached else backoff.next_delay()
                    if delay is None:
                        raise IrodsConnectionError(self._gave_up(identity, cause, backoff)) from exc
                    if backoff.attempts == 1:
                        log.warning("%s %s: %s; retrying for up to %g s", "lost the connection to" if self._reached
                                    else "cannot reach iRODS at", self._where(identity), cause.text, self.retry.budget_seconds)
                    else:
                        log.debug("iRODS at %s still unreachable: %s; next try in %.2f s", self._where(identity),
                                  cause.text, delay)
                    first_loss = first_loss or time.time()
                    with waits.board.waiting(f"iRODS at {self._where(identity)}, retrying: {cause.text}", first_loss):
                        self._lock.wait(delay)  # releases the lock so the reaper is never starved

    def connect(self) -> None:
        """Log in now, once, without retrying: how a rank learns at the start of a pass whether
        the server gives it an agent (raises IrodsAgentRefused when not; the session is kept)."""
        identity = self._default_identity
        with self._lock:
            try:
                self._session_for(identity, self.connect_timeout)
            except IrodsAgentRefused:
                self._stats.agents_refused += 1
                raise
            except Exception as exc:
                self._classify(exc, identity, after_retry=False)  # authentication and iRODS errors
                raise IrodsConnectionError(f"cannot reach {self._where(identity)}: {exc}") from exc

    def _gave_up(self, identity: Identity, cause: "UnreachableCause", backoff: _Backoff) -> str:
        what = "lost the connection to" if self._reached else "cannot reach iRODS at"
        if cause.permanent and not self._reached:
            return f"{what} {self._where(identity)}: {cause.text}"
        return (f"{what} {self._where(identity)}: {cause.text}; gave up after {backoff.elapsed:.0f} s "
                f"({backoff.attempts} attempts; the budget is {backoff.budget:g} s, --irods_retry_seconds)")

    def _classify(self, exc: Exception, identity: Identity, after_retry: bool) -> None:
        """Raise the right error for anything but a lost connection (which the caller recovers from)."""
        if is_auth_failure(exc):
            self._discard(identity)
            raise auth_error(exc, self._where(identity)) from None
        if not is_connection_lost(exc):
            failure = operation_error(exc, after_retry=after_retry)
            if failure is None:
                raise exc
            raise failure from exc

    def open_connections(self) -> int:
        """TCP connections currently held by this rank's sessions (for tests and diagnostics)."""
        with self._lock:
            return sum(len(slot.session.pool.active | slot.session.pool.idle) for slot in self._slots.values())

    def cleanup(self) -> None:
        """Close every session's sockets now; the next call reconnects."""
        with self._lock:
            for identity in list(self._slots):
                self._discard(identity)

    def close(self) -> None:
        """Clean up and stop the reaper; later calls fail."""
        with self._lock:
            self.cleanup()
            self._closed = True
            self._lock.notify_all()
        reaper = self._reaper
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join()

    def __enter__(self) -> IrodsConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IrodsConnection({self.settings.describe()}, sessions={len(self._slots)})"

    # ------------------------------------------------------------------------------------------
    # sessions

    def _identity(self, as_user: str | None, as_zone: str | None) -> Identity:
        if as_user is None:
            return self._default_identity
        return (as_user, as_zone or self.settings.zone)

    def _where(self, identity: Identity) -> str:
        user, zone = identity
        proxy = "" if identity == (self.settings.user, self.settings.zone) else f" acting as {user}#{zone}"
        return self.settings.describe() + proxy

    def _session_for(self, identity: Identity, connect_timeout: float) -> iRODSSession:
        slot = self._slots.get(identity)
        if slot is not None and self._idle_expired(slot, time.monotonic()):
            self._discard(identity)
            self._stats.idle_disconnects += 1
            slot = None
        if slot is None:
            slot = _Slot(self._open_session(identity, connect_timeout))
            self._slots[identity] = slot
            self._stats.sessions_opened += 1
            self._reached = True
            self._start_reaper()
        slot.last_used = time.monotonic()
        return slot.session

    def _open_session(self, identity: Identity, connect_timeout: float) -> iRODSSession:
        """A session with its one connection already logged in, so login errors surface here."""
        timing.install()  # every session this package opens feeds the per-API latencies
        refusal.install()  # a server that starts no agent says so, instead of looking like a network failure
        user, zone = identity
        options: dict[str, Any] = {}
        if identity != (self.settings.user, self.settings.zone):
            options.update(client_user=user, client_zone=zone)
        self._last_connect_timeout = connect_timeout
        session = self.settings.new_session(connection_timeout=connect_timeout,
                                            application_name=self.application_name, **options)
        try:
            session.pool.get_connection().release()
        except BaseException:
            _close_session(session)
            raise
        # PRC has one timeout for connecting and for each reply; a dead host should fail fast, but a
        # server busy checksumming a large file must not be mistaken for a lost connection.
        session.connection_timeout = self.connection_timeout
        return session

    def _after_use(self, identity: Identity) -> None:
        slot = self._slots.get(identity)
        if slot is None:
            return
        slot.last_used = time.monotonic()
        pool = slot.session.pool
        with pool._lock:
            busy, idle = len(pool.active), len(pool.idle)
        if busy or idle > 1:
            # Extra connections came from a parallel transfer (whose pooled connections a real
            # 5.0.2 agent has been seen to crash on when reused) or from a failed open that
            # PRC never released: start clean rather than guess which one is healthy.
            self._discard(identity)

    def _discard(self, identity: Identity) -> None:
        slot = self._slots.pop(identity, None)
        if slot is not None:
            _close_session(slot.session)

    # ------------------------------------------------------------------------------------------
    # idle reaper

    def _idle_expired(self, slot: _Slot, now: float) -> bool:
        limit = self.idle_disconnect_seconds
        return limit is not None and now - slot.last_used >= limit

    def _start_reaper(self) -> None:
        if self.idle_disconnect_seconds is None or (self._reaper is not None and self._reaper.is_alive()):
            return
        self._reaper = threading.Thread(target=self._reap, name="irods-idle-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        limit = self.idle_disconnect_seconds
        assert limit is not None
        with self._lock:
            while not self._closed and self._slots:
                now = time.monotonic()
                for identity, slot in list(self._slots.items()):
                    if self._idle_expired(slot, now):
                        log.debug("closing the iRODS session of %s after %g s idle", identity, limit)
                        self._discard(identity)
                        self._stats.idle_disconnects += 1
                if not self._slots:
                    break
                wake = min(slot.last_used for slot in self._slots.values()) + limit
                self._lock.wait(max(0.01, wake - time.monotonic()))
            self._reaper = None


@dataclass(frozen=True)
class UnreachableCause:
    """Why a connection failed, in words; ``permanent`` when retrying cannot help (a host
    name that does not resolve)."""

    text: str
    permanent: bool = False


def unreachable_cause(exc: BaseException, timeout: float) -> UnreachableCause:
    """What the socket said under PRC's NetworkException (which chains it as the context)."""
    refused = refusal_in(exc)
    if refused is not None:  # the server is there, but has no agent to spare now
        return UnreachableCause(str(refused))
    seen: BaseException | None = exc
    reply = "receive" in str(exc)  # PRC: "Could not receive server response" after connecting
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            permanent = seen.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
            return UnreachableCause(f"the host name does not resolve ({seen.strerror})", permanent)
        if isinstance(seen, ConnectionRefusedError):
            return UnreachableCause("connection refused (nothing listens on that port, or a firewall rejects it)")
        if isinstance(seen, TimeoutError):
            if reply:
                return UnreachableCause(f"connected, but no reply within {timeout:.3g} s (not an iRODS server, "
                                        "or one that hangs)")
            return UnreachableCause(f"no answer to connecting within {timeout:.3g} s (the host is down, or a "
                                    "firewall drops the packets)")
        if isinstance(seen, OSError) and seen.strerror:
            return UnreachableCause(seen.strerror)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return UnreachableCause(str(exc))


def _close_connections(session: iRODSSession) -> None:
    """Disconnect every pooled connection of a session (RODS_DISCONNECT, then close the socket)."""
    pool = session.pool
    if pool is None:
        return
    with pool._lock:
        connections = list(pool.active | pool.idle)
    for conn in connections:
        sock = conn.socket
        try:
            conn.disconnect()
        except Exception:  # a dead peer cannot be told politely; the socket is closed below anyway
            pass
        finally:
            if sock is not None:
                sock.close()
            conn.socket = None
        conn.release(True)


def _close_session(session: iRODSSession) -> None:
    _close_connections(session)
    # Stop PRC from reconnecting on its own through this object (at exit or by a stray use).
    session.do_configure = {}
