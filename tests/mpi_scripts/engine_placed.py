"""Run under mpiexec: work pushed to the rank it belongs to (``push_to``), as the ingest sink
places a directory's listing where its sync state lives.

Every child is pushed to the rank named by its hash; a node's children with the same home
travel in one message.  Rank 0 checks that every node was
processed exactly once and reports the share processed at home (the rest was stolen).
Prints one JSON line.
"""

import json
import sys
import zlib

from mpi4py import MPI

from hpcingest.engine import WorkStealingEngine
from tests.mpi_scripts.engine_synthetic import children, expected_count


def home(node: bytes, size: int) -> int:
    return zlib.crc32(node) % size


def main() -> int:
    comm = MPI.COMM_WORLD
    report, ok = {}, True
    for shape in ("wide", "deep", "skewed", "random"):
        seen: list[bytes] = []

        def process(item: bytes, ctx) -> None:
            seen.append(item)
            by_home: dict[int, list[bytes]] = {}
            for child in children(item, shape):
                by_home.setdefault(home(child, comm.size), []).append(child)
            for rank, group in by_home.items():
                ctx.push_to(rank, *group)

        WorkStealingEngine(comm, process).run([b"0"] if comm.rank == 0 else [])
        at_home = sum(home(n, comm.size) == comm.rank for n in seen)
        everything = comm.gather(seen, root=0)
        homes = comm.gather(at_home, root=0)
        if comm.rank == 0:
            flat = [n for part in everything for n in part]
            expected = expected_count(shape)
            ok &= len(flat) == expected and len(set(flat)) == expected
            report[shape] = {"expected": expected, "seen": len(flat), "unique": len(set(flat)),
                             "at_home": sum(homes)}
    if comm.rank == 0:
        print(json.dumps({"ok": ok, "report": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
