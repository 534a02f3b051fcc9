"""Sizes and times: DATA_OBJ_TRUNCATE (652), REPLICA_TRUNCATE (802) and TOUCH (20007)."""

from __future__ import annotations

import json
import os

from .. import errors
from ..catalog import Replica, now_ts
from ..errors import ZoneError, errno_code
from ..framing import Message
from ..paths import find_data_object, normalize
from ..replicas import GOOD, STALE, best_replica
from ..session import Session
from ..xmlpack import parse, parse_json_buf, str_pi
from .dataobj_io import close_descriptor, open_data_object
from .modify import select_replicas as _select_replicas
from .registry import Reply, api


def _truncate(session: Session, path: str, size: int, options: dict[str, str]) -> Replica:
    """Truncate one replica (the requested one, else the best) and make it the only good one."""
    catalog = session.zone.catalog
    ref = find_data_object(catalog, path)
    if ref is None:
        raise ZoneError(errors.OBJ_PATH_DOES_NOT_EXIST, f"[{path}] does not exist")
    session.require_access(ref.data_id, "modify_object", ref.path)
    target = best_replica(ref.replicas)
    if options.get("replNum") or options.get("rescName") or options.get("resc_hier"):
        target = _select_replicas(session, ref.replicas, options.get("resc_hier", ""), options.get("rescName", ""),
                                  options.get("replNum", ""))[0]
    try:
        os.truncate(target.data_path, size)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_OPEN_ERR, exc), "cannot truncate") from None
    catalog.update_replica(target.data_id, target.data_repl_num, data_size=size, modify_ts=now_ts(),
                           data_is_dirty=GOOD, data_checksum="")
    for other in ref.replicas:
        if other.data_repl_num != target.data_repl_num:
            catalog.update_replica(other.data_id, other.data_repl_num, data_is_dirty=STALE)
    return target


@api(652, "DATA_OBJ_TRUNCATE_AN")
def data_obj_truncate(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    with session.zone.catalog.transaction():
        _truncate(session, body.str("objPath"), body.int("dataSize"), body.kvp())
    return Reply()


@api(802, "REPLICA_TRUNCATE_AN")
def replica_truncate(session: Session, request: Message) -> Reply:
    """Like 652 for one replica; answers with JSON in STR_PI, errors included."""
    body = parse(request.msg)
    try:
        with session.zone.catalog.transaction():
            target = _truncate(session, body.str("objPath"), body.int("dataSize"), body.kvp())
    except ZoneError as exc:
        exc.body = str_pi(json.dumps({"message": exc.message}))
        raise
    hierarchy = session.zone.catalog.resources.hierarchy(target.resc_id)
    return Reply(msg=str_pi(json.dumps({"resource_hierarchy": hierarchy, "replica_number": target.data_repl_num,
                                        "message": ""})))


def _touch_time(options: dict, session: Session) -> str:
    if "seconds_since_epoch" in options:
        return "%011d" % int(options["seconds_since_epoch"])
    if "reference" in options:
        ref = find_data_object(session.zone.catalog, options["reference"])
        coll = session.zone.catalog.collection(normalize(options["reference"]))
        if ref is None and coll is None:
            raise ZoneError(errors.OBJ_PATH_DOES_NOT_EXIST, "reference does not exist")
        return best_replica(ref.replicas).modify_ts if ref else coll.modify_ts  # type: ignore[union-attr]
    return now_ts()


@api(20007, "TOUCH_APN")
def touch(session: Session, request: Message) -> Reply:
    body = parse_json_buf(request.msg)
    if not isinstance(body, dict) or not isinstance(body.get("logical_path"), str):
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "missing [logical_path]")
    options = body.get("options") or {}
    if "replica_number" in options and "leaf_resource_name" in options:
        raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "replica_number with leaf_resource_name")
    path = normalize(body["logical_path"])
    catalog = session.zone.catalog
    with catalog.transaction() as db:
        timestamp = _touch_time(options, session)
        coll = catalog.collection(path)
        if coll is not None:
            session.require_access(coll.coll_id, "modify_object", path)
            db.execute("UPDATE r_coll_main SET modify_ts = ? WHERE coll_id = ?", (timestamp, coll.coll_id))
            return Reply()
        ref = find_data_object(catalog, path)
        if ref is None:
            if options.get("no_create") or "replica_number" in options:
                raise ZoneError(errors.OBJ_PATH_DOES_NOT_EXIST, f"[{path}] does not exist")
            leaf = options.get("leaf_resource_name")
            fd = open_data_object(session, path, os.O_WRONLY | os.O_CREAT, {"destRescName": leaf} if leaf else {}, 0)
            close_descriptor(session, fd, {})
            ref = find_data_object(catalog, path)
            assert ref is not None
        session.require_access(ref.data_id, "modify_object", path)
        targets = [best_replica(ref.replicas)]
        if "replica_number" in options:
            targets = [r for r in ref.replicas if r.data_repl_num == int(options["replica_number"])]
        elif "leaf_resource_name" in options:
            leaf_id = catalog.resources.named(options["leaf_resource_name"]).resc_id
            targets = [r for r in ref.replicas if r.resc_id == leaf_id]
        if not targets:
            raise ZoneError(errors.SYS_REPLICA_DOES_NOT_EXIST, "no such replica")
        for replica in targets:
            catalog.update_replica(replica.data_id, replica.data_repl_num, modify_ts=timestamp)
    return Reply()
