"""Change detection: the old framework's sync_time rules, decided per entry.

Kept pure (no I/O) so the rules are tested on their own.  ``previous`` is the last sync
time the state recorded (None with --ignore_cache or on a first pass); ``exists`` is what the batched
catalog query found (None when --initial_ingest skipped it).  ``sync_time`` and ``object_sync_time``
give the time recorded after a sync, ``too_young`` the landing-zone rule of ``--min_age``.
"""

from __future__ import annotations

import enum
import math
import sys
import time
from typing import Iterable


class Change(enum.Enum):
    UNCHANGED = "unchanged"  # mtime and ctime before the last sync: nothing to do, no hooks
    NEW = "new"  # not in the catalog
    CONTENT = "content"  # mtime at or after the last sync (or never synced)
    METADATA = "metadata"  # only ctime moved (chmod, chown): modify hooks around a no-op


def _coarse_clock_tick() -> float:
    if sys.platform.startswith("linux"):  # Python 3.11 lacks the name of Linux's CLOCK_REALTIME_COARSE (5)
        return time.clock_getres(getattr(time, "CLOCK_REALTIME_COARSE", 5))
    return 0.01  # no coarse clock to ask: a generous tick


# File times are stamped from the kernel's coarse clock, up to a tick behind time.time(): a
# write just after a stat can carry an mtime below the time taken before that stat.  Two ticks
# of margin (a few ms) cost a second look at the rare file changed in them, never a lost change.
FILE_CLOCK_LAG = 2 * _coarse_clock_tick()
_SECOND_NS = 1_000_000_000


def sync_time(statted_at: float, stats: Iterable, whole_seconds: bool = False) -> float:
    """The sync time to record for entries statted at ``statted_at``: below the time stamp of
    any change made after their stat, so that change is seen by the next pass.

    Filesystems that keep whole seconds (Lustre, ext3, many NFS servers; S3 always, given as
    ``whole_seconds``) stamp a change made later in the second of the stat *before* the stat:
    when every time of the batch is a whole second, the second's start is recorded instead."""
    synced = statted_at - FILE_CLOCK_LAG
    if whole_seconds or not any(s.st_mtime_ns % _SECOND_NS or s.st_ctime_ns % _SECOND_NS for s in stats):
        return math.floor(synced)
    return synced


def object_sync_time(listing_synced: float, last_modified: float) -> float:
    """The sync time to record for an S3 object: below its listing's, and no later than the
    second after the LastModified it was listed with.

    S3 stamps an object with the time its upload *began* (for a multipart upload, its
    CreateMultipartUpload), by the endpoint's clock: a new version whose upload began before
    a pass's listing and ended after it, or one stamped by an endpoint whose clock is behind
    ours, carries a time below the listing's and would be taken for unchanged by every later
    pass.  A later version is stamped a later second than the one listed, by the same clock."""
    return min(listing_synced, math.floor(last_modified) + 1)


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
