"""MOD_ACCESS_CONTROL (707): ichmod — grant, revoke, and collection inheritance.

Levels are the access_type tokens of iRODS 4.3 (read_object 1050, modify_object 1120, own 1200…,
with ``read`` and ``write`` as aliases); ``null`` removes the user's entry; ``inherit``/``noinherit`` switch a collection's
inheritance, which new objects and collections below it then follow.
"""

from __future__ import annotations

from .. import errors
from ..catalog.schema import ACCESS_TOKENS
from ..errors import ZoneError
from ..framing import Message
from ..paths import find_data_object, normalize
from ..session import Session
from ..xmlpack import parse
from .registry import Reply, api

_ALIASES = {"read": "read_object", "write": "modify_object"}


def _targets(session: Session, path: str, recursive: bool) -> tuple[list[int], list[str]]:
    """Object ids the change applies to, and the collection paths among them."""
    catalog = session.zone.catalog
    coll = catalog.collection(path)
    if coll is None:
        ref = find_data_object(catalog, path)
        if ref is None:
            raise ZoneError(errors.CAT_NO_ROWS_FOUND, f"[{path}] does not exist")
        return [ref.data_id], []
    names = catalog.subcollection_names(path) if recursive else [path]
    ids: list[int] = []
    for name in names:
        sub = catalog.collection(name)
        assert sub is not None
        ids.append(sub.coll_id)
        if recursive:
            ids.extend(sorted({r.data_id for r in catalog.replicas_in_collection(sub.coll_id)}))
    return ids, names


@api(707, "MOD_ACCESS_CONTROL_AN")
def mod_access_control(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    level = body.str("accessLevel")
    if level.startswith("admin:"):
        session.require_admin()
        level = level[len("admin:"):]
    path = normalize(body.str("path"))
    catalog = session.zone.catalog
    with catalog.transaction() as db:
        ids, collections = _targets(session, path, bool(body.int("recursiveFlag")))
        for object_id in ids:
            session.require_access(object_id, "own", path)
        if level in ("inherit", "noinherit"):
            if not collections:
                raise ZoneError(errors.CAT_INVALID_ARGUMENT, "inheritance applies to collections only")
            for name in collections:
                db.execute("UPDATE r_coll_main SET coll_inheritance = ? WHERE coll_name = ?",
                           ("1" if level == "inherit" else "0", name))
            return Reply()
        level = _ALIASES.get(level, level)
        if level not in ACCESS_TOKENS:
            raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"unknown access level [{level}]")
        user = catalog.user(body.str("userName"), body.str("zone"))
        if user is None:
            raise ZoneError(errors.CAT_INVALID_USER, f"user [{body.str('userName')}] does not exist")
        for object_id in ids:
            if level == "null":
                catalog.revoke(object_id, user.user_id)
            else:
                catalog.grant(object_id, user.user_id, level)
    return Reply()
