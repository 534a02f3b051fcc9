"""What this process's main thread is waiting for right now, for the progress reports.

A job that makes no progress must say why: an iRODS call that does not return, logins the
server refuses, a rank that does not take the batches sent to it.  The few places where a rank
waits on something outside itself say so here (``with waits.board.waiting("..."):``, or
``begin``/``end`` around a call in flight); the progress thread (hpcingest.ingest.monitor)
reads the innermost wait every few seconds.  Only the main thread is tracked (python-irodsclient's
parallel transfers call from worker threads), and tracking costs a list append and pop.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Wait:
    what: str
    since: float  # wall clock (time.time), comparable across ranks


class WaitBoard:
    def __init__(self) -> None:
        self._stack: list[Wait] = []
        self._call: Wait | None = None  # an iRODS request whose reply has not come yet
        self._main = threading.main_thread().ident

    def calling(self, what: str) -> None:
        """A request went out on a connection with nothing else in flight."""
        if threading.get_ident() == self._main:
            self._call = Wait(what, time.time())

    def called(self) -> None:
        """The connection has no request in flight any more (answered, or failed)."""
        if threading.get_ident() == self._main:
            self._call = None

    def begin(self, what: str, since: float | None = None) -> None:
        if threading.get_ident() == self._main:
            self._stack.append(Wait(what, time.time() if since is None else since))

    def end(self) -> None:
        if threading.get_ident() == self._main and self._stack:
            self._stack.pop()

    @contextmanager
    def waiting(self, what: str, since: float | None = None) -> Iterator[None]:
        self.begin(what, since)
        try:
            yield
        finally:
            self.end()

    def current(self) -> Wait | None:
        """The request in flight, else the innermost wait (read from any thread: one attribute
        and a list's last item are each read atomically)."""
        call, stack = self._call, self._stack
        if call is not None:
            return call
        try:
            return stack[-1]
        except IndexError:
            return None


board = WaitBoard()
