"""Client-side latency of every iRODS API call, by API, for the summary and the profile.

Every request python-irodsclient makes goes through ``Connection.send`` and is answered
through ``Connection.recv``; wrapping those two (at runtime, the library itself is left
as it is) sees every API call whichever PRC helper made it, including the parallel
transfer threads.  Latencies go into fixed logarithmic histograms, so merging ranks is a
sum of arrays and percentiles cost nothing to keep, whatever the call count.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

from hpcingest import waits
from hpcingest.profile import recorder

#: Histogram bins: 16 per doubling from 1 us; 1 us * 2**(512/16) is over an hour.
BINS_PER_DOUBLING = 16
N_BINS = 512
_MIN_S = 1e-6


def bin_index(seconds: float) -> int:
    if seconds <= _MIN_S:
        return 0
    return min(N_BINS - 1, int(math.log2(seconds / _MIN_S) * BINS_PER_DOUBLING))


def bin_upper_s(index: int) -> float:
    return _MIN_S * 2 ** ((index + 1) / BINS_PER_DOUBLING)


@dataclass
class ApiLatency:
    """Calls of one API: count, total and max exactly, the distribution within 4.4%."""

    calls: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * N_BINS)

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds
        self.histogram[bin_index(seconds)] += 1

    def merge(self, other: "ApiLatency") -> None:
        self.calls += other.calls
        self.total_s += other.total_s
        self.max_s = max(self.max_s, other.max_s)
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram)]

    def sparse(self) -> tuple[int, float, float, list[int], list[int]]:
        """Compact form for gathering over ranks: only the bins in use."""
        used = [i for i, count in enumerate(self.histogram) if count]
        return self.calls, self.total_s, self.max_s, used, [self.histogram[i] for i in used]

    @classmethod
    def from_sparse(cls, data: tuple[int, float, float, list[int], list[int]]) -> "ApiLatency":
        calls, total_s, max_s, used, counts = data
        latency = cls(calls, total_s, max_s)
        for index, count in zip(used, counts):
            latency.histogram[index] = count
        return latency

    def percentile_s(self, q: float) -> float:
        """The upper edge of the bin holding the q-th percentile (never above the max)."""
        if not self.calls:
            return 0.0
        rank = math.ceil(q / 100.0 * self.calls)
        index = bisect.bisect_left(list(accumulate(self.histogram)), max(rank, 1))
        return min(bin_upper_s(index), self.max_s)

    def summary(self) -> dict:
        ms = 1000.0
        return {"calls": self.calls, "total_s": round(self.total_s, 6),
                "mean_ms": round(self.total_s / self.calls * ms, 3) if self.calls else 0.0,
                "p50_ms": round(self.percentile_s(50) * ms, 3), "p95_ms": round(self.percentile_s(95) * ms, 3),
                "p99_ms": round(self.percentile_s(99) * ms, 3), "max_ms": round(self.max_s * ms, 3)}


class ApiTimer:
    """Per-process collection of API latencies (one MPI rank per process)."""

    def __init__(self) -> None:
        self.by_api: dict[str, ApiLatency] = {}
        self._lock = threading.Lock()

    def add(self, api: str, seconds: float) -> None:
        with self._lock:
            latency = self.by_api.get(api)
            if latency is None:
                latency = self.by_api[api] = ApiLatency()
            latency.add(seconds)

    def take(self) -> dict[str, ApiLatency]:
        """Everything recorded since the last take (one pass's worth)."""
        with self._lock:
            taken, self.by_api = self.by_api, {}
        return taken


def merge_latencies(parts: list[dict[str, ApiLatency]]) -> dict[str, ApiLatency]:
    merged: dict[str, ApiLatency] = {}
    for part in parts:
        for api, latency in part.items():
            merged.setdefault(api, ApiLatency()).merge(latency)
    return merged


timer = ApiTimer()
_installed = False


def install() -> None:
    """Wrap PRC's Connection.send/recv once per process; idempotent."""
    global _installed
    if _installed:
        return
    from irods.api_number import api_number
    from irods.connection import Connection

    names = {number: name for name, number in api_number.items()}
    original_send, original_recv = Connection.send, Connection.recv

    def send(self, message):
        if message.msg_type == "RODS_API_REQ":
            name = names.get(message.int_info, str(message.int_info))
            calls = self.__dict__.setdefault("_hpcingest_calls", deque())
            if not calls:  # the profile shows the connection busy from the first request out
                recorder.current.begin("irods:" + name)
                waits.board.calling(f"iRODS {name}")
            calls.append((name, time.perf_counter()))
            try:
                return original_send(self, message)
            except BaseException:
                calls.pop()
                if not calls:
                    recorder.current.end()
                    waits.board.called()
                raise
        return original_send(self, message)

    def recv(self, *args, **kwargs):
        try:
            return original_recv(self, *args, **kwargs)
        except BaseException:
            waits.board.called()  # the connection is lost with whatever else was in flight
            raise
        finally:
            calls = self.__dict__.get("_hpcingest_calls")
            if calls:  # replies come in request order, also when requests are pipelined
                name, started = calls.popleft()
                timer.add(name, time.perf_counter() - started)
                if not calls:
                    recorder.current.end()
                    waits.board.called()

    Connection.send, Connection.recv = send, recv
    _installed = True
