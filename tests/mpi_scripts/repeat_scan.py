"""Run under mpiexec: hundreds of scans of tiny and empty trees in one job.

Termination detection is most fragile when there is almost no work: ranks go idle at
once and tokens race with steal requests.  Every run must end, and rank 0 checks each
listing against os.walk (no entry lost, none duplicated).  Prints one JSON line.
"""

import json
import os
import sys

from mpi4py import MPI

from hpcingest.exclusions import Exclusions
from hpcingest.records import EntryBatch, WalkError
from hpcingest.sources.posix import PosixSource
from hpcingest.walk import run_walk


class CollectingSink:
    def __init__(self) -> None:
        self.paths: list[bytes] = []

    def consume(self, batch: EntryBatch, ctx) -> None:
        self.paths.extend(batch.relpath(n) for n in batch.names)

    def error(self, error: WalkError) -> None:
        raise AssertionError(f"unexpected walk error {error}")


def expected_paths(root: bytes) -> set[bytes]:
    found = set()
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(top, name), root))
    return found


def main() -> int:
    comm = MPI.COMM_WORLD
    base = os.fsencode(sys.argv[1])
    runs = int(sys.argv[2])
    roots = sorted(os.path.join(base, name) for name in os.listdir(base))
    expected = {root: expected_paths(root) for root in roots} if comm.rank == 0 else None
    failures = []
    for i in range(runs):
        root = roots[i % len(roots)]
        sink = CollectingSink()
        run_walk(comm, PosixSource(root, files_per_task=1 + i % 3, exclusions=Exclusions()), sink)
        gathered = comm.gather(sink.paths, root=0)
        if comm.rank == 0:
            flat = [p for part in gathered for p in part]
            if len(flat) != len(set(flat)) or set(flat) != expected[root]:
                failures.append({"run": i, "root": os.fsdecode(root), "got": len(flat),
                                 "expected": len(expected[root])})
    if comm.rank == 0:
        print(json.dumps({"runs": runs, "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
