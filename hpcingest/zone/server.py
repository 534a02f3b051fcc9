"""The TCP server: one event loop for every connection, the startup handshake and API dispatch.

A single thread multiplexes all connections with a selector.  Requests are served one at a
time anyway (the catalog is one sqlite connection), and a single thread avoids the GIL hand-offs
that made a thread-per-connection server slower with four clients than with one.  A connection
that sends garbage, over-long lengths or vanishes mid-message is dropped on its own; nothing it
does reaches the catalog outside a handler's transaction.

A real server forks an agent per connection, and every agent opens its own connection to the
catalog database; the zone counts agents the same way and refuses the one past
``max_db_connections`` as iRODS 5.0.2 does (see ``_refuse_agent``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
import traceback
from collections import deque

from . import api as _api  # noqa: F401  (registers the handlers)
from . import errors
from .api.dataobj_io import release_descriptors
from .api.registry import HANDLERS
from .errors import ZoneError
from .framing import Message, ProtocolError, encode_message, take_message
from .session import Session
from .state import ZoneConfig, ZoneState
from .xmlpack import error_struct, json_buf, parse, struct

log = logging.getLogger("hpcingest.zone")

_NEGOTIATION_REQUEST = "request_server_negotiation"
_RECV_SIZE = 1024 * 1024
_IDLE_WAIT = 0.5


class _Connection:
    """A client connection: its session, unparsed input, unsent output and handshake phase."""

    def __init__(self, sock: socket.socket, session: Session) -> None:
        self.sock = sock
        self.session = session
        self.inbuf = bytearray()
        self.outbuf: deque[memoryview] = deque()
        self.phase = "startup"
        self.held = False  # --service-ms: busy with a request until its reply leaves
        self.holds_agent = False  # past RODS_CONNECT: an agent with its database connection
        self.closing = False  # refused: closed once what is queued for it has been sent
        self.closed = False
        self.waiting_to_write = False


class ZoneServer:
    """Owns the listening socket and the event loop; ``serve_forever`` blocks until ``shutdown``."""

    def __init__(self, config: ZoneConfig, password: str) -> None:
        self.state = ZoneState(config, password)
        self.config = config
        try:
            self._listener = socket.create_server((config.host, config.port), backlog=256)
        except OSError:
            self.state.catalog.close()
            raise
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._stopping = threading.Event()
        self._stats_requested = False
        self._delayed: list[tuple[float, int, _Connection, Message]] = []
        self._sequence = itertools.count()
        self._connections: set[_Connection] = set()
        self._agents = 0  # connections holding an agent (and so a database connection)
        # --cores: when each of the server's cores is next free (a heap), for the service model
        self._core_free = [0.0] * config.cores

    # -----------------------------------------------------------------------------------------
    # control, callable from any thread or a signal handler

    def shutdown(self) -> None:
        self._stopping.set()
        self._wake()

    def request_stats_write(self) -> None:
        self._stats_requested = True
        self._wake()

    def write_stats(self) -> None:
        self.state.stats.write(self.config.stats_path)

    def _wake(self) -> None:
        try:
            self._wake_send.send(b"x")
        except OSError:
            pass

    # -----------------------------------------------------------------------------------------
    # the loop

    def serve_forever(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_recv, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                timeout = _IDLE_WAIT
                if self._delayed:
                    timeout = max(0.0, min(timeout, self._delayed[0][0] - time.monotonic()))
                for key, mask in self._selector.select(timeout):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        if mask & selectors.EVENT_WRITE:
                            self._flush(key.data)
                            self._process(key.data)
                        if mask & selectors.EVENT_READ:
                            self._receive(key.data)
                self._release_delayed()
                if self._stats_requested:
                    self._stats_requested = False
                    self.write_stats()
        finally:
            for conn in list(self._connections):
                self._close(conn)
            self._selector.close()
            self._listener.close()
            self._wake_recv.close()
            self._wake_send.close()
            self.write_stats()

    def _drain_wake(self) -> None:
        try:
            while self._wake_recv.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, Session(self.state))
            self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _receive(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        self._process(conn)

    def _process(self, conn: _Connection) -> None:
        while not conn.closed and not conn.closing and not conn.outbuf and not conn.held:
            try:
                message = take_message(conn.inbuf)
                if message is None:
                    return
                self._handle(conn, message)
            except ProtocolError as exc:
                log.info("dropping connection: %s", exc)
                self._close(conn)

    def _handle(self, conn: _Connection, message: Message) -> None:
        if conn.phase == "api":
            if message.type == "RODS_DISCONNECT":
                self._close(conn)
            elif message.type == "RODS_API_REQ":
                reply = self._dispatch(conn.session, message)
                delay_ms = self.config.latency_ms + self.config.service_ms
                if delay_ms:
                    # --latency-ms: the reply reaches the client later, as over a slow network;
                    # like a real agent, the server meanwhile goes on with the requests already
                    # in its socket (a client that pipelines is not made to wait a round trip
                    # per request; one that waits for each reply sees no difference).
                    # --service-ms: the connection is busy until its reply has left.
                    conn.held = self.config.service_ms > 0
                    heapq.heappush(self._delayed, (self._reply_due(), next(self._sequence), conn, reply))
                else:
                    self._send(conn, reply)
            else:
                raise ProtocolError(f"unexpected message type {message.type!r}")
        elif conn.phase == "startup":
            if message.type != "RODS_CONNECT":
                raise ProtocolError(f"expected RODS_CONNECT, got {message.type!r}")
            if self._agents >= self.config.max_db_connections:
                self._refuse_agent(conn)
                return
            conn.holds_agent = True
            self._agents += 1
            if self._start_session(conn.session, message):
                offer = struct("CS_NEG_PI", ("status", 1), ("result", "CS_NEG_REFUSE"))
                self._send(conn, Message("RODS_CS_NEG_T", msg=offer.encode()))
                conn.phase = "negotiate"
            else:
                self._send_version(conn)
        elif conn.phase == "negotiate":
            if message.type != "RODS_CS_NEG_T" or "CS_NEG_FAILURE" in parse(message.msg).str("result"):
                self._close(conn)
            else:
                self._send_version(conn)

    def _start_session(self, session: Session, startup: Message) -> bool:
        """Record who connects; True when the client asks for a negotiation."""
        pack = parse(startup.msg)
        ident = session.identity
        ident.proxy_user = pack.str("proxyUser")
        ident.proxy_zone = pack.str("proxyRcatZone") or self.config.zone
        ident.client_user = pack.str("clientUser") or ident.proxy_user
        ident.client_zone = pack.str("clientRcatZone") or ident.proxy_zone
        return _NEGOTIATION_REQUEST in pack.str("option")

    def _send_version(self, conn: _Connection, status: int = 0) -> None:
        version = struct("Version_PI", ("status", status), ("relVersion", f"rods{self.config.version}"),
                         ("apiVersion", "d"), ("reconnPort", 0), ("reconnAddr", ""), ("cookie", 400))
        conn.phase = "api"
        self._send(conn, Message("RODS_VERSION", msg=version.encode()))

    def _refuse_agent(self, conn: _Connection) -> None:
        """What iRODS 5.0.2 does for an agent whose catalog connection PostgreSQL refuses ("too many
        clients"): ``chlOpen`` drops the failed ``db_open_op``'s result (icatHighLevelRoutines.cpp),
        so ``initAgent`` fails only at ``initZone``'s GenQuery, with CAT_NOT_OPEN (general_query.cpp:
        ``chlGetRcs`` has no session); ``handle_client_request`` (agent_main.cpp) then sends that
        status in the RODS_VERSION reply (intInfo 0) and the agent exits.  python-irodsclient ignores
        the status, sends its login and reads the closed socket: "Could not receive server response"."""
        self.state.stats.record("agent_refused", "AGENT_REFUSED", 0.0, True)
        self._send_version(conn, errors.CAT_NOT_OPEN)
        conn.closing = True
        self._flush(conn)

    def _reply_due(self) -> float:
        """When a request's reply leaves: after its service time on the first free core (--cores;
        requests are served in arrival order), then the network's latency."""
        now = time.monotonic()
        service = self.config.service_ms / 1000.0
        if self._core_free and service:
            start = max(now, heapq.heappop(self._core_free))
            heapq.heappush(self._core_free, start + service)
            now = start
        return now + service + self.config.latency_ms / 1000.0

    def _release_delayed(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, conn, reply = heapq.heappop(self._delayed)
            conn.held = False
            if not conn.closed:
                self._send(conn, reply)  # in order: every reply of a connection waits equally long
                self._process(conn)

    # -----------------------------------------------------------------------------------------
    # output

    def _send(self, conn: _Connection, message: Message) -> None:
        conn.outbuf.extend(memoryview(part) for part in encode_message(message))
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        if conn.closed:
            return
        while conn.outbuf:
            chunk = conn.outbuf[0]
            try:
                sent = conn.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            if sent < len(chunk):
                conn.outbuf[0] = chunk[sent:]
                break
            conn.outbuf.popleft()
        if conn.closing and not conn.outbuf:
            self._close(conn)
            return
        waiting = bool(conn.outbuf)
        if waiting != conn.waiting_to_write:  # only touch the selector when interest changes
            conn.waiting_to_write = waiting
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if waiting else 0)
            self._selector.modify(conn.sock, events, conn)

    def _close(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        if conn.holds_agent:
            self._agents -= 1
        self._connections.discard(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        try:
            release_descriptors(conn.session)
        except Exception:  # releasing must never take the loop down
            log.error("releasing a connection failed:\n%s", traceback.format_exc())

    # -----------------------------------------------------------------------------------------

    def _dispatch(self, session: Session, request: Message) -> Message:
        started = time.perf_counter()
        number = request.int_info
        entry = HANDLERS.get(number)
        failed = True
        try:
            if entry is None:
                raise ZoneError(errors.SYS_UNMATCHED_API_NUM, f"API {number} is not implemented")
            if entry.needs_auth and not session.authenticated:
                raise ZoneError(errors.SYS_NO_API_PRIV, "not authenticated")
            reply = entry.handler(session, request)
            failed = False
            result = Message("RODS_API_REPLY", reply.int_info, reply.msg, b"", reply.bs)
        except ZoneError as exc:
            result = _error_reply(exc)
        except ProtocolError as exc:
            result = _error_reply(ZoneError(errors.SYS_INVALID_INPUT_PARAM, str(exc)))
        except Exception:  # a handler bug must cost one request, not the connection or the server
            log.error("API %s failed:\n%s", number, traceback.format_exc())
            result = _error_reply(ZoneError(errors.SYS_NOT_SUPPORTED, "internal error"))
        self.state.stats.record(number, entry.name if entry else "UNKNOWN", time.perf_counter() - started, failed)
        return result


def _error_reply(exc: ZoneError) -> Message:
    if isinstance(exc.body, bytes):
        body = exc.body
    else:
        body = json_buf(exc.body) if exc.body is not None else b""
    stack = exc.stack or [(exc.code, exc.message or str(exc.code))]
    return Message("RODS_API_REPLY", exc.code, body, error_struct(stack))
