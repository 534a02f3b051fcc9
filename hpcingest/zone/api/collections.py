"""Collection APIs: create (681, optionally recursive) and remove (679: an empty collection without
recursion; recursively to the trash, forced, or unregistered with oprType 26).

As rsRmColl.cpp does it: a recursive removal without forceFlag moves the collection under
/<zone>/trash/home/<user>; with forceFlag the rows and the vault files of every replica are
deleted (a home collection only when empty: CANT_RM_NON_EMPTY_HOME_COLL); with oprType 26
(unregister) the rows only.
"""

from __future__ import annotations

from .. import errors
from ..catalog import Collection
from ..errors import ZoneError
from ..framing import Message
from ..paths import collection_or_fail, normalize, split
from ..session import Session
from ..trash import delete_replica_files, move_collection_to_trash
from ..xmlpack import parse
from .modify import UNREG_OPR
from .registry import Reply, api


def make_collection(session: Session, path: str, recursive: bool) -> Collection:
    """rsCollCreate / rsMkCollR: create ``path`` (and, when recursive, its missing ancestors)."""
    catalog = session.zone.catalog
    with catalog.transaction():
        existing = catalog.collection(path)
        if existing is not None:
            if recursive:
                return existing
            raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, f"[{path}] exists")
        parent, name = split(path)
        parent_coll = catalog.collection(parent)
        if catalog.replicas(parent_coll.coll_id, name) if parent_coll else False:
            raise ZoneError(errors.CAT_NAME_EXISTS_AS_DATAOBJ, f"[{path}] is a data object")
        if parent_coll is None:
            if not recursive or parent == "/":
                raise ZoneError(errors.CAT_UNKNOWN_COLLECTION, f"parent [{parent}] does not exist")
            parent_coll = make_collection(session, parent, True)
        session.require_access(parent_coll.coll_id, "modify_object", parent)
        coll = catalog.add_collection(path, session.client, parent_coll.coll_inheritance)
        catalog.grant_new_object(coll.coll_id, session.client.user_id, parent_coll)
        return coll


@api(681, "COLL_CREATE_AN")
def coll_create(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    make_collection(session, normalize(body.path("collName")), "recursiveOpr" in body.kvp())
    return Reply()


def _is_home_collection(path: str) -> bool:
    """isHomeColl: /<zone>/home or /<zone>/home/<user> (not a trash home)."""
    parts = path.strip("/").split("/")
    return len(parts) in (2, 3) and parts[1] == "home"


@api(679, "RM_COLL_AN")
def rm_coll(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    options = body.kvp()
    path = normalize(body.path("collName"))
    catalog = session.zone.catalog
    with catalog.transaction() as db:
        coll = collection_or_fail(catalog, path)
        session.require_access(coll.coll_id, "own", path)
        if path.count("/") <= 2:
            raise ZoneError(errors.CAT_INSUFFICIENT_PRIVILEGE_LEVEL, f"[{path}] is a zone-level collection")
        names = catalog.subcollection_names(path)
        non_empty = len(names) > 1 or db.execute("SELECT 1 FROM r_data_main WHERE coll_id = ? LIMIT 1",
                                                 (coll.coll_id,)).fetchone()
        unregister = body.int("oprType") == UNREG_OPR or options.get("oprType") == str(UNREG_OPR)
        if "recursiveOpr" not in options:
            # rsRmColl without recursion: the catalog entry of an empty collection only (irmdir,
            # collections.unregister), never to the trash
            if non_empty:
                raise ZoneError(errors.CAT_COLLECTION_NOT_EMPTY, f"[{path}] is not empty")
        elif not unregister and "forceFlag" not in options \
                and not path.startswith(f"/{session.zone.config.zone}/trash/"):
            move_collection_to_trash(session, coll)
            return Reply()
        elif not unregister and non_empty and _is_home_collection(path):
            raise ZoneError(errors.CANT_RM_NON_EMPTY_HOME_COLL, f"[{path}] is a home collection and not empty")
        for name in names:
            sub = catalog.collection(name)
            assert sub is not None
            replicas = catalog.replicas_in_collection(sub.coll_id)
            if not unregister:
                delete_replica_files(catalog.resources, replicas)
            for data_id in {r.data_id for r in replicas}:
                catalog.delete_data_object(data_id)
            catalog.forget_object(sub.coll_id)
            db.execute("DELETE FROM r_coll_main WHERE coll_id = ?", (sub.coll_id,))
    return Reply()
