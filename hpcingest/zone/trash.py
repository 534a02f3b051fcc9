"""Trash and physical deletion: what unlink and rmcoll do without and with forceFlag.

Without forceFlag the real server renames the object or collection to
/<zone>/trash/home/<user>/… (appending a random suffix on a name clash) and keeps the data.
"""

from __future__ import annotations

import random

from .catalog import Collection, Replica
from .catalog.resources import ResourceTree
from .catalog.store import parent_of
from .paths import DataObjectRef
from .session import Session
from .vault import remove_file


def delete_replica_files(resources: ResourceTree, replicas: list[Replica]) -> None:
    """Delete the files of removed replicas that lie in their resource's vault.  A replica
    registered from elsewhere is only unregistered and its file left as it is, as
    dataObjUnlinkS does ("Replica is not in a vault"): removing an object never deletes a
    user's source file."""
    for replica in replicas:
        resource = resources.by_id.get(replica.resc_id)
        vault = resource.resc_def_path.rstrip("/") if resource is not None else ""
        if replica.data_path and vault and replica.data_path.startswith(vault + "/"):
            remove_file(replica.data_path)


def trash_path(session: Session, path: str) -> str:
    zone = session.zone.config.zone
    home = f"/{zone}/home/"
    if path.startswith(home):
        return f"/{zone}/trash/home/" + path[len(home):]
    return f"/{zone}/trash/home/{session.client.user_name}{path[len(zone) + 1:]}"


def _ensure_collection(session: Session, path: str) -> Collection:
    catalog = session.zone.catalog
    coll = catalog.collection(path)
    if coll is None:
        parent = _ensure_collection(session, parent_of(path))
        coll = catalog.add_collection(path, session.client)
        catalog.grant_new_object(coll.coll_id, session.client.user_id, parent)
    return coll


def _free_name(session: Session, path: str) -> str:
    catalog = session.zone.catalog
    parent, _, name = path.rpartition("/")
    candidate = path
    while catalog.collection(candidate) is not None or (
            (coll := catalog.collection(parent)) is not None and catalog.replicas(coll.coll_id, candidate.rpartition("/")[2])):
        candidate = f"{parent}/{name}.{random.randint(0, 9999999999)}"
    return candidate


def move_data_object_to_trash(session: Session, ref: DataObjectRef) -> None:
    catalog = session.zone.catalog
    with catalog.transaction():
        target = _free_name(session, trash_path(session, ref.path))
        parent, _, name = target.rpartition("/")
        catalog.move_data_object(ref.data_id, _ensure_collection(session, parent).coll_id, name)


def move_collection_to_trash(session: Session, coll: Collection) -> None:
    catalog = session.zone.catalog
    old = coll.coll_name
    with catalog.transaction():
        new = _free_name(session, trash_path(session, old))
        _ensure_collection(session, parent_of(new))
        catalog.rename_collection(old, new)
