"""``--irods_connections K``: only K ranks hold iRODS connections; the others walk and send
their batches to them.

Each iRODS connection is an agent process on the server (and a database session on the
catalog provider), so 4,096 ranks must not each open one.  A rank without a connection
sends each batch to a connected rank (round robin), where it becomes work that is never
stolen; the connected rank acknowledges it once ingested.  A sender keeps at most
``window`` unacknowledged batches per connected rank, so a fast walk cannot pile up
unbounded work in front of slow registrations.
"""

from __future__ import annotations

import pickle
import struct

from hpcingest.engine import FIRST_SERVICE_TAG, WorkContext
from hpcingest.records import EntryBatch, WalkError

TAG_BATCH = FIRST_SERVICE_TAG + 10
TAG_BATCH_DONE = FIRST_SERVICE_TAG + 11
FORWARDED = b"I"[0]
_ORIGIN = struct.Struct("<i")
_KIND_BATCH = b"B"  # an EntryBatch to ingest
_KIND_LISTING = b"L"  # a directory's complete listing, to sweep for deletions


def connected_ranks(size: int, limit: int | None) -> int:
    return size if limit is None else max(1, min(size, limit))


class Funnel:
    """Wraps the ingest sink on every rank.  On ranks without a connection the sink only
    reports walk errors (its IrodsConnection is lazy and never opens)."""

    def __init__(self, inner, rank: int, size: int, connected: int, window: int = 8) -> None:
        self.inner = inner
        self.rank = rank
        self.connected = connected
        self.window = window
        self._next = rank % connected
        self._in_flight: dict[int, int] = {}
        self.forwarded = 0

    @property
    def has_connection(self) -> bool:
        return self.rank < self.connected

    def services(self) -> dict:
        return {TAG_BATCH: self._receive_batch, TAG_BATCH_DONE: self._receive_done}

    def consume(self, batch: EntryBatch, ctx: WorkContext) -> None:
        if self.has_connection:
            self.inner.consume(batch, ctx)
            return
        self._forward(_KIND_BATCH, (batch.directory, batch.names, batch.stats, batch.excluded, batch.errors), ctx)

    def wants_listing(self, directory: bytes) -> bool:
        return self.inner.wants_listing(directory)

    def directory_names(self, directory: bytes, names: list[bytes], ctx: WorkContext) -> None:
        """A directory's complete listing, for the delete modes: swept where a connection is."""
        if self.has_connection:
            self.inner.directory_names(directory, names, ctx)
        else:
            self._forward(_KIND_LISTING, (directory, names), ctx)

    def _forward(self, kind: bytes, content: tuple, ctx: WorkContext) -> None:
        dest = self._next
        self._next = (self._next + 1) % self.connected
        ctx.wait_until(lambda: self._in_flight.get(dest, 0) < self.window)
        self._in_flight[dest] = self._in_flight.get(dest, 0) + 1
        payload = pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
        ctx.send(_ORIGIN.pack(self.rank) + kind + payload, dest, TAG_BATCH)
        self.forwarded += 1

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
        if kind == _KIND_BATCH:
            self.inner.consume(EntryBatch(*content), ctx)
        else:
            self.inner.directory_names(*content, ctx)
        ctx.send(b"", origin, TAG_BATCH_DONE)

    def _receive_batch(self, payload: bytes, source: int, engine) -> None:
        engine.push_local(bytes([FORWARDED]) + payload)

    def _receive_done(self, payload: bytes, source: int, engine) -> None:
        self._in_flight[source] -= 1
