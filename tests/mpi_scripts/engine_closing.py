"""Run under mpiexec: the walk's closing round carries each rank's integers to every rank
and each rank's report to rank 0.

Each rank reports how many items it processed and a large value (past 2**53, so a float
would lose it), and a report naming itself; every rank checks that ``stats.closing`` holds
every rank's pair, in rank order, and that the counts add up to the whole tree; rank 0
checks the reports.  Prints one JSON line on rank 0.
"""

import json
import sys

from mpi4py import MPI

from hpcingest.engine import Closing, WorkStealingEngine
from tests.mpi_scripts.engine_synthetic import children, expected_count

BIG = 2**60 + 1


def main() -> int:
    comm = MPI.COMM_WORLD
    seen: list[bytes] = []

    def process(item: bytes, ctx) -> None:
        seen.append(item)
        for child in children(item, "random"):
            ctx.push(child)

    def closing(stats) -> Closing:
        return Closing(shared=[stats.items_processed, BIG + comm.rank], report=b"rank %d \xff" % comm.rank * comm.rank)

    stats = WorkStealingEngine(comm, process).run([b"0"] if comm.rank == 0 else [], closing=closing)
    ok = (stats.closing is not None and len(stats.closing) == comm.size
          and [big for _, big in stats.closing] == [BIG + r for r in range(comm.size)]
          and stats.closing[comm.rank][0] == len(seen)
          and sum(count for count, _ in stats.closing) == expected_count("random"))
    if comm.rank == 0:
        ok = ok and stats.reports == [b"rank %d \xff" % r * r for r in range(comm.size)]
    every = comm.gather(ok, root=0)
    doorbells = comm.gather(stats.doorbell, root=0)
    if comm.rank == 0:
        print(json.dumps({"ok": all(every), "closing": stats.closing, "doorbells": doorbells}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
