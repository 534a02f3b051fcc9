"""Noticing a rank that died, and ending the job in bounded time instead of hanging.

Under ``mpiexec`` the launcher tears the job down when one rank dies; under ``srun`` only
``--kill-on-bad-exit`` does, and many sites run with ``KillOnBadExit=0``.  Without it the
other ranks wait for the dead one forever: in a termination wave, for a sync-state reply, or
inside a collective, until the allocation's time limit.  So the job watches itself.

Every rank's :class:`PeerWatch` thread (it never calls MPI) touches its own heartbeat file in
``<job>/alive/`` every few seconds for the whole run.  Rank 0 watches every rank's file, the
others watch rank 0's: a file that stops changing for ``timeout`` seconds (measured on the
watcher's own clock, so clock skew between nodes does not matter) is a dead rank.  A rank that
leaves normally renames its file to a "left" mark first.  The watcher that notices writes a notice naming the
rank and its host, and every rank that sees the notice (each looks every beat) stops taking
work and aborts the engine; the pass's sync state is committed on the way out, so the job is
resumable at once.  A rank whose main thread is stuck inside an MPI collective with the dead
rank cannot unwind; its watcher ends the process after a short grace period.  Ranks leave with
``os._exit`` (an ``MPI_Finalize`` with a dead peer may never return), and the job is recorded
as died.  Cost: each rank touches one file and stats one or two per beat; rank 0 stats one per
rank.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from hpcingest.jobdir import read_note, write_note_once

ALIVE_DIR = "alive"
NOTICE_FILE = "lost_rank"
LEFT_SUFFIX = ".left"
DEFAULT_TIMEOUT_S = 60.0
EXIT_RANK_LOST = 3  # distinct from 1 (failures) and 2 (usage): scripts can tell the cause


class RankLost(Exception):
    """A peer rank stopped answering; the message says which and where."""


@dataclass
class _Heartbeat:
    mtime_ns: int
    changed: float  # the watcher's monotonic clock when mtime last changed


def beat_path(job_path: str, rank: int) -> str:
    return os.path.join(job_path, ALIVE_DIR, f"rank{rank:05d}")


def heartbeat_age(job_path: str, rank: int = 0) -> float | None:
    """Seconds since ``rank`` last beat (by this host's clock), None when it is not beating:
    for telling from another node whether a job still runs, between passes too."""
    try:
        return time.time() - os.stat(beat_path(job_path, rank)).st_mtime
    except OSError:
        return None


def notice_path(job_path: str) -> str:
    return os.path.join(job_path, NOTICE_FILE)


def reset(job_path: str) -> None:
    """Before a run starts its ranks: an earlier run's notice and heartbeats mean nothing now."""
    directory = os.path.join(job_path, ALIVE_DIR)
    stale = [os.path.join(directory, name) for name in (os.listdir(directory) if os.path.isdir(directory) else ())]
    for path in (notice_path(job_path), *stale):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def read_notice(job_path: str) -> str | None:
    return read_note(notice_path(job_path))


class PeerWatch:
    """The heartbeat and watch thread of one rank, for the whole run (a context manager).

    ``on_lost(message)`` runs in the watch thread when the job must end; it sets the events
    the main thread polls.  If the main thread has not called :meth:`handled` within
    ``grace_s`` after that, ``force_exit(message, wrote_notice)`` ends the process."""

    def __init__(self, job_path: str, rank: int, size: int, timeout_s: float, on_lost: Callable[[str], None],
                 force_exit: Callable[[str, bool], None], grace_s: float = 10.0) -> None:
        self.job_path = job_path
        self.rank = rank
        self.size = size
        self.timeout_s = timeout_s
        self.beat_s = max(0.2, min(5.0, timeout_s / 6))
        self.grace_s = grace_s
        self._on_lost = on_lost
        self._force_exit = force_exit
        self._watched = range(1, size) if rank == 0 else [0]
        self._seen: dict[int, _Heartbeat] = {}
        self._started = 0.0
        self._done = threading.Event()
        self._handled = threading.Event()
        self.lost: str | None = None
        self.wrote_notice = False
        self._thread = threading.Thread(target=self._run, name="hpcingest-peerwatch", daemon=True)

    def __enter__(self) -> "PeerWatch":
        os.makedirs(os.path.join(self.job_path, ALIVE_DIR), mode=0o700, exist_ok=True)
        with open(os.open(beat_path(self.job_path, self.rank), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "w") as out:
            out.write(f"{socket.gethostname()} {os.getpid()}\n")
        self._started = time.monotonic()
        if self.size > 1:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """A normal end: the heartbeat becomes a "left" mark, so no watcher takes the silence
        for a death (even one that never saw this rank beat: a short run ends before a beat)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            os.replace(beat_path(self.job_path, self.rank), beat_path(self.job_path, self.rank) + LEFT_SUFFIX)
        except FileNotFoundError:
            pass

    def handled(self) -> None:
        """The main thread unwound after a lost rank and will end the process itself."""
        self._handled.set()

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while not self._done.wait(self.beat_s):
            try:
                os.utime(beat_path(self.job_path, self.rank))
            except OSError:
                pass  # a heartbeat is best effort; the watch below still runs
            message = read_notice(self.job_path) or self._find_dead()
            if message is not None:
                self._lose(message)
                return

    def _find_dead(self) -> str | None:
        now = time.monotonic()
        for rank in self._watched:
            try:
                st = os.stat(beat_path(self.job_path, rank))
            except FileNotFoundError:
                if now - self._started < self.timeout_s or os.path.exists(beat_path(self.job_path, rank) + LEFT_SUFFIX):
                    continue  # not started yet, or it left normally
                return self._declare(rank, "never started its heartbeat")
            except OSError:
                continue
            seen = self._seen.get(rank)
            if seen is None or seen.mtime_ns != st.st_mtime_ns:
                self._seen[rank] = _Heartbeat(st.st_mtime_ns, now)
            elif now - seen.changed > self.timeout_s:
                return self._declare(rank, f"sent no heartbeat for {now - seen.changed:.0f} s")
        return None

    def _declare(self, rank: int, what: str) -> str:
        """Write the notice (the first watcher's wins) and return its text."""
        try:
            with open(beat_path(self.job_path, rank), encoding="utf-8") as source:
                host, _, pid = source.read().strip().partition(" ")
        except OSError:
            host, pid = "?", "?"
        message = (f"rank {rank} on host {host} (pid {pid}) {what} (--dead_rank_timeout {self.timeout_s:g} s): "
                   "it died or hangs, so the job cannot finish")
        self.wrote_notice = write_note_once(notice_path(self.job_path), message)
        return message if self.wrote_notice else read_notice(self.job_path) or message

    def _lose(self, message: str) -> None:
        self.lost = message
        self._on_lost(message)
        if not self._handled.wait(self.grace_s):
            self._force_exit(message, self.wrote_notice)


def exit_now(code: int) -> None:
    """Leave without MPI_Finalize, which may wait forever for a dead peer."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
