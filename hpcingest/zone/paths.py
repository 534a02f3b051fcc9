"""Logical-path handling and the lookups of collections and data objects that handlers share."""

from __future__ import annotations

from dataclasses import dataclass

from . import errors
from .catalog import Collection, Replica
from .catalog.store import Catalog
from .errors import ZoneError


def normalize(path: str) -> str:
    """Collapse repeated slashes and drop a trailing one; logical paths must be absolute."""
    if not path.startswith("/"):
        raise ZoneError(errors.SYS_INVALID_FILE_PATH, f"path [{path}] is not absolute")
    return "/" + "/".join(part for part in path.split("/") if part)


def split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    if not name:
        raise ZoneError(errors.USER_INPUT_PATH_ERR, f"path [{path}] has no object name")
    return parent or "/", name


@dataclass
class DataObjectRef:
    """A data object as the handlers see it: where it lives and all of its replicas."""

    path: str
    collection: Collection
    name: str
    replicas: list[Replica]

    @property
    def data_id(self) -> int:
        return self.replicas[0].data_id


def collection_or_fail(catalog: Catalog, path: str, code: int = errors.CAT_UNKNOWN_COLLECTION) -> Collection:
    coll = catalog.collection(path)
    if coll is None:
        raise ZoneError(code, f"collection [{path}] does not exist")
    return coll


def find_data_object(catalog: Catalog, path: str) -> DataObjectRef | None:
    parent, name = split(normalize(path))
    coll = catalog.collection(parent)
    if coll is None:
        return None
    replicas = catalog.replicas(coll.coll_id, name)
    return DataObjectRef(f"{coll.coll_name.rstrip('/')}/{name}", coll, name, replicas) if replicas else None


def data_object_or_fail(catalog: Catalog, path: str, code: int = errors.CAT_NO_ROWS_FOUND) -> DataObjectRef:
    found = find_data_object(catalog, path)
    if found is None:
        raise ZoneError(code, f"data object [{path}] does not exist")
    return found
