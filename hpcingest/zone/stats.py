"""Per-API request accounting, so benchmarks can say how many server round trips a workload costs."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass


@dataclass
class ApiCount:
    name: str
    count: int = 0
    errors: int = 0
    total_seconds: float = 0.0
    max_seconds: float = 0.0


class ApiStats:
    """Counts and service times by API number; thread-safe, dumped as JSON on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_api: dict[int | str, ApiCount] = {}

    def record(self, api_number: int | str, name: str, seconds: float, failed: bool) -> None:
        with self._lock:
            entry = self._by_api.get(api_number)
            if entry is None:
                entry = self._by_api[api_number] = ApiCount(name)
            entry.count += 1
            entry.errors += failed
            entry.total_seconds += seconds
            if seconds > entry.max_seconds:
                entry.max_seconds = seconds

    def snapshot(self) -> dict[str, dict]:
        """``{"<api number>": {"name", "count", "errors", "total_seconds", "max_seconds"}}``; events
        that are no API request (an agent refused at connect) are keyed by their name."""
        with self._lock:
            return {str(number): asdict(entry) for number, entry in sorted(self._by_api.items(), key=_key)}

    def write(self, path: str) -> None:
        """Write atomically so a reader polling the file never sees half a document."""
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self.snapshot(), out, indent=1, sort_keys=True)
        os.replace(tmp, path)


def _key(item: tuple) -> tuple[int, int | str]:
    number = item[0]
    return (0, number) if isinstance(number, int) else (1, number)
