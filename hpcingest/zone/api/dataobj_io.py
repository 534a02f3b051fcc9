"""Data object I/O: open/create, read, write, lseek, close, the parallel-transfer helpers
(GET_FILE_DESCRIPTOR_INFO, REPLICA_CLOSE) and the single-call DATA_OBJ_PUT with inline data.

Descriptors are per connection and start at 3, like the real L1 descriptor table.  Secondary
opens of a parallel transfer join the primary's replica through its replica token and never
finalize; only the primary's DATA_OBJ_CLOSE updates size, status and checksum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .. import errors
from ..catalog import Replica, now_ts
from ..errors import ZoneError, errno_code
from ..framing import Message
from ..paths import collection_or_fail, normalize, split
from ..replicas import (GOOD, INTERMEDIATE, STALE, WRITE_LOCKED, best_replica, check_not_locked, leaf_for_create,
                        new_replica, replica_in_request, sibling_replica)
from ..session import Session
from ..vault import open_file, sha2_checksum, vault_path
from ..xmlpack import json_buf, parse, parse_json_buf, struct
from .registry import Reply, api
from .replication import replicate_within_hierarchy

NUM_L1_DESC = 1026
_ACCESS_MODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
_CREATE_FLAGS = os.O_CREAT | os.O_RDWR | os.O_TRUNC
_SEEK_WHENCE = (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END)


@dataclass
class Descriptor:
    """An open replica on this connection (an L1 descriptor)."""

    os_fd: int
    replica: Replica
    logical_path: str
    writing: bool
    primary: bool
    token: str
    options: dict[str, str]
    declared_size: int
    sibling_status: dict[int, int] = field(default_factory=dict)
    offset: int = 0


def _allocate(session: Session, descriptor: Descriptor) -> int:
    fd = 3
    while fd in session.descriptors:
        fd += 1
    if fd >= NUM_L1_DESC:
        os.close(descriptor.os_fd)
        raise ZoneError(errors.SYS_FILE_DESC_OUT_OF_RANGE, "too many open descriptors")
    session.descriptors[fd] = descriptor
    return fd


def descriptor(session: Session, fd: int) -> Descriptor:
    if fd < 3 or fd >= NUM_L1_DESC:
        raise ZoneError(errors.SYS_FILE_DESC_OUT_OF_RANGE, f"descriptor {fd} out of range")
    try:
        return session.descriptors[fd]
    except KeyError:
        raise ZoneError(errors.BAD_INPUT_DESC_INDEX, f"descriptor {fd} is not open") from None


def open_data_object(session: Session, path: str, flags: int, options: dict[str, str], declared_size: int) -> int:
    """rsDataObjOpen: returns a new descriptor; creates the object or a new replica when allowed."""
    catalog = session.zone.catalog
    writing = (flags & _ACCESS_MODE) != os.O_RDONLY or bool(flags & os.O_CREAT)
    token = options.get("replicaToken", "")
    if token:
        return _join_replica(session, token, writing, options, declared_size)
    path = normalize(path)
    parent, name = split(path)
    with catalog.transaction():
        coll = catalog.collection(parent)
        replicas = catalog.replicas(coll.coll_id, name) if coll else []
        if not replicas:
            if not flags & os.O_CREAT:
                raise ZoneError(errors.OBJ_PATH_DOES_NOT_EXIST, f"[{path}] does not exist")
            if catalog.collection(path) is not None:
                raise ZoneError(errors.CAT_NAME_EXISTS_AS_COLLECTION, f"[{path}] is a collection")
            coll = collection_or_fail(catalog, parent)
            session.require_access(coll.coll_id, "modify_object", parent)
            leaf = leaf_for_create(session, options)
            target = new_replica(session, coll, name, leaf, data_id=catalog.next_id(), repl_num=0,
                                 status=INTERMEDIATE, data_type=options.get("dataType", ""))
            catalog.insert_replica(target)
            catalog.grant_new_object(target.data_id, session.client.user_id, coll)
            siblings: dict[int, int] = {}
        elif writing:
            target, siblings = _lock_for_write(session, replicas, flags, options)
        else:
            # for reads a named resource is a preference, as in the server's hierarchy vote
            target = replica_in_request(session, replicas, options) or best_replica(replicas)
            session.require_access(target.data_id, "read_object", path)
            siblings = {}
        os_flags = (os.O_RDWR | os.O_CREAT | (flags & os.O_TRUNC)) if writing else os.O_RDONLY
        os_fd = open_file(target.data_path, os_flags)
    token = session.zone.tokens.issue(target.data_id, target.data_repl_num)
    return _allocate(session, Descriptor(os_fd, target, path, writing, True, token, options, declared_size,
                                         siblings))


def _lock_for_write(session: Session, replicas: list[Replica], flags: int,
                    options: dict[str, str]) -> tuple[Replica, dict[int, int]]:
    catalog = session.zone.catalog
    session.require_access(replicas[0].data_id, "modify_object", replicas[0].data_name)
    check_not_locked(replicas)
    target = replica_in_request(session, replicas, options)
    if target is None:
        if not flags & os.O_CREAT:
            raise ZoneError(errors.SYS_REPLICA_DOES_NOT_EXIST, "no replica on the requested resource")
        leaf = leaf_for_create(session, options)
        source = best_replica(replicas)
        logical = f"{catalog.collection_name(source.coll_id)}/{source.data_name}"
        target = sibling_replica(source, leaf, max(r.data_repl_num for r in replicas) + 1,
                                 vault_path(leaf, logical, session.zone.config.zone))
        target.data_is_dirty = INTERMEDIATE
        catalog.insert_replica(target)
    siblings = {r.data_repl_num: r.data_is_dirty for r in replicas if r.data_repl_num != target.data_repl_num}
    catalog.update_replica(target.data_id, target.data_repl_num, data_is_dirty=INTERMEDIATE)
    for repl_num in siblings:
        catalog.update_replica(target.data_id, repl_num, data_is_dirty=WRITE_LOCKED)
    return target, siblings


def _join_replica(session: Session, token: str, writing: bool, options: dict[str, str], declared: int) -> int:
    entry = session.zone.tokens.get(token)
    replica = session.zone.catalog.replica(entry.data_id, entry.repl_num) if entry else None
    if replica is None:
        raise ZoneError(errors.LOCKED_DATA_OBJECT_ACCESS, "replica token is not valid")
    os_fd = open_file(replica.data_path, os.O_RDWR if writing else os.O_RDONLY)
    path = f"{session.zone.catalog.collection_name(replica.coll_id)}/{replica.data_name}"
    return _allocate(session, Descriptor(os_fd, replica, path, writing, False, token, options, declared))


def close_descriptor(session: Session, fd: int, close_options: dict[str, str], finalize: bool = True) -> None:
    """Close a descriptor; a primary write descriptor finalizes the replica (rsDataObjClose)."""
    desc = session.descriptors.pop(fd)
    os.close(desc.os_fd)
    if not desc.primary:
        return
    session.zone.tokens.release(desc.token)
    if desc.writing and finalize:
        _finalize_write(session, desc, close_options)


def _finalize_write(session: Session, desc: Descriptor, close_options: dict[str, str], ok: bool = True) -> None:
    catalog = session.zone.catalog
    replica = desc.replica
    options = {**desc.options, **close_options}
    try:
        size = os.stat(replica.data_path).st_size
    except OSError:
        size = 0
    status = GOOD if ok else STALE
    if ok and desc.declared_size > 0 and desc.declared_size != size and "noChkCopyLen" not in options:
        status = STALE
    checksum = replica.data_checksum
    if ok and ("regChksum" in options or "verifyChksum" in options or checksum):
        checksum = sha2_checksum(replica.data_path)
    with catalog.transaction():
        catalog.update_replica(replica.data_id, replica.data_repl_num, data_size=size, modify_ts=now_ts(),
                               data_is_dirty=status, data_checksum=checksum)
        for repl_num, previous in desc.sibling_status.items():
            catalog.update_replica(replica.data_id, repl_num, data_is_dirty=STALE if ok else previous)
    expected = options.get("verifyChksum", "")
    if ok and expected and expected != checksum:
        raise ZoneError(errors.USER_CHKSUM_MISMATCH, f"checksum mismatch for [{desc.logical_path}]")
    if ok and status == GOOD:
        replicate_within_hierarchy(session, replica, desc.logical_path)


def release_descriptors(session: Session) -> None:
    """What the agent's exit does: close everything; interrupted writes leave a stale replica."""
    for fd, desc in list(session.descriptors.items()):
        close_descriptor(session, fd, {}, finalize=False)
        if desc.primary and desc.writing:
            try:
                _finalize_write(session, desc, {}, ok=False)
            except (ZoneError, OSError):
                pass


