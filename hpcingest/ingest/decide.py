"""Change detection: the old framework's sync_time rules, decided per entry.

Kept pure (no I/O) so the rules are tested on their own.  ``previous`` is the last sync
time the state recorded (None with --ignore_cache or on a first pass); ``exists`` is what the batched
catalog query found (None when --initial_ingest skipped it).  ``too_young`` is the landing-zone rule
of ``--min_age``.
"""

from __future__ import annotations

import enum


class Change(enum.Enum):
    UNCHANGED = "unchanged"  # mtime and ctime before the last sync: nothing to do, no hooks
    NEW = "new"  # not in the catalog
    CONTENT = "content"  # mtime at or after the last sync (or never synced)
    METADATA = "metadata"  # only ctime moved (chmod, chown): modify hooks around a no-op


def needs_catalog(mtime: float, ctime: float, previous: float | None) -> bool:
    """Whether the entry must be looked up in the catalog at all."""
    return not (previous is not None and mtime < previous and ctime < previous)


def classify(mtime: float, ctime: float, previous: float | None, exists: bool | None) -> Change:
    if not needs_catalog(mtime, ctime, previous):
        return Change.UNCHANGED
    if not exists:
        return Change.NEW
    if previous is None or mtime >= previous:
        return Change.CONTENT
    return Change.METADATA


def too_young(ctime: float, now: float, min_age: float | None) -> bool:
    """Whether an entry changed less than ``min_age`` seconds ago (--min_age), so a file an
    instrument may still be writing is left for a later pass.  The change time is the ctime:
    every write moves it, and unlike the mtime no one can set it back (``touch -d``, ``cp -p``,
    ``rsync -t``), so a file given an old mtime while it is still written is not taken for old."""
    return bool(min_age) and now - ctime < min_age
