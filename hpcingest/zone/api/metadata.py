"""AVUs: MOD_AVU_METADATA (706: add, rm, rmw, set, mod, cp) and the atomic JSON API (20002).

Semantics follow the real db plugin: ``add`` of an attached AVU is CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME,
``rm`` of an unattached one CAT_SUCCESS_BUT_WITH_NO_INFO, ``set`` updates a single unshared AVU in
place (keeping its create time); the atomic API is one transaction, idempotent for add/remove,
and always answers with a JSON body.
"""

from __future__ import annotations

import sqlite3

from .. import errors
from ..catalog import now_ts
from ..catalog.store import Catalog
from ..errors import ZoneError
from ..framing import Message
from ..paths import find_data_object, normalize
from ..session import Session
from ..xmlpack import json_buf, parse, parse_json_buf
from .registry import Reply, api

_ENTITY_TYPES = {"data_object": "-d", "collection": "-C", "resource": "-R", "user": "-u"}


def entity_id(session: Session, kind: str, name: str) -> int:
    """The object id behind ``-d path``, ``-C path``, ``-R name`` or ``-u name[#zone]``."""
    catalog = session.zone.catalog
    flag = kind.lower()
    if flag == "-d":
        ref = find_data_object(catalog, name) if name.startswith("/") else None
        if ref is None:
            raise ZoneError(errors.CAT_UNKNOWN_FILE, f"data object [{name}] does not exist")
        return ref.data_id
    if flag in ("-c", "-collection"):
        coll = catalog.collection(normalize(name)) if name.startswith("/") else None
        if coll is None:
            raise ZoneError(errors.CAT_UNKNOWN_COLLECTION, f"collection [{name}] does not exist")
        return coll.coll_id
    if flag == "-r":
        resc = catalog.resources.by_name.get(name)
        if resc is None:
            raise ZoneError(errors.CAT_INVALID_RESOURCE, f"resource [{name}] does not exist")
        return resc.resc_id
    if flag == "-u":
        user_name, _, zone = name.partition("#")
        user = catalog.user(user_name, zone)
        if user is None:
            raise ZoneError(errors.CAT_INVALID_USER, f"user [{name}] does not exist")
        return user.user_id
    raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"unknown entity type [{kind}]")


def _check_avu(attribute: str, value: str) -> None:
    if not attribute or not value:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, "attribute and value must not be empty")


def _meta_id(catalog: Catalog, attribute: str, value: str, units: str, create: bool) -> int | None:
    row = catalog.db.execute(
        "SELECT meta_id FROM r_meta_main WHERE meta_attr_name = ? AND meta_attr_value = ? AND meta_attr_unit = ?",
        (attribute, value, units)).fetchone()
    if row or not create:
        return row[0] if row else None
    meta_id = catalog.next_id()
    ts = now_ts()
    catalog.db.execute("INSERT INTO r_meta_main (meta_id, meta_attr_name, meta_attr_value, meta_attr_unit, "
                       "create_ts, modify_ts) VALUES (?, ?, ?, ?, ?, ?)", (meta_id, attribute, value, units, ts, ts))
    return meta_id


def add_avu(catalog: Catalog, object_id: int, attribute: str, value: str, units: str, idempotent: bool) -> None:
    _check_avu(attribute, value)
    meta_id = _meta_id(catalog, attribute, value, units, create=True)
    ts = now_ts()
    try:
        catalog.db.execute("INSERT INTO r_objt_metamap VALUES (?, ?, ?, ?)", (object_id, meta_id, ts, ts))
    except sqlite3.IntegrityError:
        if not idempotent:
            raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, "AVU already attached") from None


def remove_avu(catalog: Catalog, object_id: int, attribute: str, value: str, units: str, idempotent: bool,
               wildcard: bool = False) -> None:
    if wildcard:
        cursor = catalog.db.execute(
            "DELETE FROM r_objt_metamap WHERE object_id = ? AND meta_id IN (SELECT meta_id FROM r_meta_main "
            "WHERE meta_attr_name LIKE ? AND meta_attr_value LIKE ? AND meta_attr_unit LIKE ?)",
            (object_id, attribute, value, units or "%"))
    else:
        meta_id = _meta_id(catalog, attribute, value, units, create=False)
        cursor = catalog.db.execute("DELETE FROM r_objt_metamap WHERE object_id = ? AND meta_id = ?",
                                    (object_id, meta_id))
    if cursor.rowcount == 0 and not idempotent:
        raise ZoneError(errors.CAT_SUCCESS_BUT_WITH_NO_INFO, "AVU not attached")


