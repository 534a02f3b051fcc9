"""SIGTERM and SIGINT end a pass the way `hpcingest stop` does: with a checkpoint.

Slurm sends SIGTERM at a time limit (with ``--signal`` ahead of it) and on ``scancel``; a user
at a terminal sends SIGINT.  Python's defaults kill a rank in the middle of an item (SIGTERM)
or raise KeyboardInterrupt wherever the rank happens to be, which printed a traceback per rank
and left the job recorded as running with its last sync times uncommitted, so the resumed pass
re-checked thousands of entries.  Here the first signal only asks for a stop: the rank stops
taking work, the item in hand finishes, the sync state is committed, the job is recorded as
stopped, and the command exits with 128 + the signal number.  The job's stop file is written
too, so every rank stops even when only one received the signal.  A second signal leaves at
once (the checkpoint of the last commit still holds); the same signal forwarded by the launcher
a moment later is not a second one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from hpcingest.ingest.monitor import request_stop

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# a rank often gets one signal twice: from the terminal or scancel, and forwarded by mpiexec or
# srun; a second one this soon is the same request, not "leave at once"
SAME_REQUEST_S = 1.0


class StopOnSignals:
    """Installs the handlers in the main thread for the life of a run (a context manager)."""

    def __init__(self, job_path: str | None, stop: threading.Event) -> None:
        """``job_path``: the job whose stop file tells every rank; None for a command with no
        job (scan), whose ranks each get the signal from the terminal or the launcher."""
        self.job_path = job_path
        self.stop = stop
        self.received: int | None = None
        self._first = 0.0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignals":
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def name(self) -> str | None:
        return signal.Signals(self.received).name if self.received is not None else None

    @property
    def exit_code(self) -> int | None:
        """What the command exits with after a stop by signal (the shell's convention)."""
        return 128 + self.received if self.received is not None else None

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None and time.monotonic() - self._first < SAME_REQUEST_S:
            return  # the launcher forwarding the signal the rank also got directly
        if self.received is not None:
            os.write(2, f"hpcingest: {signal.Signals(signum).name} again: leaving at once; the last "
                        "checkpoint stands, rerun the same command to resume\n".encode())
            os._exit(128 + signum)
        self.received, self._first = signum, time.monotonic()
        self.stop.set()
        if self.job_path is None:
            return
        try:
            request_stop(self.job_path, signal.Signals(signum).name)
        except OSError:
            pass  # this rank stops all the same; the others when their own signal arrives
