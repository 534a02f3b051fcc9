"""Run under mpiexec -n 2: a message already delivered when a rank looks is handled in that look.

A rank woken by its doorbell looks at its messages once and, finding nothing, sleeps its full
time again (up to 20 ms where ranks outnumber cores).  MPICH's Improbe that matches nothing
moves what has arrived into its queue and still answers "nothing", so a look that probed once
missed the message that had rung the bell: every hop of a termination wave waited one sleep.

Rank 1 runs an item in which it makes no MPI call until rank 0 has sent it a service message
(and that send has completed); the two sync through files, not MPI.  Then rank 1 looks exactly
once (``ctx.poll()``, poll interval 0) and reports whether the service ran in that look.
Prints one JSON line on rank 0.
"""

import json
import os
import sys
import time

from mpi4py import MPI

from hpcingest.engine import FIRST_SERVICE_TAG, WorkStealingEngine

HELLO = FIRST_SERVICE_TAG


def wait_for(path: str) -> None:
    """Until another rank creates ``path``; no MPI call meanwhile."""
    while not os.path.exists(path):
        time.sleep(0.001)


def main() -> int:
    comm = MPI.COMM_WORLD
    flags = comm.bcast(sys.argv[1] if comm.rank == 0 else None, root=0)
    inside, sent = os.path.join(flags, "inside"), os.path.join(flags, "sent")
    heard: list[bytes] = []
    result: dict = {}

    def hello(payload: bytes, source: int, engine) -> None:
        heard.append(payload)

    def process(item: bytes, ctx) -> None:
        if item == b"start":  # rank 0
            ctx.push_to(1, b"wait")
            wait_for(inside)
            ctx.send(b"hello", 1, HELLO)
            while ctx._pending_sends:  # a small eager send, once complete, is in rank 1's queue
                ctx._complete_sends()
            open(sent, "w").close()
        elif item == b"wait":  # rank 1
            open(inside, "w").close()
            wait_for(sent)
            ctx.poll()  # one look
            result["heard_in_one_look"] = heard == [b"hello"]

    engine = WorkStealingEngine(comm, process, services={HELLO: hello}, poll_interval_s=0.0)
    engine.run([b"start"] if comm.rank == 0 else [])
    results = comm.gather(result, root=0)
    if comm.rank == 0:
        print(json.dumps({"ok": results[1].get("heard_in_one_look") is True, "rank1": results[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
