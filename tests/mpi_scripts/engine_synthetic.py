"""Run under mpiexec: the engine over a synthetic tree of work (no filesystem).

Every item names a node of a random tree; processing it pushes its children.  Rank 0
checks that every node was processed exactly once, for several tree shapes and several
repetitions, and prints one JSON line of results.
"""

import json
import random
import sys
import time

from mpi4py import MPI

from hpcingest.engine import WorkStealingEngine

def children(node: bytes, shape: str) -> list[bytes]:
    """A node is its path from the root ("0.3.1"): unique by construction."""
    depth = node.count(b".")
    rng = random.Random(node)
    if shape == "wide":
        count = 40 if depth < 2 else 0
    elif shape == "deep":
        count = 1 if depth < 300 else 0
    elif shape == "skewed":
        count = 2000 if depth == 0 else (rng.randrange(4) if depth < 6 else 0)
    else:  # random
        count = rng.randrange(5) if depth < 7 else 0
    return [node + b".%d" % i for i in range(count)]


def run_once(comm, shape: str, slow: bool) -> tuple[int, list[bytes]]:
    seen: list[bytes] = []

    def process(item: bytes, ctx) -> None:
        seen.append(item)
        if slow and len(seen) % 7 == 0:
            time.sleep(0.0005)
        for child in children(item, shape):
            ctx.push(child)

    engine = WorkStealingEngine(comm, process)
    stats = engine.run([b"0"] if comm.rank == 0 else [])
    return stats.items_processed, seen


def expected_count(shape: str) -> int:
    total, stack = 0, [b"0"]
    while stack:
        total += 1
        stack.extend(children(stack.pop(), shape))
    return total


def main() -> int:
    comm = MPI.COMM_WORLD
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    report = {}
    ok = True
    for shape in ("wide", "deep", "skewed", "random"):
        expected = expected_count(shape) if comm.rank == 0 else None
        for rep in range(repeats):
            processed, seen = run_once(comm, shape, slow=(rep == 0))
            all_seen = comm.gather(seen, root=0)
            per_rank = comm.gather(processed, root=0)
            if comm.rank == 0:
                flat = [i for part in all_seen for i in part]
                good = len(flat) == expected and len(set(flat)) == expected
                ok &= good
                report.setdefault(shape, []).append({"expected": expected, "seen": len(flat),
                                                     "unique": len(set(flat)), "per_rank": per_rank})
    if comm.rank == 0:
        print(json.dumps({"ok": ok, "report": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
