"""Moving and copying in the logical namespace: DATA_OBJ_RENAME (627) and DATA_OBJ_COPY (696).

A rename changes catalog rows only; the replicas' physical paths stay where they are (the real
server also renames vault files, a difference only visible in D_DATA_PATH).
"""

from __future__ import annotations

import os
import shutil

from .. import errors
from ..errors import ZoneError
from ..framing import Message
from ..paths import collection_or_fail, data_object_or_fail, find_data_object, normalize, split
from ..replicas import best_replica
from ..session import Session
from ..xmlpack import parse
from .dataobj_io import close_descriptor, open_data_object
from .registry import Reply, api

RENAME_COLL = 12


def _free_target(session: Session, path: str) -> tuple[str, str]:
    catalog = session.zone.catalog
    if catalog.collection(path) is not None:
        raise ZoneError(errors.CAT_NAME_EXISTS_AS_COLLECTION, f"[{path}] is a collection")
    if find_data_object(catalog, path) is not None:
        raise ZoneError(errors.CAT_NAME_EXISTS_AS_DATAOBJ, f"[{path}] is a data object")
    return split(path)


def _source_and_target(session: Session, request: Message) -> tuple[str, str, int]:
    pair = parse(request.msg).all("DataObjInp_PI")
    if len(pair) != 2:
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "expected a source and a destination")
    source, target = pair
    return _zone_path(session, source.path("objPath")), _zone_path(session, target.path("objPath")), \
        source.int("oprType")


def _zone_path(session: Session, path: str) -> str:
    """rsDataObjCopy/Rename refuse relative paths and paths outside any known zone."""
    if not path.startswith(f"/{session.zone.config.zone}/"):
        raise ZoneError(errors.USER_INPUT_PATH_ERR, f"[{path}] is not an absolute path in this zone")
    return normalize(path)


@api(627, "DATA_OBJ_RENAME_AN")
def data_obj_rename(session: Session, request: Message) -> Reply:
    source, target, operation = _source_and_target(session, request)
    catalog = session.zone.catalog
    with catalog.transaction():
        parent, name = _free_target(session, target)
        new_parent = collection_or_fail(catalog, parent)
        session.require_access(new_parent.coll_id, "modify_object", parent)
        if operation == RENAME_COLL:
            coll = collection_or_fail(catalog, source)
            session.require_access(coll.coll_id, "own", source)
            if target.startswith(source + "/"):
                raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "cannot move a collection into itself")
            catalog.rename_collection(source, target)
        else:
            ref = data_object_or_fail(catalog, source, errors.OBJ_PATH_DOES_NOT_EXIST)
            session.require_access(ref.data_id, "own", source)
            catalog.move_data_object(ref.data_id, new_parent.coll_id, name)
    return Reply()


@api(696, "DATA_OBJ_COPY_AN")
def data_obj_copy(session: Session, request: Message) -> Reply:
    source, target, _ = _source_and_target(session, request)
    options = parse(request.msg).all("DataObjInp_PI")[1].kvp()
    catalog = session.zone.catalog
    with catalog.transaction():
        ref = data_object_or_fail(catalog, source, errors.OBJ_PATH_DOES_NOT_EXIST)
        session.require_access(ref.data_id, "read_object", source)
        if find_data_object(catalog, target) is not None and "forceFlag" not in options:
            raise ZoneError(errors.OVERWRITE_WITHOUT_FORCE_FLAG, f"[{target}] exists")
        origin = best_replica(ref.replicas)
        fd = open_data_object(session, target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, options, origin.data_size)
        try:
            with open(origin.data_path, "rb") as src, os.fdopen(os.dup(session.descriptors[fd].os_fd), "wb") as dst:
                shutil.copyfileobj(src, dst)
        except OSError as exc:
            close_descriptor(session, fd, {}, finalize=False)
            raise ZoneError(errors.UNIX_FILE_READ_ERR - (exc.errno or 0), f"cannot copy {source}") from None
        close_descriptor(session, fd, {})
    return Reply()