# ---------------------------------------------------------------------------------------------
# handlers


def _open_request(session: Session, request: Message, extra_flags: int) -> Reply:
    body = parse(request.msg)
    fd = open_data_object(session, body.path("objPath"), body.int("openFlags") | extra_flags, body.kvp(),
                          body.int("dataSize"))
    return Reply(int_info=fd)


@api(601, "DATA_OBJ_CREATE_AN")
def data_obj_create(session: Session, request: Message) -> Reply:
    return _open_request(session, request, _CREATE_FLAGS)


@api(602, "DATA_OBJ_OPEN_AN")
def data_obj_open(session: Session, request: Message) -> Reply:
    return _open_request(session, request, 0)


@api(673, "DATA_OBJ_CLOSE_AN")
def data_obj_close(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    fd = body.int("l1descInx")
    descriptor(session, fd)
    close_descriptor(session, fd, body.kvp())
    return Reply()


@api(674, "DATA_OBJ_LSEEK_AN")
def data_obj_lseek(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    desc = descriptor(session, body.int("l1descInx"))
    whence, offset = body.int("whence"), body.int("offset")
    if whence not in _SEEK_WHENCE:
        raise ZoneError(errors.UNIX_FILE_LSEEK_ERR - 22, f"bad whence {whence}")
    base = {os.SEEK_SET: 0, os.SEEK_CUR: desc.offset}.get(whence)
    if base is None:
        base = os.fstat(desc.os_fd).st_size
    if base + offset < 0:
        raise ZoneError(errors.UNIX_FILE_LSEEK_ERR - 22, "seek before start of file")
    desc.offset = base + offset
    return Reply(msg=struct("fileLseekOut_PI", ("offset", desc.offset)).encode())


@api(675, "DATA_OBJ_READ_AN")
def data_obj_read(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    desc = descriptor(session, body.int("l1descInx"))
    try:
        data = os.pread(desc.os_fd, max(body.int("len"), 0), desc.offset)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_READ_ERR, exc), "read failed") from None
    desc.offset += len(data)
    return Reply(int_info=len(data), bs=data)


@api(676, "DATA_OBJ_WRITE_AN")
def data_obj_write(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    desc = descriptor(session, body.int("l1descInx"))
    if not desc.writing:
        raise ZoneError(errors.UNIX_FILE_WRITE_ERR - 9, "descriptor is not open for writing")
    try:
        written = os.pwrite(desc.os_fd, request.bs, desc.offset)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_WRITE_ERR, exc), "write failed") from None
    desc.offset += written
    return Reply(int_info=written)


