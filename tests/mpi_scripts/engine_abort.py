"""Run under mpiexec: an abort set from another thread ends the run on every rank, wherever it
waits.  Rank 0 holds the only item and waits inside it for a reply that never comes (as a rank
waiting for a dead peer's sync state would); the others sit idle in termination waves.  A
timer thread sets the abort event on each rank; every rank must raise EngineAborted.  Prints
one JSON line per rank."""

import json
import threading

from mpi4py import MPI

from hpcingest.engine import EngineAborted, WorkStealingEngine

comm = MPI.COMM_WORLD
abort = threading.Event()


def process(item: bytes, ctx) -> None:
    ctx.wait_until(lambda: False)  # a reply that never comes


threading.Timer(1.0, abort.set).start()
engine = WorkStealingEngine(comm, process, abort=abort)
try:
    engine.run([b"x"] if comm.Get_rank() == 0 else [])
    outcome = "finished"
except EngineAborted:
    outcome = "aborted"
print(json.dumps({"rank": comm.Get_rank(), "outcome": outcome}), flush=True)