def set_avu(catalog: Catalog, object_id: int, attribute: str, value: str, units: str) -> None:
    _check_avu(attribute, value)
    rows = catalog.db.execute(
        "SELECT m.meta_id FROM r_meta_main m JOIN r_objt_metamap mm ON mm.meta_id = m.meta_id "
        "WHERE mm.object_id = ? AND m.meta_attr_name = ?", (object_id, attribute)).fetchall()
    if len(rows) == 1:
        meta_id = rows[0][0]
        shared = catalog.db.execute("SELECT COUNT(*) FROM r_objt_metamap WHERE meta_id = ?", (meta_id,)).fetchone()[0]
        if shared == 1:
            catalog.db.execute("UPDATE r_meta_main SET meta_attr_value = ?, meta_attr_unit = ?, modify_ts = ? "
                               "WHERE meta_id = ?", (value, units, now_ts(), meta_id))
            return
    for (meta_id,) in rows:
        catalog.db.execute("DELETE FROM r_objt_metamap WHERE object_id = ? AND meta_id = ?", (object_id, meta_id))
    add_avu(catalog, object_id, attribute, value, units, idempotent=True)


def _modify_avu(catalog: Catalog, object_id: int, args: list[str]) -> None:
    attribute, value = args[3], args[4]
    rest = args[5:]
    units = ""
    if rest and not rest[0][:2] in ("n:", "v:", "u:"):
        units, rest = rest[0], rest[1:]
    new = {"n": attribute, "v": value, "u": units}
    for item in rest:
        if item[:2] in ("n:", "v:", "u:"):
            new[item[0]] = item[2:]
    remove_avu(catalog, object_id, attribute, value, units, idempotent=False)
    add_avu(catalog, object_id, new["n"], new["v"], new["u"], idempotent=True)


def _require_write(session: Session, kind: str, object_id: int, admin: bool) -> None:
    if admin or kind.lower() in ("-r", "-u"):
        session.require_admin()
    else:
        session.require_access(object_id, "modify_object", "the entity")


@api(706, "MOD_AVU_METADATA_AN")
def mod_avu_metadata(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    args = [body.str(f"arg{i}") for i in range(10)]
    admin = "irodsAdmin" in body.kvp()
    operation = args[0]
    catalog = session.zone.catalog
    with catalog.transaction():
        if operation == "cp":
            source = entity_id(session, args[1], args[3])
            target = entity_id(session, args[2], args[4])
            _require_write(session, args[2], target, admin)
            catalog.db.execute("INSERT OR IGNORE INTO r_objt_metamap SELECT ?, meta_id, ?, ? FROM r_objt_metamap "
                               "WHERE object_id = ?", (target, now_ts(), now_ts(), source))
            return Reply()
        object_id = entity_id(session, args[1], args[2])
        _require_write(session, args[1], object_id, admin)
        attribute, value, units = args[3], args[4], args[5]
        if operation in ("add", "adda"):
            add_avu(catalog, object_id, attribute, value, units, idempotent=False)
        elif operation in ("rm", "rmw"):
            remove_avu(catalog, object_id, attribute, value, units, idempotent=False, wildcard=operation == "rmw")
        elif operation == "set":
            set_avu(catalog, object_id, attribute, value, units)
        elif operation == "mod":
            _modify_avu(catalog, object_id, args)
        else:
            raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"unknown metadata operation [{operation}]")
    return Reply()


@api(20002, "ATOMIC_APPLY_METADATA_OPERATIONS_APN")
def atomic_apply_metadata_operations(session: Session, request: Message) -> Reply:
    body = parse_json_buf(request.msg)
    if not isinstance(body, dict):
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "request is not a JSON object", {"error_message": "bad"})
    catalog = session.zone.catalog
    operations = body.get("operations", [])
    index, operation = 0, {}
    try:
        with catalog.transaction():
            kind = _ENTITY_TYPES.get(body.get("entity_type", ""))
            name = body.get("entity_name", "")
            try:
                object_id = entity_id(session, kind or "?", name)
            except ZoneError:
                raise ZoneError(errors.SYS_INVALID_INPUT_PARAM,
                                f"Entity does not exist [entity_name={name}]") from None
            _require_write(session, kind or "", object_id, bool(body.get("admin_mode")))
            for index, operation in enumerate(operations):
                action = operation.get("operation")
                args = (operation.get("attribute", ""), operation.get("value", ""), operation.get("units", ""))
                if action == "add":
                    add_avu(catalog, object_id, *args, idempotent=True)
                elif action == "remove":
                    remove_avu(catalog, object_id, *args, idempotent=True)
                else:
                    raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"invalid operation [{action}]")
    except ZoneError as exc:
        exc.body = {"operation": operation, "operation_index": index, "error_message": exc.message}
        raise
    return Reply(msg=json_buf({}))
