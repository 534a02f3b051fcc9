"""The iRODS calls an ingest makes, each the cheapest correct request sequence over a PRC session.

Every function takes the session as its first argument so it can run through
:meth:`IrodsConnection.call`, returns plain values and raises :class:`IrodsOperationError` (the
server's error name and code) for a per-object failure.  Keywords are those the server reads
(rodsKeyWdDef.h); the request counts noted below are measured against the built-in zone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

from irods.api_number import api_number
from irods.exception import CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, iRODSException
from irods.message import CollectionRequest, FileOpenRequest, StringStringMap, iRODSMessage
from irods.meta import iRODSMeta
from irods.models import Collection, DataObject
from irods.session import iRODSSession

from hpcingest.fileio import read_exactly

from .errors import IrodsOperationError, operation_error
from .listing import ObjectInfo, ReplicaInfo, list_collection_objects  # noqa: F401  (part of this API)
from .single_put import SINGLE_BUFFER_LIMIT, put_bytes

APPEND_CHUNK = 8 * 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class PutResult:
    size: int
    method: str  # "single-buffer" (one DATA_OBJ_PUT), "parallel" (PRC's multi-connection put) or "stream"


def irods_time(mtime: float) -> str:
    """Seconds since the epoch as iRODS stores them: 11 digits, so string comparisons in GenQuery hold."""
    return "%011d" % max(0, int(mtime))


def ensure_collection(session: iRODSSession, path: str) -> bool:
    """Create ``path`` and missing ancestors; True if it was absent (1 query, +1 create when absent)."""
    path = "/" + path.strip("/")
    exists = guarded(lambda: len(session.query(Collection.id).filter(Collection.name == path).execute()) > 0)
    if exists:
        return False
    request = CollectionRequest(collName=path, KeyValPair_PI=StringStringMap({"recursiveOpr": ""}))
    _send(session, iRODSMessage("RODS_API_REQ", msg=request, int_info=api_number["COLL_CREATE_AN"]))
    return True


def register(session: iRODSSession, physical_path: str, logical_path: str, size: int, mtime: float,
             resource: str | None = None, as_replica: bool = False, checksum: bool = False) -> None:
    """PHY_PATH_REG in one request; the server does not stat the file because the size is given."""
    options = {"dataSize": str(size), "dataModify": irods_time(mtime)}
    if resource:
        options["destRescName"] = resource
    if as_replica:
        options["regRepl"] = ""
    if checksum:
        options["regChksum"] = ""
    guarded(lambda: session.data_objects.register(physical_path, logical_path, **options))


def update_replica_metadata(session: iRODSSession, logical_path: str, size: int, mtime: float,
                            replica_number: int | None = None, clear_checksum: bool = False) -> None:
    """Record a changed source file: size and modify time, this replica (or all) good, the rest stale.

    The old framework leaves the catalog checksum alone, so it goes on describing the old content;
    ``clear_checksum`` empties it instead (a later checksum run then recomputes it).
    """
    target: dict[str, object] = {"objPath": logical_path}
    if replica_number is not None:
        target["replNum"] = replica_number
    changes = {"dataSize": str(size), "dataModify": irods_time(mtime), "allReplStatus": "1"}
    if clear_checksum:
        changes["chksum"] = ""
    guarded(lambda: session.data_objects.modDataObjMeta(target, changes))


def put_file(session: iRODSSession, local_path: str, logical_path: str, resource: str | None = None,
             checksum: bool = False, overwrite: bool = False) -> PutResult:
    """Upload a whole file by path (tools and tests; an ingest uploads from a verified descriptor)."""
    fd = os.open(local_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        return put_descriptor(session, fd, st.st_size, logical_path, st.st_mode & 0o777, resource=resource,
                              checksum=checksum, overwrite=overwrite)
    finally:
        os.close(fd)


def put_descriptor(session: iRODSSession, fd: int, size: int, logical_path: str, mode: int = 0o644,
                   resource: str | None = None, checksum: bool = False, overwrite: bool = False) -> PutResult:
    """Upload exactly the first ``size`` bytes of an open file, however it grows meanwhile: one
    DATA_OBJ_PUT up to 32 MiB, PRC's parallel put above.

    PRC's put reads a path; it is given ``/proc/self/fd/N``, which reopens this very file (not
    whatever the path names by now), and ``dataSize``, which fixes how many bytes its threads
    copy (by default it copies to wherever the file ends)."""
    options: dict[str, str] = {}
    if resource:
        options["destRescName"] = resource
    if checksum:
        options["regChksum"] = ""
    if size <= SINGLE_BUFFER_LIMIT:
        data = read_exactly(fd, 0, size)
        if overwrite:
            options["forceFlag"] = ""
        guarded(lambda: put_bytes(session, data, logical_path, mode, options))
        return PutResult(size, "single-buffer")
    if not session.data_objects.should_parallelize_transfer(0, size):
        guarded(lambda: _stream_range(session, fd, logical_path, 0, size, "w", dict(options, **(
            {"forceFlag": ""} if overwrite else {}))))
        return PutResult(size, "stream")
    guarded(lambda: session.data_objects.put(f"/proc/self/fd/{fd}", logical_path, forceFlag=overwrite,
                                             dataSize=str(size), **options))
    return PutResult(size, "parallel")


def append_file(session: iRODSSession, local_path: str, logical_path: str, from_offset: int) -> int:
    """Copy a file by path from ``from_offset`` to its end as it is now (tools and tests)."""
    fd = os.open(local_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size < from_offset:
            raise ValueError(f"{local_path} has {size} bytes, fewer than the offset {from_offset} to append from")
        return append_descriptor(session, fd, logical_path, from_offset, size)
    finally:
        os.close(fd)


def append_descriptor(session: iRODSSession, fd: int, logical_path: str, from_offset: int, to_offset: int) -> int:
    """Copy bytes ``[from_offset, to_offset)`` of an open file to the same offsets of the object:
    exactly those, however long the file is by now; returns the bytes written."""
    return guarded(lambda: _stream_range(session, fd, logical_path, from_offset, to_offset, "a", {}))


def add_avu_if_absent(session: iRODSSession, path: str, attribute: str, value: str, units: str | None = None,
                      collection: bool = False) -> bool:
    """Attach an AVU; False if it was already attached (one request either way)."""
    model = Collection if collection else DataObject
    try:
        session.metadata.add(model, path, iRODSMeta(attribute, value, units))
    except CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME:
        return False
    except iRODSException as exc:
        raise operation_error(exc) from exc
    return True


def set_avu(session: iRODSSession, path: str, attribute: str, value: str, units: str | None = None,
            collection: bool = False) -> None:
    """Make ``attribute`` single-valued with this value (imeta set semantics, one request)."""
    model = Collection if collection else DataObject
    guarded(lambda: session.metadata.set(model, path, iRODSMeta(attribute, value, units)))


def _stream_range(session: iRODSSession, fd: int, logical_path: str, start: int, end: int, mode: str,
                  options: dict[str, str]) -> int:
    written = 0
    with session.data_objects.open(logical_path, mode, **options) as target:
        if start:
            target.seek(start)
        while written < end - start:
            chunk = read_exactly(fd, start + written, min(APPEND_CHUNK, end - start - written))
            target.write(chunk)
            written += len(chunk)
    return written


def _send(session: iRODSSession, message: iRODSMessage) -> None:
    def exchange() -> None:
        with session.pool.get_connection() as conn:
            conn.send(message)
            conn.recv()

    guarded(exchange)


def guarded(action: Callable[[], T]) -> T:
    """Run a PRC call, turning a server error code into IrodsOperationError (network errors pass)."""
    try:
        return action()
    except (iRODSException, KeyError) as exc:  # PRC raises KeyError(code) for codes it has no class for
        failure = operation_error(exc)
        if failure is None:
            raise
        raise failure from exc


def unregister_object(session: iRODSSession, logical_path: str) -> None:
    """Forget the object, keep its file (iunreg; DELETE UNREGISTER)."""
    guarded(lambda: session.data_objects.unregister(logical_path))


def remove_object(session: iRODSSession, logical_path: str, to_trash: bool) -> None:
    """irm (to the zone's trash) or irm -f (gone for good): DeleteMode TRASH / NO_TRASH."""
    guarded(lambda: session.data_objects.unlink(logical_path, force=not to_trash))


def remove_empty_collection(session: iRODSSession, path: str) -> None:
    """Unregister a collection that must already be empty (the server refuses otherwise)."""
    guarded(lambda: session.collections.unregister(path, recurse=False, force=False))


@dataclass(frozen=True)
class Registration:
    physical_path: str
    logical_path: str
    size: int
    mtime: float


def register_pipelined(session: iRODSSession, registrations: list[Registration], checksum: bool = False,
                       window: int = 64) -> list[IrodsOperationError | None]:
    """PHY_PATH_REG for many new objects on one connection without a round trip each.

    Up to ``window`` requests are sent back to back and their replies read in order: an
    iRODS agent reads one request at a time from its socket, so this is pipelining within the
    protocol, not a change to it, and the server does the same work; what goes is the wait of
    one network round trip (plus the server's turnaround) per file.  Each reply is that
    request's own outcome: None, or the server's error for that object.
    """
    outcomes: list[IrodsOperationError | None] = []
    with session.pool.get_connection() as conn:
        for start in range(0, len(registrations), window):
            chunk = registrations[start:start + window]
            for item in chunk:
                options = {"filePath": item.physical_path, "dataSize": str(item.size),
                           "dataModify": irods_time(item.mtime)}
                if checksum:
                    options["regChksum"] = ""
                body = FileOpenRequest(objPath=item.logical_path, createMode=0, openFlags=0, offset=0, dataSize=0,
                                       numThreads=session.numThreads, oprType=0,
                                       KeyValPair_PI=StringStringMap(options))
                conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number["PHY_PATH_REG_AN"]))
            for _ in chunk:  # every reply is read, whatever earlier ones said
                try:
                    conn.recv()
                    outcomes.append(None)
                except (iRODSException, KeyError) as exc:
                    failure = operation_error(exc)
                    if failure is None:
                        raise
                    outcomes.append(failure)
    return outcomes
