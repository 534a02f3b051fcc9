"""Run under mpiexec: rank 1 raises while the others wait in a collective walk.

run_collectively must abort the whole job instead of leaving ranks hung.
"""

import sys
import time

from hpcingest.engine import WorkStealingEngine
from hpcingest.launch import run_collectively


def body(comm) -> int:
    def process(item: bytes, ctx) -> None:
        if comm.Get_rank() == 1:
            raise RuntimeError("injected failure on rank 1")
        time.sleep(0.01)
        for _ in range(2):
            ctx.push(b"x")  # endless work: only an abort ends this job

    WorkStealingEngine(comm, process).run([b"x"] * 50 if comm.Get_rank() == 0 else [])
    return 0


if __name__ == "__main__":
    sys.exit(run_collectively(body))
