"""Joins a source and a sink through the work-stealing engine: the walk every command runs."""

from __future__ import annotations

from typing import Callable, Protocol

from hpcingest.engine import Closing, EngineStats, WorkContext, WorkStealingEngine
from hpcingest.profile import recorder
from hpcingest.sources.posix import Sink


class Source(Protocol):
    """Lists entries: the first items (seeded on rank 0) and how to process any item."""

    def initial_items(self) -> list[bytes]: ...

    def process(self, item: bytes, ctx: WorkContext, sink: Sink) -> None: ...

    def close(self) -> None:
        """This rank's walk is over (what it keeps open for the walk, it lets go)."""


def run_walk(comm, source: Source, sink: Sink, services: dict | None = None,
             sink_items: dict[int, Callable[[bytes, WorkContext], None]] | None = None,
             stop=None, max_rate: float | None = None,
             on_idle: Callable[[WorkContext], None] | None = None, abort=None,
             closing: Callable[[EngineStats], Closing] | None = None) -> EngineStats:
    """Walk collectively: every rank of ``comm`` must call this; returns this rank's stats.

    ``services`` are message handlers the sink relies on (e.g. the sync-state shards);
    ``sink_items`` process work items the sink itself creates, keyed by their first byte;
    setting the ``stop`` event (a threading.Event) abandons the remaining work; ``max_rate``
    caps the entries per second of the whole job (each rank holds an equal share); ``on_idle``
    runs whenever this rank runs out of work (e.g. to send messages held back for batching);
    setting ``abort`` makes the walk raise EngineAborted on this rank wherever it waits;
    ``closing`` rides on the walk's last round (WorkStealingEngine.run)."""
    handlers = dict(sink_items or {})

    def process(item: bytes, ctx: WorkContext) -> None:
        handler = handlers.get(item[0])
        if handler is not None:
            handler(item, ctx)
        else:
            source.process(item, ctx, sink)

    rate = max_rate / comm.Get_size() if max_rate else None
    with recorder.current.span("idle"):  # setting up is collective: waiting for the other ranks
        engine = WorkStealingEngine(comm, process, services=services, stop=stop, rate_limit=rate, on_idle=on_idle,
                                    abort=abort)
    try:
        return engine.run(source.initial_items() if comm.Get_rank() == 0 else [], closing=closing)
    finally:
        source.close()
