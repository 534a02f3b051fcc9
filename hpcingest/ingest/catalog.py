"""What the catalog holds for one batch: data objects by logical path, and subcollections.

Built from one query for the batch's files and one for its subdirectories, so deciding
"new, changed or unchanged" costs no per-file round trip.  When the batch query could not be
made (an "unknown" view), each lookup falls back to asking for that one entry.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from hpcingest.lazy import lazy_module

if TYPE_CHECKING:
    from hpcingest.irods.listing import ObjectInfo, ReplicaInfo

listing = lazy_module("hpcingest.irods.listing")


@dataclass
class CatalogObject:
    info: ObjectInfo

    @property
    def size(self) -> int:
        return self.info.size

    def replica_under(self, resource: str) -> ReplicaInfo | None:
        """The replica whose hierarchy contains ``resource`` (root, middle or leaf)."""
        for replica in self.info.replicas:
            if resource in replica.hierarchy.split(";") or replica.resource == resource:
                return replica
        return None

    @property
    def has_good_replica(self) -> bool:
        """False after an upload that was interrupted (its replica is stale or intermediate)."""
        return any(replica.good for replica in self.info.replicas)

    def holds(self, size: int) -> bool:
        """Whether a good replica has this size: an upload of a file of that size that finished."""
        return any(replica.good and replica.size == size for replica in self.info.replicas)

    def matches(self, size: int, mtime: int, numbers: list[int] | None) -> bool:
        """Whether the catalog already says what a metadata update would write."""
        replicas = [r for r in self.info.replicas if numbers is None or r.number in numbers]
        return bool(replicas) and all(r.size == size and r.modify_time == mtime for r in replicas)


@dataclass
class CatalogView:
    objects: dict[str, ObjectInfo] = field(default_factory=dict)
    collections: set[str] = field(default_factory=set)
    known: bool = True
    queries: int = 0

    @classmethod
    def empty(cls) -> "CatalogView":
        """Nothing exists (--initial_ingest: no query is made)."""
        return cls()

    @classmethod
    def unknown(cls) -> "CatalogView":
        return cls(known=False)

    def data_object(self, path: str, session, fresh: bool = False) -> CatalogObject | None:
        """The object at ``path``; ``fresh`` asks the catalog now instead of the batch's view."""
        if self.known and not fresh:
            info = self.objects.get(path)
        else:
            parent, name = posixpath.split(path)
            info = listing.list_collection_objects(session, parent, [name]).get(name)
        return CatalogObject(info) if info is not None else None

    def has_collection(self, path: str, session) -> bool:
        return path in self.collections if self.known else session.collections.exists(path)


def catalog_view(session, collection: str, files: list[str], directories: list[str]) -> CatalogView:
    """One query for the files (DATA_NAME in ...) and one for the subdirectories of a batch."""
    from irods.column import In
    from irods.models import Collection

    view = CatalogView()
    if files:
        found = listing.list_collection_objects(session, collection, files)
        view.objects = {posixpath.join(collection, name): info for name, info in found.items()}
        view.queries += 1
    if directories:
        paths = [posixpath.join(collection, name) for name in directories]
        for batch in listing.name_batches(paths):
            query = session.query(Collection.name).filter(Collection.parent_name == collection)
            view.collections.update(row[Collection.name] for row in listing.exact_rows(query.filter(
                In(Collection.name, batch))))
            view.queries += 1
    return view
