"""``--irods_connections K``: only K ranks hold iRODS connections; the others walk and send
their batches to them.

Each iRODS connection is an agent process on the server, and every agent holds a connection to
the catalog database for its life; PostgreSQL allows 100 (``max_connections``, 3 of them kept
for superusers), and iRODS 5.0.2 answers the agent past that with CAT_NOT_OPEN and closes the
connection.  So 4,096 ranks must not each open one, nor even 128: by default at most
:data:`DEFAULT_CONNECTIONS` ranks connect (see "Sizing --irods_connections" in the README).
The connected ranks are spread evenly over the rank numbers (every size/K-th), so that with many
ranks per node the connections, and the ingest work they do, spread over the nodes too.

At the start of each pass the chosen ranks log in, and a rank the server refuses an agent (a
busy zone, other clients, a K larger than the catalog allows) does not connect: it is logged,
counted in the summary, and the rank forwards its batches like the others, instead of retrying
its login for the whole pass.  A rank without a connection sends each batch to a connected
rank (round robin, starting with the nearest one below it), where it becomes work that is never
stolen; the connected rank acknowledges it once ingested.  A sender keeps at most ``window``
unacknowledged batches per connected rank, so a fast walk cannot pile up unbounded work in
front of slow registrations.  A batch with subdirectories is ingested ahead of the rest, and its
sender waits for it: the subdirectories are listed next, and their files may reach another
connected rank, which needs their collections to exist.
"""

from __future__ import annotations

import bisect
import pickle
import stat
import struct
import threading
from operator import attrgetter

from hpcingest import collectives, waits
from hpcingest.engine import FIRST_SERVICE_TAG, WorkContext
from hpcingest.profile import recorder
from hpcingest.records import EntryBatch, WalkError

TAG_BATCH = FIRST_SERVICE_TAG + 10
TAG_BATCH_DONE = FIRST_SERVICE_TAG + 11
FORWARDED = b"I"[0]
_ORIGIN = struct.Struct("<i")
_KIND_BATCH = b"B"  # an EntryBatch to ingest
_KIND_DIRECTORIES = b"D"  # one with subdirectories: ingested first, its sender waits for it
_KIND_LISTING = b"L"  # a directory's complete listing, to sweep for deletions
_MODE = attrgetter("st_mode")

#: Connected ranks when --irods_connections is not given.  One connection whose registrations
#: are pipelined keeps one agent (and its database backend) busy, so 16 saturate a catalog
#: server of 8-16 cores; 16 agents, or 80 while each also runs a parallel transfer of 4 threads,
#: stay under the 97 database connections of a default install, with room for other clients.
DEFAULT_CONNECTIONS = 16


