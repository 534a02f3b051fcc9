"""``get_redis(config)`` for handlers that keep small counters in Redis (the old ``retry.py``).

hpcingest runs without Redis, so this returns a process-local store with the handful of
Redis string commands such handlers use. State is per rank and per run: fine for
"fail the first attempt" style logic, which retries on the same rank, but not shared.
Values come back as ``bytes``, as redis-py returns them.
"""

from __future__ import annotations

from typing import Any


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


class LocalRedis:
    """The subset of ``redis.StrictRedis`` string commands, in memory."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def set(self, key: str, value: Any) -> bool:
        self._data[key] = _encode(value)
        return True

    def incr(self, key: str, amount: int = 1) -> int:
        value = int(self._data.get(key, b"0")) + amount
        self._data[key] = _encode(value)
        return value

    def decr(self, key: str, amount: int = 1) -> int:
        return self.incr(key, -amount)

    def delete(self, *keys: str) -> int:
        return sum(self._data.pop(k, None) is not None for k in keys)

    def exists(self, *keys: str) -> int:
        return sum(k in self._data for k in keys)


_store = LocalRedis()


def get_redis(config: Any = None) -> LocalRedis:
    """The one store of this process, whatever the config says (there is no server to pick)."""
    return _store
