"""Collectives that sleep while they wait.

MPICH busy-polls inside blocking calls.  With more ranks than cores (common in tests, and
on nodes shared with filesystem daemons), a blocking Barrier or Gather makes every waiting
rank burn the core the late rank needs; one summary of 64 oversubscribed ranks took over a
second.  These helpers start the non-blocking form and poll it with a growing sleep.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from array import array

from hpcingest.launch import mpi_of


class Backoff:
    """Idle pacing: spin a few rounds, then sleep longer and longer, up to ``cap_s``.

    Real sleeps start early: with more ranks than cores, a spinning rank (even one calling
    sleep(0)) takes the core from a rank that has work.  The growth is gentle because a
    rank that sleeps too long answers steal requests late, which unbalances the walk
    (measured: growth 2.0 took max/mean entries per rank at 16 ranks on 2 cores from 1.2
    to 3.1).
    """

    def __init__(self, cap_s: float = 5e-3, growth: float = 1.05, sleep=time.sleep) -> None:
        self.cap_s = cap_s
        self.growth = growth
        self.idle_rounds = 0
        self._sleep = 0.0
        self._sleep_for = sleep  # e.g. a doorbell's, which returns early when rung

    def reset(self) -> None:
        self.idle_rounds = 0

    def pause(self) -> None:
        self.idle_rounds += 1
        if self.idle_rounds <= 10:
            self._sleep = 2e-5
            return
        self._sleep_for(self._sleep)
        self._sleep = min(self.cap_s, self._sleep * self.growth)


def wait(request) -> None:
    backoff = Backoff()
    while not request.Test():
        backoff.pause()


def barrier(comm) -> None:
    wait(comm.Ibarrier())


def dup(comm):
    new, request = comm.Idup()
    wait(request)
    return new


def bcast_object(comm, obj=None, root: int = 0):
    """Broadcast a picklable object from ``root``; every rank returns it."""
    MPI = mpi_of(comm)

    payload = pickle.dumps(obj) if comm.Get_rank() == root else b""
    length = array("q", [len(payload)])
    wait(comm.Ibcast([length, MPI.INT64_T], root=root))
    buf = bytearray(payload) if comm.Get_rank() == root else bytearray(int(length[0]))
    wait(comm.Ibcast([buf, MPI.BYTE], root=root))
    return pickle.loads(bytes(buf))


def allgather_int(comm, value: int) -> list[int]:
    """Every rank's ``value`` (a 64-bit integer), in rank order, on every rank."""
    MPI = mpi_of(comm)

    values = array("q", bytes(8 * comm.Get_size()))
    wait(comm.Iallgather([array("q", [value]), MPI.INT64_T], [values, MPI.INT64_T]))
    return list(values)


def oversubscription(local_ranks: int) -> float:
    """How many ranks share each CPU of this node (1 when each has its own, or more)."""
    return max(1.0, local_ranks / (os.cpu_count() or 1))


def node_neighbours(comm, value: int) -> dict[int, tuple[int, int]]:
    """The ranks sharing this rank's host (by processor name), this rank excluded, each with its
    process id and the ``value`` it passed (one round: the engine learns its peers' doorbells
    with them)."""
    MPI = mpi_of(comm)

    digest = hashlib.blake2b(MPI.Get_processor_name().encode(), digest_size=7).digest()
    key = int.from_bytes(digest, "little")
    me = comm.Get_rank()
    every = array("q", bytes(24 * comm.Get_size()))
    wait(comm.Iallgather([array("q", [key, os.getpid(), value]), MPI.INT64_T], [every, MPI.INT64_T]))
    return {r: (every[3 * r + 1], every[3 * r + 2]) for r in range(comm.Get_size())
            if every[3 * r] == key and r != me}
