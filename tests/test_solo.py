"""hpcingest.solo: the world of one process the commands run in without an MPI library.

The collectives and the engine run on it exactly as on mpi4py's COMM_WORLD of one rank; these
checks use hpcingest's own callers (hpcingest.collectives, the engine), not the stand-in alone."""

from __future__ import annotations

from hpcingest import collectives, solo
from hpcingest.engine import Closing, WorkStealingEngine
from hpcingest.launch import mpi_of


def test_collectives_of_one_rank():
    comm = solo.Comm()
    assert mpi_of(comm) is solo
    assert collectives.bcast_object(comm, {"x": [1, 2]}) == {"x": [1, 2]}
    assert collectives.allgather_int(comm, 2**60 + 1) == [2**60 + 1]
    assert collectives.node_neighbours(comm, 5) == {}
    collectives.barrier(comm)
    assert collectives.dup(comm) is not comm


def test_messages_to_oneself_arrive_in_order():
    comm, status = solo.Comm(), solo.Status()
    comm.Isend([b"first", solo.BYTE], 0, 7)
    comm.Isend([bytearray(b"second"), solo.BYTE], 0, 9)
    received = []
    while (message := comm.Improbe(solo.ANY_SOURCE, solo.ANY_TAG, status)) is not None:
        buf = bytearray(status.Get_count(solo.BYTE))
        message.Recv([buf, solo.BYTE])
        received.append((status.Get_tag(), bytes(buf)))
    assert received == [(7, b"first"), (9, b"second")]


def test_the_engine_runs_every_item_on_one_rank():
    seen = []

    def process(item: bytes, ctx) -> None:
        seen.append(item)
        if len(item) < 4:
            ctx.push(item + b"a")
            ctx.push(item + b"b")

    engine = WorkStealingEngine(solo.COMM_WORLD, process)
    stats = engine.run([b"r"], closing=lambda s: Closing(shared=[s.items_processed, 2**60 + 1], report=b"xy"))
    assert len(seen) == 1 + 2 + 4 + 8 and len(set(seen)) == len(seen)
    # the closing round of one rank: its own integers (exact past 2**53) and its report
    assert stats.closing == [[len(seen), 2**60 + 1]] and stats.reports == [b"xy"]


def test_the_shared_file_is_written_at_offsets(tmp_path):
    path = tmp_path / "listing"
    handle = solo.File.Open(solo.COMM_WORLD, str(path), solo.MODE_WRONLY | solo.MODE_CREATE)
    handle.Write_at(3, b"def")
    handle.Write_at(0, b"abc")
    handle.Close()
    assert path.read_bytes() == b"abcdef"
