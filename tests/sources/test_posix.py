"""How the POSIX source hands out work: dealing a large listing's batches, placing
subdirectory listings, and breaking up deep chains.  The walk's results under real MPI ranks
are checked against find(1) in tests/test_scan.py; these tests pin down where each item goes,
through a context that records what the source asks of the engine."""

from __future__ import annotations

import os
from collections import Counter

from hpcingest.sources.placement import KEPT_CHAIN_LIMIT
from hpcingest.sources.posix import (BATCHES_KEPT_BY_LISTER, BATCHES_PER_DEAL, LIST_DIR, STAT_BATCH, PosixSource,
                                     list_item)


class RecordingContext:
    """The engine's side of the callback API, recording where each item went."""

    throttling = False

    def __init__(self, rank: int, size: int) -> None:
        self.rank = rank
        self.size = size
        self.local: list[bytes] = []
        self.placed: list[tuple[int, tuple[bytes, ...]]] = []

    def push(self, item: bytes) -> None:
        self.local.append(item)

    def push_to(self, rank: int, *items: bytes) -> None:
        self.placed.append((rank, items))

    def queued(self) -> int:
        return len(self.local)

    def poll(self) -> None:
        pass

    def throttle(self, units: int) -> None:
        pass


class CountingSink:
    def __init__(self, **hooks) -> None:
        self.__dict__.update(hooks)
        self.entries = 0
        self.errors: list = []

    def consume(self, batch, ctx) -> None:
        self.entries += len(batch.names)

    def error(self, error) -> None:
        self.errors.append(error)


def _flat_directory(tmp_path, files: int):
    for i in range(files):
        (tmp_path / f"f{i:03d}").write_bytes(b"")
    return PosixSource(os.fsencode(tmp_path), files_per_task=1)


def _names(items) -> list[bytes]:
    return [name for item in items for name in item[1:].partition(b"\0")[2].split(b"\0")]


def test_large_listing_is_dealt_round_robin_after_the_first_batches(tmp_path):
    source = _flat_directory(tmp_path, 41)
    ctx = RecordingContext(rank=1, size=4)
    source.process(list_item(b""), ctx, CountingSink())
    assert len(ctx.local) == BATCHES_KEPT_BY_LISTER
    assert all(item[0] == STAT_BATCH for item in ctx.local)
    assert [rank for rank, _ in ctx.placed][:4] == [2, 3, 0, 1]  # the lister's own turn included
    assert all(len(items) == BATCHES_PER_DEAL for _, items in ctx.placed[:-1])
    every = _names(ctx.local) + _names(i for _, items in ctx.placed for i in items)
    assert sorted(every) == sorted(os.listdir(os.fsencode(tmp_path)))  # each name once
    per_rank = Counter()
    for rank, items in ctx.placed:
        per_rank[rank] += len(items)
    assert max(per_rank.values()) - min(per_rank.values()) <= BATCHES_PER_DEAL


def test_a_sink_can_keep_a_directory_with_its_lister(tmp_path):
    source = _flat_directory(tmp_path, 30)
    ctx = RecordingContext(rank=0, size=4)
    source.process(list_item(b""), ctx, CountingSink(batches_kept_by_lister=30))
    assert len(ctx.local) == 30 and not ctx.placed


def test_dealt_batches_are_statted_wherever_they_land(tmp_path):
    source = _flat_directory(tmp_path, 9)
    lister = RecordingContext(rank=0, size=3)
    source.process(list_item(b""), lister, CountingSink())
    sink = CountingSink()
    for item in lister.local + [i for _, items in lister.placed for i in items]:
        source.process(item, RecordingContext(rank=2, size=3), sink)
    assert sink.entries == 9 and not sink.errors


def test_subdirectory_listings_without_a_home_go_round_robin(tmp_path):
    for i in range(8):
        (tmp_path / f"d{i}").mkdir()
    source = PosixSource(os.fsencode(tmp_path), files_per_task=50)
    ctx = RecordingContext(rank=3, size=4)
    ctx.local.append(b"Sunrelated\0x")  # this rank has other work: it keeps none of them
    source.process(b"S\0" + b"\0".join(b"d%d" % i for i in range(8)), ctx, CountingSink())
    assert len(ctx.placed) == 4  # one message per rank
    assert {rank: len(items) for rank, items in ctx.placed} == {0: 2, 1: 2, 2: 2, 3: 2}
    assert all(item[0] == LIST_DIR for _, items in ctx.placed for item in items)


def test_a_sink_home_rank_decides_where_a_listing_goes(tmp_path):
    for i in range(4):
        (tmp_path / f"d{i}").mkdir()
    source = PosixSource(os.fsencode(tmp_path), files_per_task=50)
    ctx = RecordingContext(rank=0, size=4)
    ctx.local.append(b"Sunrelated\0x")
    source.process(b"S\0d0\0d1\0d2\0d3", ctx, CountingSink(home_rank=lambda directory: 2))
    assert [(rank, len(items)) for rank, items in ctx.placed] == [(2, 4)]


