"""Replication: DATA_OBJ_REPL (695), and the copies a ``replication`` resource makes of each write.

A write to a hierarchy containing a replication resource lands on one of its leaves; when the
write is finalized, every other leaf below that resource receives a good copy, as the replication
plugin does on close.
"""

from __future__ import annotations

import os
import shutil

from .. import errors
from ..catalog import Replica, now_ts
from ..errors import ZoneError, errno_code
from ..framing import Message
from ..paths import data_object_or_fail
from ..replicas import GOOD, best_replica, check_not_locked, sibling_replica
from ..session import Session
from ..vault import vault_path
from ..xmlpack import parse
from .registry import Reply, api


@api(695, "DATA_OBJ_REPL_AN")
def data_obj_repl(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    options = body.kvp()
    catalog = session.zone.catalog
    tree = catalog.resources
    with catalog.transaction():
        ref = data_object_or_fail(catalog, body.path("objPath"))
        session.require_access(ref.data_id, "read_object", ref.path)
        check_not_locked(ref.replicas)
        source = best_replica(ref.replicas)
        if options.get("rescName"):
            source = next((r for r in ref.replicas if tree.hierarchy(r.resc_id).split(";")[0] == options["rescName"]),
                          None) or source
        if source.data_is_dirty != GOOD:
            raise ZoneError(errors.SYS_REPLICA_DOES_NOT_EXIST, f"[{ref.path}] has no good replica to copy")
        if "all" in options:  # irepl -a: bring every stale replica up to date
            for stale in ref.replicas:
                if stale.data_is_dirty != GOOD:
                    _refresh(session, source, stale)
            return Reply()
        name = options.get("destRescName") or options.get("defRescName") or session.zone.config.default_resource
        leaf = tree.leaf_for_create(name)
        root = tree.hierarchy(leaf.resc_id).split(";")[0]
        existing = next((r for r in ref.replicas if tree.hierarchy(r.resc_id).split(";")[0] == root), None)
        if existing is not None:  # already there: refresh it if stale
            if existing.data_is_dirty != GOOD:
                _refresh(session, source, existing)
            return Reply()
        target = sibling_replica(source, leaf, max(r.data_repl_num for r in ref.replicas) + 1,
                                 vault_path(leaf, ref.path, session.zone.config.zone))
        _copy_or_fail(source, target)
        target.data_is_dirty = GOOD
        catalog.insert_replica(target)
    return Reply()


def _mark_copied(session: Session, source: Replica, target: Replica) -> None:
    session.zone.catalog.update_replica(target.data_id, target.data_repl_num, data_is_dirty=GOOD,
                                        data_size=source.data_size, data_checksum=source.data_checksum,
                                        modify_ts=now_ts())


def _copy_or_fail(source: Replica, target: Replica) -> None:
    try:
        _copy_file(source.data_path, target.data_path)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_CREATE_ERR, exc), "cannot write the replica") from None


def _refresh(session: Session, source: Replica, target: Replica) -> None:
    _copy_or_fail(source, target)
    _mark_copied(session, source, target)


def replicate_within_hierarchy(session: Session, written: Replica, logical_path: str) -> None:
    """After a finalized write: bring every other leaf under a replication resource up to date."""
    catalog = session.zone.catalog
    tree = catalog.resources
    node = tree.replication_node(written.resc_id)
    if node is None:
        return
    fresh = catalog.replica(written.data_id, written.data_repl_num)
    assert fresh is not None
    with catalog.transaction():
        others = {r.resc_id: r for r in catalog.replicas(fresh.coll_id, fresh.data_name)}
        next_number = max(r.data_repl_num for r in others.values()) + 1
        for leaf in tree.leaves_under(node):
            if leaf.resc_id == fresh.resc_id:
                continue
            existing = others.get(leaf.resc_id)
            path = existing.data_path if existing else vault_path(leaf, logical_path, session.zone.config.zone)
            try:
                _copy_file(fresh.data_path, path)
            except OSError:
                continue  # the leaf stays stale (or absent), as when a replication child is down
            if existing is None:
                catalog.insert_replica(sibling_replica(fresh, leaf, next_number, path))
                next_number += 1
            else:
                _mark_copied(session, fresh, existing)


def _copy_file(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target)
