"""Replica lifecycle rules shared by open/put/register: resource choice, new rows, finalizing.

These follow the real server's replica state machine: a write open makes the chosen replica
intermediate (2) and write-locks its siblings (4); the final close makes it good (1) and the
siblings stale (0).  Resource keywords are honoured in the server's precedence order.
"""

from __future__ import annotations

from dataclasses import replace

from . import errors
from .catalog import Collection, Replica, Resource, now_ts
from .errors import ZoneError
from .session import Session
from .vault import vault_path

STALE, GOOD, INTERMEDIATE, READ_LOCKED, WRITE_LOCKED = 0, 1, 2, 3, 4
_RESOURCE_KEYWORDS = ("backupRescName", "destRescName", "rescName", "defRescName")


def requested_resource(options: dict[str, str]) -> str:
    """The resource a request names, by the server's keyword precedence; '' when none."""
    for key in _RESOURCE_KEYWORDS:
        if options.get(key):
            return options[key]
    return ""


def leaf_for_create(session: Session, options: dict[str, str]) -> Resource:
    tree = session.zone.catalog.resources
    if options.get("resc_hier"):
        return tree.leaf_of_hierarchy(options["resc_hier"])
    return tree.leaf_for_create(requested_resource(options) or session.zone.config.default_resource)


def replica_in_request(session: Session, replicas: list[Replica], options: dict[str, str]) -> Replica | None:
    """The replica a request names through ``resc_hier`` or a root resource; None when it names none there."""
    tree = session.zone.catalog.resources
    if options.get("resc_hier"):
        leaf = tree.leaf_of_hierarchy(options["resc_hier"])
        return next((r for r in replicas if r.resc_id == leaf.resc_id), None)
    name = requested_resource(options)
    if not name:
        return best_replica(replicas)
    root = tree.named(name)
    if root.resc_parent:
        raise ZoneError(errors.DIRECT_CHILD_ACCESS, f"[{name}] is not the root of its hierarchy")
    return next((r for r in replicas if tree.hierarchy(r.resc_id).split(";")[0] == name), None)


def best_replica(replicas: list[Replica]) -> Replica:
    return next((r for r in replicas if r.data_is_dirty == GOOD), replicas[0])


def new_replica(session: Session, coll: Collection, name: str, leaf: Resource, *, data_id: int, repl_num: int,
                status: int, size: int = 0, data_type: str = "", physical_path: str = "",
                modify_ts: str = "") -> Replica:
    ts = now_ts()
    logical = f"{coll.coll_name.rstrip('/')}/{name}"
    client = session.client
    return Replica(
        data_id=data_id, coll_id=coll.coll_id, data_name=name, data_repl_num=repl_num,
        data_type_name=data_type or "generic", data_size=size, resc_id=leaf.resc_id,
        data_path=physical_path or vault_path(leaf, logical, session.zone.config.zone),
        data_owner_name=client.user_name, data_owner_zone=client.zone_name, data_is_dirty=status,
        create_ts=ts, modify_ts=modify_ts or ts, access_ts=ts)


def sibling_replica(source: Replica, leaf: Resource, repl_num: int, physical_path: str) -> Replica:
    """A further replica of an existing object: the source row with a new number, place and time."""
    ts = now_ts()
    return replace(source, data_repl_num=repl_num, resc_id=leaf.resc_id, data_path=physical_path,
                   create_ts=ts, modify_ts=ts)


def check_not_locked(replicas: list[Replica]) -> None:
    if any(r.data_is_dirty in (INTERMEDIATE, WRITE_LOCKED) for r in replicas):
        raise ZoneError(errors.LOCKED_DATA_OBJECT_ACCESS, "data object is locked by another write")
