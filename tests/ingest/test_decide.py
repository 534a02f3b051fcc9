"""The sync time recorded after a pass: any change made after an entry's stat must show on the
next pass, however the filesystem stamps its times (the rules of change detection themselves are
the old framework's and are exercised end to end in test_register and test_hostile_sources)."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from hpcingest.ingest.decide import FILE_CLOCK_LAG, needs_catalog, object_sync_time, sync_time


def test_a_write_right_after_a_stat_is_seen_by_the_next_pass(tmp_path):
    """The kernel stamps writes from its coarse clock, up to a tick behind time.time(): with
    the time before the stat recorded as it is, a write a moment later often looked older than
    the sync and was skipped by every later pass (the growing-file test lost its tail so)."""
    missed = 0
    for i in range(100):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"first")
        time.sleep(FILE_CLOCK_LAG)  # the coarse clock ticks on: the next write is stamped from it
        statted_at = time.time()
        st = os.lstat(path)
        with open(path, "ab") as f:
            f.write(b"more")
        changed = os.lstat(path)
        missed += not needs_catalog(changed.st_mtime, changed.st_ctime, sync_time(statted_at, [st]))
    assert missed == 0


def _whole_second_stat(seconds: int):
    return SimpleNamespace(st_mtime_ns=seconds * 10**9, st_ctime_ns=seconds * 10**9)


def test_a_filesystem_of_whole_seconds_gets_the_start_of_the_second_of_the_stat():
    """Lustre and many NFS servers keep whole seconds: a file written at 1000.7 after a stat at
    1000.5 is stamped 1000, which must not read as older than the sync."""
    synced = sync_time(1000.5, [_whole_second_stat(990), _whole_second_stat(1000)])
    assert synced == 1000 and needs_catalog(1000.0, 1000.0, synced)
    assert not needs_catalog(999.0, 999.0, synced)  # what did not change since is still skipped


def test_one_fine_time_in_the_batch_keeps_the_sync_time_fine():
    fine = SimpleNamespace(st_mtime_ns=1000 * 10**9, st_ctime_ns=1000 * 10**9 + 123)
    synced = sync_time(1000.5, [_whole_second_stat(990), fine])
    assert 1000.4 < synced < 1000.5  # a few ms of margin for the coarse clock, not the whole second


def test_s3_times_are_whole_seconds_whatever_the_batch_holds():
    fine = SimpleNamespace(st_mtime_ns=123, st_ctime_ns=123)
    assert sync_time(1000.5, [fine], whole_seconds=True) == 1000


def test_an_s3_version_stamped_before_the_listing_is_still_a_change():
    """An object listed at 2000.4 with LastModified 1500 is overwritten by a multipart upload
    that began at 1990 (before the listing) and ended after it: S3 stamps the new version 1990."""
    listing = sync_time(2000.4, [], whole_seconds=True)
    synced = object_sync_time(listing, 1500.0)
    assert synced == 1501
    assert needs_catalog(1990.0, 1990.0, synced)  # the new version
    assert not needs_catalog(1500.0, 1500.0, synced)  # the version listed, unchanged
    assert object_sync_time(listing, 2000.0) == 2000  # written in the second of the listing: the listing's
