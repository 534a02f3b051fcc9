"""Physical files in resource vaults: where a logical path lands, and iRODS-style checksums."""

from __future__ import annotations

import base64
import errno
import hashlib
import os

from . import errors
from .catalog import Resource
from .errors import ZoneError, errno_code

_CHUNK = 4 * 1024 * 1024


def vault_path(leaf: Resource, logical_path: str, zone: str) -> str:
    """``<vault>/home/<user>/…``: the logical path minus its ``/<zone>`` prefix, as unixfilesystem lays it out."""
    relative = logical_path[len(zone) + 1:] if logical_path.startswith(f"/{zone}/") else logical_path
    return leaf.resc_def_path.rstrip("/") + relative


def open_file(path: str, flags: int) -> int:
    """Open a vault file, creating its directories for creates; failures become UNIX_FILE_*_ERR codes."""
    creating = bool(flags & os.O_CREAT)
    if creating:
        _prepare_create(os.path.dirname(path))
    try:
        return os.open(path, flags, 0o600)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_CREATE_ERR if creating else errors.UNIX_FILE_OPEN_ERR, exc),
                        f"cannot open {path}") from None


def _prepare_create(directory: str) -> None:
    """As the unixfilesystem plugin creates a file: it first asks for the free space of the file's
    directory (statfs), so a vault the server cannot reach fails with UNIX_FILE_GET_FS_FREESPACE_ERR
    and the errno; a directory that does not exist yet is made (mkDirForFilePath) and asked again."""
    try:
        os.statvfs(directory)
        return
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise ZoneError(errno_code(errors.UNIX_FILE_GET_FS_FREESPACE_ERR, exc),
                            f"cannot get the free space of {directory}") from None
    try:
        os.makedirs(directory, exist_ok=True)
        os.statvfs(directory)
    except OSError as exc:
        code = errors.UNIX_FILE_GET_FS_FREESPACE_ERR if os.path.isdir(directory) else errors.UNIX_FILE_MKDIR_ERR
        raise ZoneError(errno_code(code, exc), f"cannot make {directory}") from None


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_STAT_ERR, exc), f"cannot stat {path}") from None


def sha2_checksum(path: str) -> str:
    """The server's default checksum scheme: ``sha2:`` + base64 of the SHA-256 digest."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ZoneError(errno_code(errors.UNIX_FILE_OPEN_ERR, exc), f"cannot read {path}") from None
    return "sha2:" + base64.b64encode(digest.digest()).decode("ascii")


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise ZoneError(errno_code(errors.UNIX_FILE_UNLINK_ERR, exc), f"cannot unlink {path}") from None
