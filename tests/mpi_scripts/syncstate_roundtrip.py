"""Run under mpiexec: write sync records for a synthetic tree through the owner-served shards,
or read them back (possibly with a different rank count) and check every one.

argv: STATE_DIR write|check DIRECTORIES NAMES_PER_DIRECTORY
"""

import json
import sys

from mpi4py import MPI

from hpcingest.engine import WorkStealingEngine
from hpcingest.syncstate import SyncState


def expected_time(directory: bytes, name: bytes) -> float:
    return float(len(directory) * 1000 + int(name[1:]))


def main() -> int:
    comm = MPI.COMM_WORLD
    state_dir, mode, n_dirs, n_names = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    state = SyncState(state_dir, comm.rank, comm.size)
    problems = []

    def process(item: bytes, ctx) -> None:
        directory = item
        names = [b"f%d" % i for i in range(n_names)]
        if mode == "write":
            state.record(ctx, directory, [(n, expected_time(directory, n), 3) for n in names])
            return
        found = state.lookup(ctx, directory, names + [b"absent"])
        if set(found) != set(names):
            problems.append(f"{directory!r}: {len(found)} records")
        for name, record in found.items():
            if record != expected_time(directory, name):
                problems.append(f"{directory!r}/{name!r}: {record}")

    items = [b"dir/" + b"x" * (i % 7) + b"%d" % i for i in range(n_dirs)] if comm.rank == 0 else []
    WorkStealingEngine(comm, process, services=state.services()).run(items)
    state.close()
    all_problems = comm.gather(problems, root=0)
    if comm.rank == 0:
        print(json.dumps({"problems": [p for part in all_problems for p in part][:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
