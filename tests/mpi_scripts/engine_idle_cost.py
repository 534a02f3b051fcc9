"""Run under mpiexec: what idle ranks cost while one rank works.

Rank 0 processes one item for ``seconds`` (sleeping in short steps and polling, so it uses
almost no CPU itself); every other rank has nothing to do and waits in the engine's idle loop,
as 112 of 128 ranks do while 16 connected ranks ingest.  Each rank measures its own CPU time
over the run; rank 0 prints one JSON line with the idle ranks' CPU seconds and the wall time.
"""

import json
import sys
import time

from mpi4py import MPI

from hpcingest.engine import FIRST_SERVICE_TAG, WorkStealingEngine


def main() -> int:
    comm = MPI.COMM_WORLD
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0

    def process(item: bytes, ctx) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.005)
            ctx.poll()

    # a service, as an ingest has (sync state, funnel): such an idle rank used to poll every 1 ms
    engine = WorkStealingEngine(comm, process, services={FIRST_SERVICE_TAG + 60: lambda *_: None})
    comm.Barrier()
    wall, cpu = time.monotonic(), time.process_time()
    engine.run([b"work"] if comm.rank == 0 else [])
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    spent = comm.gather(cpu, root=0)
    if comm.rank == 0:
        print(json.dumps({"idle_cpu_s": sum(spent[1:]), "wall_s": wall, "idle_ranks": comm.size - 1}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
