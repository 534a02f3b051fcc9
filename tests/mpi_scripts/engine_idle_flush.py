"""Run under mpiexec: messages held back by a sink and sent from the engine's idle hook.

Every processed node is noted for a rank chosen by hash, but the note is only held; the
``on_idle`` hook sends the held notes as one message per destination.  Rank 0 checks that
every node was noted exactly once by the time the engine ended on every rank: termination
must count what the idle hook sent.  Prints one JSON line.
"""

import json
import sys
import zlib

from mpi4py import MPI

from hpcingest.engine import FIRST_SERVICE_TAG, WorkStealingEngine, pack_items, unpack_items
from tests.mpi_scripts.engine_synthetic import children, expected_count

TAG_NOTES = FIRST_SERVICE_TAG + 50


def run_once(comm, shape: str) -> tuple[list[bytes], int]:
    held: dict[int, list[bytes]] = {}
    noted: list[bytes] = []
    flushes = [0]

    def process(item: bytes, ctx) -> None:
        held.setdefault(zlib.crc32(item) % comm.size, []).append(item)
        for child in children(item, shape):
            ctx.push(child)

    def on_idle(ctx) -> None:
        while held:
            dest, notes = held.popitem()
            flushes[0] += 1
            ctx.send(pack_items(notes), dest, TAG_NOTES)

    def take_notes(payload: bytes, source: int, engine) -> None:
        noted.extend(unpack_items(payload))

    engine = WorkStealingEngine(comm, process, services={TAG_NOTES: take_notes}, on_idle=on_idle)
    engine.run([b"0"] if comm.rank == 0 else [])
    assert not held, "the engine ended with notes still held"
    return noted, flushes[0]


def main() -> int:
    comm = MPI.COMM_WORLD
    report, ok = {}, True
    for shape in ("wide", "deep", "random"):
        for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
            noted, flushes = run_once(comm, shape)
            everything = comm.gather(noted, root=0)
            sends = comm.gather(flushes, root=0)
            if comm.rank == 0:
                flat = [n for part in everything for n in part]
                expected = expected_count(shape)
                good = len(flat) == expected and len(set(flat)) == expected
                ok &= good
                report.setdefault(shape, []).append({"expected": expected, "noted": len(flat),
                                                     "unique": len(set(flat)), "messages": sum(sends)})
    if comm.rank == 0:
        print(json.dumps({"ok": ok, "report": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
