"""Where a source sends the work it creates: listings to their home rank or round robin, dealt
batches round robin.  Shared by the POSIX and S3 sources, so both spread a tree the same way.

Handing work out, rather than leaving it to be stolen, is what keeps ranks even when there are
more ranks than cores: a steal waits for its victim to be scheduled, and half-queue steals moved
a quarter of all entries to whichever ranks the scheduler favoured (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Callable

from hpcingest.engine import WorkContext

KEPT_CHAIN_LIMIT = 32  # a rank lists at most this many single-child generations in a row


class Placement:
    """One per source per rank: its rotation and how many listings it kept in a row."""

    def __init__(self) -> None:
        self._next_rank: int | None = None  # the rank this one handed work to last
        self._kept_in_a_row = 0

    def push_listings(self, directories: list[bytes], make_item: Callable[[bytes], bytes],
                      ctx: WorkContext, sink) -> None:
        """Each directory's listing goes to its home rank: where the sink's state for it lives
        (``home_rank``), else the next rank in this rank's rotation.  So listings spread over
        every rank from the start, instead of waiting to be stolen.  A rank with nothing else to
        do keeps one, so a deep chain of single directories does not hop at every level; but
        only KEPT_CHAIN_LIMIT generations in a row, so a chain thousands deep does not pile its
        entries onto one rank on top of that rank's share of everything else.  One message per
        destination rank, however many listings go there."""
        if not directories:
            return
        home = getattr(sink, "home_rank", None) or (lambda directory: None)
        keep_one = not ctx.queued() and self._kept_in_a_row < KEPT_CHAIN_LIMIT
        self._kept_in_a_row = self._kept_in_a_row + 1 if keep_one else 0
        if keep_one:
            ctx.push(make_item(directories[0]))
            directories = directories[1:]
        by_rank: dict[int, list[bytes]] = {}
        for directory in directories:
            rank = home(directory)
            by_rank.setdefault(self.next_rank(ctx) if rank is None else rank, []).append(make_item(directory))
        for rank, items in by_rank.items():
            ctx.push_to(rank, *items)

    def hand_out(self, ctx: WorkContext, items: list[bytes]) -> None:
        ctx.push_to(self.next_rank(ctx), *items)

    def next_rank(self, ctx: WorkContext) -> int:
        """Where this rank hands out its next work (itself included: a lister's own share waits
        in its queue, where others may steal it while it lists).  A rotation, not a hash or a
        random pick: P consecutive hand-outs reach P different ranks, so shares differ by at
        most one hand-out (random placement left ranks a third above the mean at 64)."""
        if self._next_rank is None:
            self._next_rank = ctx.rank  # every rank starts at a different place
        self._next_rank = (self._next_rank + 1) % ctx.size
        return self._next_rank
