"""PHY_PATH_REG (630): register a file in place as a new data object, or as a further replica.

As in the real filePathReg: ``dataSize`` is trusted without a stat; ``dataModify`` sets the
modify time; ``regChksum``/``verifyChksum`` make the server checksum the file; the target may be
a root (resolved to a leaf) or a leaf, never a middle member of a hierarchy.

Who may register: as the real server under its default policy (core.re's
``acSetChkFilePathPerm {msiSetChkFilePathPerm("disallowPathReg"); }``), only a rodsadmin client
user; anyone else gets PATH_REG_NOT_ALLOWED for files, directories and replicas alike.  A zone
started with ``allow_path_registration`` acts like a site whose policy is ``noChkPathPerm``.
"""

from __future__ import annotations

import os

from .. import errors
from ..catalog import Resource
from ..errors import ZoneError
from ..framing import Message
from ..paths import DataObjectRef, collection_or_fail, normalize, split
from ..replicas import GOOD, STALE, best_replica, new_replica, requested_resource, sibling_replica
from ..session import Session
from ..vault import file_size, sha2_checksum
from ..xmlpack import MAX_NAME_LEN, parse
from .collections import make_collection
from .registry import Reply, api


def _target_leaf(session: Session, options: dict[str, str]) -> Resource:
    tree = session.zone.catalog.resources
    if options.get("resc_hier"):
        return tree.leaf_of_hierarchy(options["resc_hier"])
    return tree.leaf_for_register(requested_resource(options) or session.zone.config.default_resource)


def _checksum(physical_path: str, options: dict[str, str], always: bool = False) -> str:
    if not (always or "regChksum" in options or "verifyChksum" in options):
        return ""
    checksum = sha2_checksum(physical_path)
    expected = options.get("verifyChksum", "")
    if expected and expected != checksum:
        raise ZoneError(errors.USER_CHKSUM_MISMATCH, f"checksum of {physical_path} does not match")
    return checksum


@api(630, "PHY_PATH_REG_AN")
def phy_path_reg(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    options = body.kvp()
    physical = _as_copied_by_the_server(options.get("filePath", ""))
    if not physical:
        raise ZoneError(errors.SYS_INVALID_FILE_PATH, "no filePath given")
    if "noChkFilePerm" in options and not session.is_admin:
        raise ZoneError(errors.SYS_NO_API_PRIV, "noChkFilePerm requires rodsadmin")
    path = normalize(body.path("objPath"))
    _target_leaf(session, options)  # the real server resolves the resource before the path check
    _check_path_permission(session, options)
    if "collection" in options:
        _register_directory(session, physical, path, options)
        return Reply()
    _register_file(session, physical, path, options)
    return Reply()


def _as_copied_by_the_server(physical: str) -> str:
    """filePath as the real server keeps it: a keyword value has no size on the wire, but
    filePathReg copies it into a MAX_NAME_LEN buffer (rstrcpy in initDataObjInfoWithInp), which
    cuts a longer path, logs, and goes on; with dataSize given nothing stats the cut path, so it
    is what the catalog gets."""
    raw = physical.encode("utf-8", "surrogateescape")
    if len(raw) < MAX_NAME_LEN:
        return physical
    return raw[:MAX_NAME_LEN - 1].decode("utf-8", "surrogateescape")


def _check_path_permission(session: Session, options: dict[str, str]) -> None:
    """getchkPathPerm + chkFilePathPerm: a rodsadmin client skips the check, and so does a
    request with ``noChkFilePerm`` (which only a rodsadmin may send); everyone else meets the
    zone's policy."""
    if session.is_admin or "noChkFilePerm" in options or session.zone.config.allow_path_registration:
        return
    raise ZoneError(errors.PATH_REG_NOT_ALLOWED,
                    "path registration is not allowed for non-admin users (acSetChkFilePathPerm: disallowPathReg)")


def _register_directory(session: Session, directory: str, path: str, options: dict[str, str]) -> None:
    """Register a directory tree as a collection tree (``collections.register``, ``ireg -C``)."""
    if not os.path.isdir(directory):
        raise ZoneError(errors.SYS_INVALID_FILE_PATH, f"{directory} is not a directory")
    file_options = {k: v for k, v in options.items() if k not in ("collection", "dataSize")}
    with session.zone.catalog.transaction():
        for current, dirs, files in os.walk(directory):
            relative = os.path.relpath(current, directory)
            logical = path if relative == "." else f"{path}/{relative}"
            make_collection(session, logical, recursive=True)
            for name in sorted(files):
                _register_file(session, os.path.join(current, name), f"{logical}/{name}", file_options)


def _register_file(session: Session, physical: str, path: str, options: dict[str, str]) -> None:
    parent, name = split(path)
    catalog = session.zone.catalog
    with catalog.transaction():
        coll = collection_or_fail(catalog, parent)
        leaf = _target_leaf(session, options)
        size = int(options["dataSize"]) if options.get("dataSize", "").strip() else file_size(physical)
        if "regRepl" in options:
            replicas = catalog.replicas(coll.coll_id, name)
            if not replicas:
                raise ZoneError(errors.CAT_NO_ROWS_FOUND, f"[{path}] does not exist")
            _register_replica(session, DataObjectRef(path, coll, name, replicas), leaf, physical, size, options)
            return
        if catalog.collection(path) is not None:
            raise ZoneError(errors.CAT_NAME_EXISTS_AS_COLLECTION, f"[{path}] is a collection")
        session.require_access(coll.coll_id, "modify_object", parent)
        replica = new_replica(session, coll, name, leaf, data_id=catalog.next_id(), repl_num=0, status=GOOD,
                              size=size, data_type=options.get("dataType", ""), physical_path=physical,
                              modify_ts=options.get("dataModify", ""))
        replica.data_checksum = _checksum(physical, options)
        catalog.insert_replica(replica)
        catalog.grant_new_object(replica.data_id, session.client.user_id, coll)


def _register_replica(session: Session, ref: DataObjectRef, leaf: Resource, physical: str, size: int,
                      options: dict[str, str]) -> None:
    catalog = session.zone.catalog
    session.require_access(ref.data_id, "modify_object", ref.path)
    if any(r.resc_id == leaf.resc_id for r in ref.replicas):
        raise ZoneError(errors.SYS_COPY_ALREADY_IN_RESC, f"[{ref.path}] already has a replica on {leaf.resc_name}")
    source = best_replica(ref.replicas)
    replica = sibling_replica(source, leaf, max(r.data_repl_num for r in ref.replicas) + 1, physical)
    replica.data_size = size
    replica.data_is_dirty = GOOD
    replica.data_checksum = _checksum(physical, options, always=bool(source.data_checksum))
    if options.get("dataModify"):
        replica.modify_ts = options["dataModify"]
    catalog.insert_replica(replica)
    for other in ref.replicas:
        catalog.update_replica(other.data_id, other.data_repl_num, data_is_dirty=STALE)
