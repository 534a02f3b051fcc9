"""Per-rank activity recording for ``--profile``: what each rank was doing, and when.

Activities nest (an iRODS call inside a sink batch inside a stat batch), but the picture
wants one colour per instant, so the recorder keeps a stack and writes *exclusive*
segments: when a child starts, the parent's open segment is closed, and it reopens when
the child ends.  Every instant of a rank's time is then in at most one segment, and the
per-kind totals add up to the wall time.

Recording must be cheap enough to leave on: a segment is three appends to typed arrays
(no objects per segment), and a disabled recorder is a shared object whose methods do
nothing.  Only the main thread records (PRC's parallel transfers use worker threads).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from array import array
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from hpcingest.profile.timeline import RankTimeline


class _Span:
    """Context manager for one activity; reused, never allocated per call."""

    __slots__ = ("_begin", "_end", "_kind")

    def __init__(self, begin: Callable[[int], None], end: Callable[[], None], kind: int) -> None:
        self._begin, self._end, self._kind = begin, end, kind

    def __enter__(self) -> None:
        self._begin(self._kind)

    def __exit__(self, *exc) -> None:
        self._end()


class _NoSpan:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


_NO_SPAN = _NoSpan()


class NullRecorder:
    """The recorder when ``--profile`` is off: every call is a no-op."""

    enabled = False

    def span(self, kind: str):
        return _NO_SPAN

    def switch(self, kind: str | None) -> None:
        return None

    def begin(self, kind: str) -> None:
        return None

    def end(self) -> None:
        return None


class ActivityRecorder:
    """Records exclusive (start, end, kind) segments for this process's main thread."""

    enabled = True

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self._kind_ids: dict[str, int] = {}
        self._spans: dict[str, _Span] = {}
        self._starts = array("d")
        self._ends = array("d")
        self._kind_col = array("H")
        self._stack: list[int] = []
        self._open_since = 0.0
        self._main = threading.main_thread().ident
        self.started = time.time()
        # wall-clock times from a monotonic clock: no jumps inside one recording
        self._offset = self.started - time.perf_counter()

    def kind_id(self, kind: str) -> int:
        found = self._kind_ids.get(kind)
        if found is None:
            found = self._kind_ids[kind] = len(self.kinds)
            self.kinds.append(kind)
        return found

    def span(self, kind: str) -> _Span:
        span = self._spans.get(kind)
        if span is None:
            span = self._spans[kind] = _Span(self._begin_id, self.end, self.kind_id(kind))
        return span

    def begin(self, kind: str) -> None:
        self._begin_id(self.kind_id(kind))

    def _begin_id(self, kind: int) -> None:
        if threading.get_ident() != self._main:
            return
        now = time.perf_counter()
        if self._stack:
            self._close(self._stack[-1], now)
        self._stack.append(kind)
        self._open_since = now

    def end(self) -> None:
        if threading.get_ident() != self._main or not self._stack:
            return
        now = time.perf_counter()
        self._close(self._stack.pop(), now)
        self._open_since = now

    def switch(self, kind: str | None) -> None:
        """Replace the innermost activity (e.g. idle -> steal) without growing the stack;
        ``None`` ends it."""
        if self._stack:
            self.end()
        if kind is not None:
            self.begin(kind)

    def _close(self, kind: int, now: float) -> None:
        if now > self._open_since:
            self._starts.append(self._open_since + self._offset)
            self._ends.append(now + self._offset)
            self._kind_col.append(kind)

    def timeline(self, rank: int) -> RankTimeline:
        """This rank's recording so far (open activities are cut at the current instant)."""
        import numpy as np  # here: every rank imports this module, only --profile needs numpy (see preload)

        from hpcingest.profile.timeline import SEGMENT_DTYPE, RankTimeline

        now = time.perf_counter()
        starts, ends, kinds = array("d", self._starts), array("d", self._ends), array("H", self._kind_col)
        if self._stack and now > self._open_since:
            starts.append(self._open_since + self._offset)
            ends.append(now + self._offset)
            kinds.append(self._stack[-1])
        segments = np.empty(len(starts), dtype=SEGMENT_DTYPE)
        segments["start"] = np.frombuffer(starts, dtype="<f8")
        segments["end"] = np.frombuffer(ends, dtype="<f8")
        segments["kind"] = np.frombuffer(kinds, dtype="<u2")
        return RankTimeline(rank=rank, host=socket.gethostname(), kinds=list(self.kinds), segments=segments,
                            started=self.started, ended=now + self._offset)

    def save(self, directory: str | os.PathLike, job_name: str, pass_number: int, rank: int) -> None:
        from hpcingest.profile.timeline import write_rank

        write_rank(directory, job_name, pass_number, self.timeline(rank))


#: The recorder of this process (one MPI rank per process); ``activate`` swaps it in.
current: NullRecorder | ActivityRecorder = NullRecorder()


def preload() -> None:
    """Import what saving a recording needs (numpy): before the ranks line up to start, so
    that no rank's import shows as a gap at the start of every other rank's timeline."""
    import hpcingest.profile.timeline  # noqa: F401


def activate() -> ActivityRecorder:
    """Start a fresh recording (one per pass)."""
    global current
    current = ActivityRecorder()
    return current


def deactivate() -> None:
    global current
    current = NullRecorder()
