"""Data object catalog changes: modDataObjMeta (622), chksum (629), unlink/unregister (615), trim (632)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

from .. import errors
from ..catalog import Catalog, Replica
from ..errors import ZoneError
from ..framing import Message
from ..paths import DataObjectRef, data_object_or_fail
from ..replicas import GOOD, INTERMEDIATE, STALE, best_replica
from ..session import Session
from ..trash import delete_replica_files, move_data_object_to_trash
from ..vault import sha2_checksum
from ..xmlpack import Node, parse, str_pi
from .registry import Reply, api

UNREG_OPR = 26

_REG_PARAM_COLUMNS = {
    "collId": ("coll_id", int), "dataCreate": ("create_ts", str), "chksum": ("data_checksum", str),
    "dataExpiry": ("data_expiry_ts", str), "replStatus": ("data_is_dirty", int), "dataMode": ("data_mode", str),
    "dataName": ("data_name", str), "dataOwner": ("data_owner_name", str),
    "dataOwnerZone": ("data_owner_zone", str), "filePath": ("data_path", str), "replNum": ("data_repl_num", int),
    "dataSize": ("data_size", int), "statusString": ("data_status", str), "dataType": ("data_type_name", str),
    "version": ("data_version", str), "dataModify": ("modify_ts", str), "dataComments": ("r_comment", str),
    "rescId": ("resc_id", int),
}


def select_replicas(session: Session, replicas: list[Replica], hier: str, resc_name: str,
                     repl_num: str) -> list[Replica]:
    tree = session.zone.catalog.resources
    if hier:
        chosen = [r for r in replicas if tree.hierarchy(r.resc_id) == hier]
    elif resc_name:
        chosen = [r for r in replicas if tree.by_id.get(r.resc_id) and tree.by_id[r.resc_id].resc_name == resc_name]
    elif repl_num.strip():
        chosen = [r for r in replicas if r.data_repl_num == int(repl_num)]
    else:
        chosen = replicas[:1]
    if not chosen:
        raise ZoneError(errors.SYS_REPLICA_DOES_NOT_EXIST, "no such replica")
    return chosen


def _column_updates(session: Session, params: dict[str, str]) -> dict[str, object]:
    updates: dict[str, object] = {}
    tree = session.zone.catalog.resources
    for key, value in params.items():
        if key in _REG_PARAM_COLUMNS:
            column, convert = _REG_PARAM_COLUMNS[key]
            try:
                updates[column] = convert(value)
            except ValueError:
                raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"bad value for {key}") from None
        elif key == "rescName":
            updates["resc_id"] = tree.named(value).resc_id
        elif key == "resc_hier":
            updates["resc_id"] = tree.leaf_of_hierarchy(value).resc_id
    return updates


@api(622, "MOD_DATA_OBJ_META_AN")
def mod_data_obj_meta(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    info = body.get("DataObjInfo_PI") or Node("DataObjInfo_PI")
    params = body.kvp()
    if "irodsAdmin" in params:
        session.require_admin()
    catalog = session.zone.catalog
    with catalog.transaction():
        ref = data_object_or_fail(catalog, info.path("objPath"))
        session.require_access(ref.data_id, "modify_object", ref.path)
        if "all" in params:
            targets = ref.replicas
        else:
            targets = select_replicas(session, ref.replicas, info.str("rescHier"), info.str("rescName"),
                                       info.str("replNum"))
        updates = _column_updates(session, params)
        # one chlModDataObjMeta per target, in replica order, as _rsModDataObjMeta does for
        # "all"; with allReplStatus each makes its replica good and every other one that is not
        # intermediate stale, so after "all" only the last replica is good
        for replica in targets:
            if updates:
                catalog.update_replica(replica.data_id, replica.data_repl_num, **updates)
            if "allReplStatus" in params:
                _make_the_only_good_replica(catalog, replica)
    return Reply()


def _make_the_only_good_replica(catalog: Catalog, replica: Replica) -> None:
    catalog.update_replica(replica.data_id, replica.data_repl_num, data_is_dirty=GOOD)
    for other in catalog.replicas(replica.coll_id, replica.data_name):
        if other.data_repl_num != replica.data_repl_num and other.data_is_dirty != INTERMEDIATE:
            catalog.update_replica(other.data_id, other.data_repl_num, data_is_dirty=STALE)


@api(629, "DATA_OBJ_CHKSUM_AN")
def data_obj_chksum(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    options = body.kvp()
    if "forceChksum" in options and "verifyChksum" in options:
        raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "forceChksum and verifyChksum together")
    if "replNum" in options and "rescName" in options:
        raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "replNum and rescName together")
    if "ChksumAll" in options and ("replNum" in options or "rescName" in options):
        raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "ChksumAll with a replica")
    catalog = session.zone.catalog
    ref = data_object_or_fail(catalog, body.path("objPath"))
    session.require_access(ref.data_id, "read_object", ref.path)
    if "ChksumAll" in options or ("verifyChksum" in options and "replNum" not in options
                                  and "rescName" not in options):
        targets = ref.replicas
    elif "replNum" in options or "rescName" in options:
        targets = select_replicas(session, ref.replicas, "", options.get("rescName", ""),
                                   options.get("replNum", ""))
    else:
        targets = [best_replica(ref.replicas)]
    if "verifyChksum" in options:
        _verify_checksums(session, targets)
        return Reply()
    result = ""
    for replica in targets:
        checksum = replica.data_checksum
        if not checksum or "forceChksum" in options:
            checksum = sha2_checksum(replica.data_path)
            if checksum != replica.data_checksum and "no_compute" not in options:
                catalog.update_replica(replica.data_id, replica.data_repl_num, data_checksum=checksum)
        result = result or checksum
    return Reply(msg=str_pi(result))


def _verify_checksums(session: Session, replicas: list[Replica]) -> None:
    """verifyChksum: report replicas without or with a wrong checksum, as the real server does
    (CHECK_VERIFICATION_RESULTS with a JSON list in STR_PI and one RError entry per problem)."""
    tree = session.zone.catalog.resources
    problems: list[tuple[int, str]] = []
    for replica in replicas:
        where = f"Replica [{replica.data_repl_num}] in resource [{tree.hierarchy(replica.resc_id)}]"
        if not replica.data_checksum:
            problems.append((errors.CAT_NO_CHECKSUM_FOR_REPLICA, f"No Checksum Available for {where}"))
        elif sha2_checksum(replica.data_path) != replica.data_checksum:
            problems.append((errors.USER_CHKSUM_MISMATCH, f"Computed checksum does not match for {where}"))
    if problems:
        report = json.dumps([{"error_code": code, "message": text} for code, text in problems])
        raise ZoneError(errors.CHECK_VERIFICATION_RESULTS, "checksum verification found problems",
                        body=str_pi(report), stack=problems)


@contextmanager
def _object_request(session: Session, request: Message, level: str) -> Iterator[tuple[Node, DataObjectRef]]:
    """Parse a DataObjInp request and look its object up, checking access, inside one transaction."""
    body = parse(request.msg)
    with session.zone.catalog.transaction():
        ref = data_object_or_fail(session.zone.catalog, body.path("objPath"))
        session.require_access(ref.data_id, level, ref.path)
        yield body, ref


@api(615, "DATA_OBJ_UNLINK_AN")
def data_obj_unlink(session: Session, request: Message) -> Reply:
    with _object_request(session, request, "modify_object") as (body, ref):
        options = body.kvp()
        catalog = session.zone.catalog
        unregister = body.int("oprType") == UNREG_OPR or options.get("oprType") == str(UNREG_OPR)
        if unregister or "forceFlag" in options or ref.path.startswith(f"/{session.zone.config.zone}/trash/"):
            catalog.delete_data_object(ref.data_id)
            if not unregister:
                delete_replica_files(catalog.resources, ref.replicas)
        else:
            move_data_object_to_trash(session, ref)
    return Reply()


@api(632, "DATA_OBJ_TRIM_AN")
def data_obj_trim(session: Session, request: Message) -> Reply:
    with _object_request(session, request, "own") as (body, ref):
        options = body.kvp()
        catalog = session.zone.catalog
        targets = select_replicas(session, ref.replicas, "", options.get("rescName", ""),
                                   options.get("replNum", ""))
        if len(targets) == len(ref.replicas):
            raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "trim would remove every replica")
        for replica in targets:
            catalog.delete_data_object(replica.data_id, replica.data_repl_num)
            if body.int("oprType") != UNREG_OPR:
                delete_replica_files(catalog.resources, [replica])
    return Reply(int_info=1)