def chosen_ranks(size: int, limit: int | None) -> list[int]:
    """The ranks meant to connect: K of them (``limit``, else at most DEFAULT_CONNECTIONS),
    every size/K-th rank."""
    k = max(1, min(size, limit if limit is not None else DEFAULT_CONNECTIONS))
    return [i * size // k for i in range(k)]


def establish(comm, connection, limit: int | None, logger) -> list[int]:
    """Collective, at the start of a pass: the chosen ranks log in; returns the ranks that got
    an agent (rank 0 alone if none did: its calls then retry, and fail visibly, as any call)."""
    from hpcingest.irods.errors import IrodsAgentRefused, IrodsError

    rank = comm.Get_rank()
    chosen = chosen_ranks(comm.Get_size(), limit)
    connected = False
    with recorder.current.span("connect"):  # the login, and the wait for the other ranks'
        if rank in chosen:
            try:
                connection.connect()
                connected = True
            except IrodsAgentRefused as err:
                logger.warning("irods_agent_refused", code=err.code, error=err.name, message=str(err),
                               then="this rank forwards its batches to the ranks that connected")
            except IrodsError as err:
                logger.warning("irods_connect_failed", message=str(err),
                               then="this rank forwards its batches to the ranks that connected")
        flags = collectives.allgather_int(comm, int(connected))
    return [r for r in chosen if flags[r]] or [0]


class Funnel:
    """Wraps the ingest sink on every rank.  On ranks without a connection the sink only
    reports walk errors (its IrodsConnection is lazy and never opens)."""

    def __init__(self, inner, rank: int, connected: list[int], window: int = 8,
                 stop: threading.Event | None = None) -> None:
        self.inner = inner
        self.rank = rank
        self.connected = connected
        self.has_connection = rank in connected
        self.window = window
        # the job is being stopped: connected ranks drop the batches they hold without a word,
        # so a sender waiting on one must stop waiting (or the pass never ends)
        self._stopping = stop.is_set if stop is not None else (lambda: False)
        self._next = max(0, bisect.bisect_right(connected, rank) - 1)  # the nearest connected rank below
        self._in_flight: dict[int, int] = {}
        self._directories_pending = False  # a batch with subdirectories is not ingested yet
        self.forwarded = 0

    def services(self) -> dict:
        return {TAG_BATCH: self._receive_batch, TAG_BATCH_DONE: self._receive_done}

    def consume(self, batch: EntryBatch, ctx: WorkContext) -> None:
        if self.has_connection:
            self.inner.consume(batch, ctx)
            return
        content = (batch.directory, batch.names, batch.stats, batch.excluded, batch.errors, batch.statted_at)
        if not any(map(stat.S_ISDIR, map(_MODE, batch.stats))):
            self._forward(_KIND_BATCH, content, ctx)
            return
        # its subdirectories are listed as soon as this returns, and their batches may go to
        # another connected rank: their collections must exist by then.  The connected rank
        # ingests such a batch ahead of the others it holds and says when it has.
        self._directories_pending = True
        dest = self._forward(_KIND_DIRECTORIES, content, ctx)
        with waits.board.waiting(f"rank {dest} (connected to iRODS) to create the collections of the "
                                 f"subdirectories of {batch.directory!r}"):
            ctx.wait_until(lambda: not self._directories_pending or self._stopping())

    def wants_listing(self, directory: bytes) -> bool:
        return self.inner.wants_listing(directory)

    def directory_names(self, directory: bytes, names: list[bytes], ctx: WorkContext) -> None:
        """A directory's complete listing, for the delete modes: swept where a connection is."""
        if self.has_connection:
            self.inner.directory_names(directory, names, ctx)
        else:
            self._forward(_KIND_LISTING, (directory, names), ctx)

    def _forward(self, kind: bytes, content: tuple, ctx: WorkContext) -> int:
        """Send to the next connected rank, once it has room; returns that rank."""
        dest = self.connected[self._next]
        self._next = (self._next + 1) % len(self.connected)
        if self._in_flight.get(dest, 0) >= self.window:
            with waits.board.waiting(f"rank {dest} (connected to iRODS) to take more batches: {self.window} "
                                     f"sent to it are not ingested yet"):
                ctx.wait_until(lambda: self._in_flight.get(dest, 0) < self.window or self._stopping())
        self._in_flight[dest] = self._in_flight.get(dest, 0) + 1
        payload = pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
        ctx.send(_ORIGIN.pack(self.rank) + kind + payload, dest, TAG_BATCH)
        self.forwarded += 1
        return dest

    def error(self, error: WalkError) -> None:
        self.inner.error(error)

    def home_rank(self, directory: bytes) -> int | None:
        return self.inner.home_rank(directory)

    @property
    def batches_kept_by_lister(self) -> int:
        return self.inner.batches_kept_by_lister

    def completed_earlier(self, directory: bytes, ctx: WorkContext) -> bool:
        return self.inner.completed_earlier(directory, ctx)

    def listed(self, directory: bytes, batches: int, ok: bool, ctx: WorkContext) -> None:
        self.inner.listed(directory, batches, ok, ctx)

    def process_forwarded(self, item: bytes, ctx: WorkContext) -> None:
        (origin,) = _ORIGIN.unpack_from(item, 1)
        kind, content = item[1 + _ORIGIN.size:2 + _ORIGIN.size], pickle.loads(item[2 + _ORIGIN.size:])
        if kind == _KIND_LISTING:
            self.inner.directory_names(*content, ctx)
        else:
            self.inner.consume(EntryBatch(*content), ctx)  # synchronous for a batch with subdirectories
        ctx.send(kind, origin, TAG_BATCH_DONE)

    def _receive_batch(self, payload: bytes, source: int, engine) -> None:
        kind = payload[_ORIGIN.size:_ORIGIN.size + 1]
        engine.push_local(bytes([FORWARDED]) + payload, first=kind == _KIND_DIRECTORIES)

    def _receive_done(self, payload: bytes, source: int, engine) -> None:
        self._in_flight[source] -= 1
        if payload == _KIND_DIRECTORIES:
            self._directories_pending = False
