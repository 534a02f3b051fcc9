"""Run under mpiexec: asynchronous sync-state lookups the way the ingest sink makes them, for
small directories (answered whole and kept) and one larger than a whole reply may be
(answered batch by batch with the names asked for).

argv: STATE_DIR write|check.  Prints one JSON line: problems found, and on how many ranks the
large directory was answered batch by batch.
"""

import json
import sys

from mpi4py import MPI

from hpcingest.engine import WorkStealingEngine
from hpcingest.syncstate import WHOLE_REPLY_ROWS, SyncState

LARGE = b"large"
DIRECTORIES = {LARGE: WHOLE_REPLY_ROWS + 3000, **{b"small/%d" % i: 120 for i in range(30)}}
BATCH = 50


def sync_time(directory: bytes, name: bytes) -> float:
    return float(len(directory) * 100000 + int(name[1:]))


def batches() -> list[bytes]:
    items = []
    for directory, count in DIRECTORIES.items():
        for start in range(0, count, BATCH):
            items.append(b"%s\0%d\0%d" % (directory, start, min(start + BATCH, count)))
    return items


def main() -> int:
    comm = MPI.COMM_WORLD
    state_dir, mode = sys.argv[1], sys.argv[2]
    state = SyncState(state_dir, comm.rank, comm.size)
    problems, answered, asked = [], [], []

    def process(item: bytes, ctx) -> None:
        directory, start, end = item.split(b"\0")
        names = [b"f%d" % i for i in range(int(start), int(end))]
        if mode == "write":
            state.record(ctx, directory, [(n, sync_time(directory, n), 3) for n in names])
            return
        asked.append(item)

        def check(rows, directory=directory, names=names, item=item) -> None:
            answered.append(item)
            for name in names:
                if rows.get(name) != sync_time(directory, name):
                    problems.append(f"{directory!r}/{name!r}: {rows.get(name)}")

        state.lookup_async(ctx, directory, names + [b"absent"], check)

    WorkStealingEngine(comm, process, services=state.services()).run(batches() if comm.rank == 0 else [])
    state.close()
    if sorted(answered) != sorted(asked):
        problems.append(f"rank {comm.rank}: {len(asked)} lookups, {len(answered)} answers")
    all_problems = comm.gather(problems, root=0)
    large = comm.gather(LARGE in state._large, root=0)
    if comm.rank == 0:
        print(json.dumps({"problems": [p for part in all_problems for p in part][:20],
                          "ranks_answered_batch_by_batch": sum(large)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
