"""hpcingest.zone.catalog.store: the catalog's own bookkeeping, on a catalog file of its own."""

from __future__ import annotations

import pytest

from hpcingest.zone.catalog.passwords import PasswordKeeper
from hpcingest.zone.catalog.store import Catalog


def test_ids_stay_unique_after_a_rolled_back_transaction_and_a_restart(tmp_path):
    """A request that failed inside a transaction (a name that exists, say) rolled back the
    reservation of an id block while the ids stayed handed out in memory; once the zone was
    restarted it handed the same ids out again, and a collection made after the restart failed
    with `UNIQUE constraint failed: r_coll_main.coll_id` (seen when a test stopped and restarted
    the zone in the middle of a pass)."""
    path = str(tmp_path / "catalog.db")
    catalog = Catalog(path, "tempZone", PasswordKeeper("key"))
    used = set()
    with pytest.raises(RuntimeError):
        with catalog.transaction():
            used.add(catalog.next_id())  # reserves a block, then the request fails
            raise RuntimeError("the request failed")
    for _ in range(5):
        with catalog.transaction():
            used.add(catalog.next_id())  # committed, and in the catalog for good
    catalog.close()
    restarted = Catalog(path, "tempZone", PasswordKeeper("key"))
    fresh = [restarted.next_id() for _ in range(5)]
    restarted.close()
    assert not used.intersection(fresh), sorted(used.intersection(fresh))
