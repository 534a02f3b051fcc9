"""Doorbells: a rank that sleeps between looks at its MPI messages wakes when one is for it.

Why: MPICH's blocking calls busy-poll, so an idle rank sleeps and looks again (the engine's
backoff: up to 5 ms, 20 ms where ranks outnumber cores).  Every message to a sleeping rank then
waits for the rest of its sleep, and a chain of them (a termination wave crossing the rank tree,
the closing round going up and down it) adds one sleep per hop: at 256 ranks on two cores,
learning that the walk was over took 1.6 s.  With a doorbell the sender of a message to a rank
on the same node also sends an empty datagram to that rank's socket, and the rank sleeps in
``poll`` on it: it wakes as soon as something is for it, and sleeps its full time otherwise.

Only messages that need an answer soon ring (the engine decides which); a rank on another node
gets no doorbell and finds its message at its next look, as before.  Sockets live in Linux's
abstract namespace (nothing on disk to clean up); where that is unavailable, or a name is taken,
a rank simply has no doorbell and sleeps as it did without one.  A ring that cannot be
delivered (the peer has no doorbell, or its queue is full, so it is waking anyway) is dropped.
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import time

_serials = itertools.count(1)  # one doorbell per engine of this process, each with its own name


def next_serial() -> int:
    """A number naming this process's next doorbell; peers learn it with the rank's pid."""
    return next(_serials)


def address(pid: int, serial: int) -> bytes:
    return b"\0hpcingest-doorbell-%d-%d" % (pid, serial)


class Doorbell:
    """This rank's doorbell, and the addresses of its peers' on the same node."""

    def __init__(self, serial: int, peers: dict[int, bytes]) -> None:
        self._peers = peers  # rank -> address, ranks on this node only
        self._sock: socket.socket | None = None
        if not peers:
            return  # alone on its node: nobody would ring it
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except (OSError, AttributeError):
            return
        try:
            sock.bind(address(os.getpid(), serial))
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        self._sock = sock
        self._poller = select.poll()  # not select(): a rank with many files open may hold fds past 1024
        self._poller.register(sock, select.POLLIN)

    @property
    def installed(self) -> bool:
        return self._sock is not None

    def ring(self, rank: int) -> None:
        """Wake ``rank`` if it is on this node and sleeping; never blocks, never fails."""
        addr = self._peers.get(rank)
        if addr is None or self._sock is None:
            return
        try:
            self._sock.sendto(b"", addr)
        except OSError:
            pass  # no doorbell there (it sleeps its time) or its queue is full (it is waking)

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if rung; then empty the queue of rings."""
        if self._sock is None:
            time.sleep(seconds)
            return
        if self._poller.poll(seconds * 1000.0):
            try:
                while True:
                    self._sock.recv(1)
            except OSError:
                pass

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