def test_a_deep_chain_stays_on_a_rank_for_a_stretch_then_moves_on(tmp_path):
    depth = 2 * KEPT_CHAIN_LIMIT + 5
    chain = tmp_path
    for _ in range(depth):
        chain = chain / "c"
        chain.mkdir()
    source = PosixSource(os.fsencode(tmp_path), files_per_task=50)
    ctx = RecordingContext(rank=0, size=4)
    ctx.local.append(list_item(b""))
    kept, moved = 0, 0
    while ctx.local or ctx.placed:  # follow the chain wherever it goes, as one rank would
        item = ctx.local.pop() if ctx.local else ctx.placed.pop()[1][0]
        before = len(ctx.placed)
        source.process(item, ctx, CountingSink())
        if item[0] == STAT_BATCH:
            moved += len(ctx.placed) - before
            kept += len(ctx.placed) == before and bool(ctx.local)
    assert moved == depth // (KEPT_CHAIN_LIMIT + 1)
    assert kept == depth - moved


class RecordingSink(CountingSink):
    """Keeps every batch's names and stats, in the order the source handed them over."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list = []

    def consume(self, batch, ctx) -> None:
        super().consume(batch, ctx)
        self.batches.append(batch)


def test_stat_threads_give_the_same_batch_in_the_same_order_with_errors_in_place(tmp_path):
    """--stat_threads K stats a batch's names in K threads: what the sink gets (names, their
    stats, the errors for names that vanished) is what one thread gives."""
    from hpcingest.sources.posix import stat_item

    names = [b"f%02d" % i for i in range(23)]
    for name in names:
        (tmp_path / os.fsdecode(name)).write_bytes(name)
    (tmp_path / "sub").mkdir()
    asked = names[:7] + [b"gone-1"] + names[7:] + [b"sub", b"gone-2"]
    results = {}
    for threads in (1, 4, 30):
        source = PosixSource(os.fsencode(tmp_path), stat_threads=threads)
        sink, ctx = RecordingSink(), RecordingContext(rank=0, size=1)
        source.process(stat_item(b"", asked), ctx, sink)
        (batch,) = sink.batches
        results[threads] = ([(n, s.st_ino, s.st_size) for n, s in zip(batch.names, batch.stats)],
                            [e.describe(b"/") for e in sink.errors], batch.errors, ctx.local)
    assert results[1][0] == [(n, os.lstat(tmp_path / os.fsdecode(n)).st_ino, os.lstat(tmp_path / os.fsdecode(n)).st_size)
                             for n in names + [b"sub"]]
    assert len(results[1][1]) == 2 and results[1][2] == 2 and results[1][3] == [list_item(b"sub")]
    assert results[4] == results[1] and results[30] == results[1]


def test_a_batch_carries_the_time_before_its_stats_however_long_it_waits(tmp_path):
    """The sink records that time as the entries' sync time: a file changed while its batch
    waits in a queue (stolen, forwarded, waiting for its state) must show on the next pass."""
    import time

    from hpcingest.ingest.decide import needs_catalog, sync_time
    from hpcingest.sources.posix import stat_item

    (tmp_path / "log").write_bytes(b"first")
    source, sink = PosixSource(os.fsencode(tmp_path)), RecordingSink()
    before = time.time()
    source.process(stat_item(b"", [b"log"]), RecordingContext(rank=0, size=1), sink)
    after = time.time()
    (batch,) = sink.batches
    assert before <= batch.statted_at <= after
    time.sleep(0.05)  # the batch waits ...
    with open(tmp_path / "log", "ab") as f:
        f.write(b"more")  # ... and the file grows before a sink takes it
    grown = os.lstat(tmp_path / "log")
    assert needs_catalog(grown.st_mtime, grown.st_ctime, sync_time(batch.statted_at, batch.stats))


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_rank_keeps_a_few_directories_open_and_closes_them_with_the_walk(tmp_path):
    """Directories are kept open between their listing and their stat batches (DirectoryHandles):
    never more than a bounded number, and none once the walk is over."""
    for i in range(40):
        (tmp_path / f"d{i:02d}" / "sub").mkdir(parents=True)
        (tmp_path / f"d{i:02d}" / "sub" / "file").write_bytes(b"x")
    before = _open_descriptors()
    source, sink = PosixSource(os.fsencode(tmp_path)), CountingSink()
    ctx, most_open = RecordingContext(rank=0, size=1), 0
    ctx.local.append(list_item(b""))
    while ctx.local or ctx.placed:
        items = ctx.local + [i for _, placed in ctx.placed for i in placed]
        ctx.local, ctx.placed = [], []
        for item in items:
            source.process(item, ctx, sink)
            most_open = max(most_open, _open_descriptors() - before)
    assert sink.entries == 120 and not sink.errors
    assert 0 < most_open <= source._directories.capacity + 1  # and the root
    source.close()
    assert _open_descriptors() == before