def _json_fd(request: Message) -> tuple[dict, int]:
    body = parse_json_buf(request.msg)
    if not isinstance(body, dict) or not isinstance(body.get("fd"), int):
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "missing or bad [fd]")
    return body, body["fd"]


@api(20000, "GET_FILE_DESCRIPTOR_INFO_APN")
def get_file_descriptor_info(session: Session, request: Message) -> Reply:
    _, fd = _json_fd(request)
    if fd not in session.descriptors:
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"descriptor {fd} is not open")
    desc = session.descriptors[fd]
    replica = desc.replica
    tree = session.zone.catalog.resources
    info = {
        "l1_desc_index": fd, "l3_descriptor_index": desc.os_fd, "in_use": True, "replica_token": desc.token,
        "data_size": desc.declared_size, "bytes_written": 0,
        "data_object_input": {"object_path": desc.logical_path, "data_size": desc.declared_size,
                              "key_value_pairs": desc.options},
        "data_object_info": {
            "object_path": desc.logical_path, "data_id": replica.data_id, "collection_id": replica.coll_id,
            "replica_number": replica.data_repl_num, "replica_status": replica.data_is_dirty,
            "resource_name": tree.by_id[replica.resc_id].resc_name if replica.resc_id in tree.by_id else "",
            "resource_hierarchy": tree.hierarchy(replica.resc_id), "file_path": replica.data_path,
            "data_size": replica.data_size, "checksum": replica.data_checksum,
        },
    }
    return Reply(msg=json_buf(info))


@api(20004, "REPLICA_CLOSE_APN")
def replica_close(session: Session, request: Message) -> Reply:
    body, fd = _json_fd(request)
    desc = descriptor(session, fd)
    if body.get("compute_checksum") and not body.get("update_status"):
        raise ZoneError(errors.USER_INCOMPATIBLE_PARAMS, "compute_checksum requires update_status")
    close_descriptor(session, fd, {}, finalize=bool(body.get("update_status")))
    if body.get("update_size") and not body.get("update_status") and desc.writing:
        size = os.stat(desc.replica.data_path).st_size
        session.zone.catalog.update_replica(desc.replica.data_id, desc.replica.data_repl_num, data_size=size)
    return Reply()


@api(606, "DATA_OBJ_PUT_AN")
def data_obj_put(session: Session, request: Message) -> Reply:
    """Single-buffer put, as iput sends files up to 32 MiB: ``dataIncluded`` and the file in ``bs``.

    Without ``dataIncluded`` the real server sets up a parallel-transfer portal, which this zone
    does not implement.
    """
    body = parse(request.msg)
    size = body.int("dataSize")
    options = body.kvp()
    if "dataIncluded" not in options:
        raise ZoneError(errors.SYS_NOT_SUPPORTED, "only single-buffer puts (dataIncluded) are supported")
    if len(request.bs) != size:
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"dataSize {size} but {len(request.bs)} bytes included")
    catalog = session.zone.catalog
    with catalog.transaction():
        path = normalize(body.path("objPath"))
        parent, name = split(path)
        coll = catalog.collection(parent)
        if coll and catalog.replicas(coll.coll_id, name) and "forceFlag" not in options:
            raise ZoneError(errors.OVERWRITE_WITHOUT_FORCE_FLAG, f"[{path}] exists")
        fd = open_data_object(session, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, options, size)
        desc = session.descriptors[fd]
        try:
            os.pwrite(desc.os_fd, request.bs, 0)
        except OSError as exc:
            close_descriptor(session, fd, {}, finalize=False)
            raise ZoneError(errno_code(errors.UNIX_FILE_WRITE_ERR, exc), "write failed") from None
        close_descriptor(session, fd, {})
    return Reply()
