"""What iRODS already holds for a batch of names in one collection, in one GenQuery per batch.

The old framework asked ``data_objects.exists`` per file: two GenQueries each, the main cost of a
re-scan.  Here one query per batch returns every replica row of every requested name (size,
modify time, status, resource, hierarchy, physical path, checksum), so the caller decides
"absent / unchanged / changed / replica missing" locally.

The batch uses the condition ``DATA_NAME in ('a','b',...)``, which the real server parses in
general_query.cpp ``addInClauseToWhereForIn`` (values are the successive quoted strings, so a name
containing a quote cannot go in a list; those are asked for one by one with ``=``, whose literal
runs from the first to the last quote).  The server keeps all IN values of a query in a 32000-byte
buffer, so batches are also cut by total name length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from irods.column import In, Like
from irods.exception import iRODSException
from irods.models import Collection, DataObject
from irods.session import iRODSSession

from . import exact_query
from .errors import IrodsOperationError, operation_error

MAX_NAMES_PER_QUERY = 500
MAX_NAME_BYTES_PER_QUERY = 24_000  # server limit is 32000 including a NUL per value; keep a margin
GOOD_REPLICA = "1"
_IN_UNSUPPORTED = {"CAT_INVALID_ARGUMENT", "SYS_NOT_SUPPORTED", "CAT_SQL_ERR"}
_COLUMNS = (DataObject.name, DataObject.id, DataObject.replica_number, DataObject.size, DataObject.modify_time,
            DataObject.replica_status, DataObject.resource_name, DataObject.resc_hier, DataObject.path,
            DataObject.checksum)


@dataclass(frozen=True)
class ReplicaInfo:
    number: int
    size: int
    modify_time: int
    status: str
    resource: str
    hierarchy: str
    physical_path: str
    checksum: str | None

    @property
    def good(self) -> bool:
        return self.status == GOOD_REPLICA


@dataclass(frozen=True)
class ObjectInfo:
    """One data object with all its replicas, ordered by replica number."""

    name: str
    data_id: int
    replicas: tuple[ReplicaInfo, ...]

    @property
    def current(self) -> ReplicaInfo:
        """The replica that speaks for the object: the first good one, else the first."""
        return next((replica for replica in self.replicas if replica.good), self.replicas[0])

    @property
    def size(self) -> int:
        return self.current.size

    @property
    def modify_time(self) -> int:
        return self.current.modify_time


def list_collection_objects(session: iRODSSession, collection: str, names: Iterable[str],
                            whole_collection: bool = False) -> dict[str, ObjectInfo]:
    """The requested names that exist as data objects in ``collection`` (absent names are missing).

    ``whole_collection`` pages through the entire collection instead, which is cheaper when the
    batch is most of a large collection (500 rows per request instead of one request per batch).
    """
    wanted = set(names)
    collection = collection.rstrip("/") or "/"
    if not wanted:
        return {}
    if whole_collection:
        return _collect(_rows(session, collection, None), wanted)
    try:
        return _collect(_rows_by_name(session, collection, wanted), wanted)
    except IrodsOperationError as error:
        if error.name not in _IN_UNSUPPORTED:
            raise
        return _collect(_rows(session, collection, None), wanted)


def name_batches(names: Iterable[str]) -> Iterator[list[str]]:
    """Split names into IN-lists the server accepts."""
    batch: list[str] = []
    size = 0
    for name in sorted(names):
        cost = len(name.encode("utf-8")) + 1
        if batch and (len(batch) >= MAX_NAMES_PER_QUERY or size + cost > MAX_NAME_BYTES_PER_QUERY):
            yield batch
            batch, size = [], 0
        batch.append(name)
        size += cost
    if batch:
        yield batch


def _rows_by_name(session: iRODSSession, collection: str, names: set[str]) -> Iterator[dict]:
    quoted = {name for name in names if "'" in name}
    for batch in name_batches(names - quoted):
        yield from _rows(session, collection, In(DataObject.name, batch))
    for name in sorted(quoted):
        yield from _rows(session, collection, DataObject.name == name)


def _rows(session: iRODSSession, collection: str, name_condition) -> Iterator[dict]:
    query = session.query(*_COLUMNS).filter(Collection.name == collection)
    if name_condition is not None:
        query = query.filter(name_condition)
    return exact_rows(query)


def _collect(rows: Iterable[dict], wanted: set[str]) -> dict[str, ObjectInfo]:
    replicas: dict[str, list[ReplicaInfo]] = {}
    data_ids: dict[str, int] = {}
    for row in rows:
        name = row[DataObject.name]
        if name not in wanted:
            continue
        data_ids[name] = int(row[DataObject.id])
        modified = row[DataObject.modify_time]
        replicas.setdefault(name, []).append(ReplicaInfo(
            number=int(row[DataObject.replica_number]), size=int(row[DataObject.size] or 0),
            modify_time=int(modified.timestamp()) if modified is not None else 0,
            status=row[DataObject.replica_status] or "", resource=row[DataObject.resource_name] or "",
            hierarchy=row[DataObject.resc_hier] or "", physical_path=row[DataObject.path] or "",
            checksum=row[DataObject.checksum] or None))
    return {name: ObjectInfo(name, data_ids[name], tuple(sorted(found, key=lambda r: r.number)))
            for name, found in replicas.items()}


@dataclass(frozen=True)
class CollectionContents:
    """Names of the data objects and full paths of the subcollections of one collection."""

    objects: frozenset[str]
    subcollections: frozenset[str]


def collection_contents(session: iRODSSession, collection: str) -> CollectionContents:
    """Everything directly in ``collection``: two paged queries, whatever its size."""
    objects = {row[DataObject.name] for row in exact_rows(session.query(DataObject.name)
                                                      .filter(Collection.name == collection))}
    subcollections = {row[Collection.name] for row in exact_rows(session.query(Collection.name)
                                                             .filter(Collection.parent_name == collection))}
    return CollectionContents(frozenset(objects), frozenset(subcollections))


def subtree(session: iRODSSession, collection: str) -> tuple[list[str], list[str]]:
    """Every data object path below ``collection`` (at any depth) and every collection of the
    subtree including itself, deepest first: the order in which they can be removed."""
    below = collection.rstrip("/") + "/"
    like = Like(Collection.name, below + "%")  # "_" and "%" in names are wildcards: filtered again below
    objects = [f"{row[Collection.name]}/{row[DataObject.name]}"
               for query in (session.query(Collection.name, DataObject.name).filter(Collection.name == collection),
                             session.query(Collection.name, DataObject.name).filter(like))
               for row in exact_rows(query)
               if row[Collection.name] == collection or row[Collection.name].startswith(below)]
    collections = [collection] + [row[Collection.name] for row in exact_rows(session.query(Collection.name).filter(like))
                                  if row[Collection.name].startswith(below)]
    return sorted(set(objects)), sorted(set(collections), key=lambda c: (-c.count("/"), c))


def exact_rows(query) -> Iterator[dict]:
    """Every row of a PRC query, names exact (hpcingest.irods.exact_query: a name with ``\r``
    must compare equal), iRODS errors as IrodsOperationError."""
    try:
        yield from exact_query.rows(query)
    except iRODSException as exc:
        raise operation_error(exc) from exc
