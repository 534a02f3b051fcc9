"""Placement as any source uses it (the S3 source's list items are encoded differently from the
POSIX source's; placement must not care)."""

from __future__ import annotations

from hpcingest.sources import s3
from hpcingest.sources.placement import Placement
from tests.sources.test_posix import RecordingContext


def test_listings_of_any_encoding_spread_round_robin_one_message_per_rank():
    ctx = RecordingContext(rank=1, size=3)
    ctx.local.append(b"other work")  # so no listing is kept
    directories = [b"p%d" % i for i in range(7)]
    Placement().push_listings(directories, s3.list_item, ctx, sink=object())
    assert len(ctx.placed) == 3  # one message per rank
    assert {rank: len(items) for rank, items in ctx.placed} == {2: 3, 0: 2, 1: 2}
    sent = sorted(item for _, items in ctx.placed for item in items)
    assert sent == sorted(s3.list_item(d) for d in directories)


def test_an_idle_rank_keeps_one_listing_and_places_the_rest():
    ctx = RecordingContext(rank=0, size=2)
    Placement().push_listings([b"a", b"b", b"c"], s3.list_item, ctx, sink=object())
    assert ctx.local == [s3.list_item(b"a")]
    assert sum(len(items) for _, items in ctx.placed) == 2
