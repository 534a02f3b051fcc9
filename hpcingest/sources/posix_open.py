"""Opening what the walk statted, safely: piecewise past PATH_MAX, never through a symlink,
never blocking on a FIFO, and only the very file that was statted.

Between the walk's lstat and the moment a rank opens a file to upload or checksum it, a
hostile or busy user can swap the file for a FIFO (a plain ``open`` then waits forever for a
writer), for a symlink, or for another file.  So every source file is opened relative to its
directory's descriptor with ``O_NONBLOCK | O_NOFOLLOW`` (an open of a FIFO then returns at
once), and the descriptor's ``fstat`` must show a regular file with the statted device and
inode before a byte is read.  ``O_NOATIME`` is asked for where the caller owns the file:
scratch purge policies go by access time, and an ingest should not make files look used.

Directories are opened a few components at a time with ``openat``, so paths longer than
PATH_MAX (deep chains of long names) work for reading and ``readlink`` as for listing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from hpcingest.fileio import SourceChanged

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)
PATH_CHUNK = 3000  # well under PATH_MAX (4096) for one openat() call


def open_directory(root: bytes, directory: bytes) -> int:
    """A descriptor of ``root/directory`` (``b""`` is the root), opened piecewise when long
    (below the root when the root itself is short, from ``/`` when even the root is long)."""
    path = root + b"/" + directory if directory else root
    if len(path) < PATH_CHUNK:
        return os.open(path, DIRECTORY_FLAGS)
    start, rest = (root, directory) if len(root) < PATH_CHUNK else (b"/", path.lstrip(b"/"))
    fd = os.open(start, DIRECTORY_FLAGS)
    try:
        return open_below(fd, rest)
    finally:
        os.close(fd)


def open_below(directory_fd: int, relpath: bytes) -> int:
    """A new descriptor of the directory ``relpath`` below the open ``directory_fd`` (which
    stays open), in one ``openat`` when the path is short and a few components at a time when not."""
    fd = directory_fd
    for chunk in _path_chunks(relpath):
        try:
            next_fd = os.open(chunk, DIRECTORY_FLAGS, dir_fd=fd)
        finally:
            if fd != directory_fd:
                os.close(fd)
        fd = next_fd
    return fd


def _path_chunks(directory: bytes) -> list[bytes]:
    chunks: list[bytes] = []
    current: list[bytes] = []
    length = 0
    for part in directory.split(b"/"):
        if current and length + len(part) + 1 > PATH_CHUNK:
            chunks.append(b"/".join(current))
            current, length = [], 0
        current.append(part)
        length += len(part) + 1
    chunks.append(b"/".join(current))
    return chunks


class DirectoryHandles:
    """Descriptors of the directories one rank worked in last, so that a directory is opened
    once for its listing and its stat batches, and a subdirectory from its parent's descriptor.

    Opening ``root/a/b/c`` by its path costs a lookup per component and an open; where the
    metadata server is a round trip away and the client caches nothing (the benchmarks' latfs,
    NFS with short attribute caching) every stat batch paid that again: 0.06 operations per
    entry more than ``find`` on a tree of 100-file directories, and O(depth²) lookups on a deep
    chain.  Kept per walk (a later pass opens afresh); a directory replaced during the walk is
    seen as it was when this rank first opened it, as by a walk that holds it open."""

    def __init__(self, root: bytes, capacity: int = 16) -> None:
        self.root = root
        self.capacity = capacity
        self._root_fd: int | None = None
        self._open: OrderedDict[bytes, int] = OrderedDict()

    def get(self, directory: bytes) -> int:
        """A descriptor of ``root/directory`` (``b""`` is the root), borrowed: it stays valid
        while fewer than ``capacity`` other directories are opened, and only ``close`` closes it."""
        if not directory:
            return self._root()
        fd = self._open.get(directory)
        if fd is not None:
            self._open.move_to_end(directory)
            return fd
        ancestor_fd, below = self._nearest_open_ancestor(directory)
        fd = open_below(ancestor_fd, below)
        self._open[directory] = fd
        if len(self._open) > self.capacity:
            os.close(self._open.popitem(last=False)[1])
        return fd

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    def _root(self) -> int:
        if self._root_fd is None:
            self._root_fd = open_directory(self.root, b"")
        return self._root_fd

    def _nearest_open_ancestor(self, directory: bytes) -> tuple[int, bytes]:
        parent = directory
        while parent:
            parent = parent.rpartition(b"/")[0]
            fd = self._open.get(parent) if parent else None
            if fd is not None:
                self._open.move_to_end(parent)
                return fd, directory[len(parent) + 1:]
        return self._root(), directory


@contextmanager
def parent_directory(root: bytes, relpath: bytes,
                     directories: DirectoryHandles | None = None) -> Iterator[tuple[int, bytes]]:
    """(descriptor of the entry's directory, the entry's own name): one of ``directories``
    (kept open) when given, else opened here and closed on exit."""
    directory, _, name = relpath.rpartition(b"/")
    if directories is not None:
        yield directories.get(directory), name
        return
    fd = open_directory(root, directory)
    try:
        yield fd, name
    finally:
        os.close(fd)


def open_statted_file(root: bytes, relpath: bytes, device: int, inode: int,
                      directories: DirectoryHandles | None = None) -> tuple[int, os.stat_result]:
    """A blocking read descriptor of the regular file the walk statted at ``root/relpath``, and
    its fstat; raises SourceChanged when it is anything else (a FIFO, device, link, another file).
    ``directories`` (for ``root``) spares opening the file's directory for every file; a name
    missing there is looked for again by its path (the directory may have been replaced since
    it was opened)."""
    try:
        with parent_directory(root, relpath, directories) as (directory_fd, name):
            fd = _open_regular(directory_fd, name, relpath)
    except FileNotFoundError:
        if directories is None:
            raise
        with parent_directory(root, relpath) as (directory_fd, name):
            fd = _open_regular(directory_fd, name, relpath)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceChanged(f"the file was replaced by a {_kind(st.st_mode)} since it was listed; "
                                "it was not read", relpath)
        if (device and st.st_dev != device) or (inode and st.st_ino != inode):
            raise SourceChanged("the file was replaced by another file since it was listed; it was not read",
                                relpath)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _open_regular(directory_fd: int, name: bytes, relpath: bytes) -> int:
    """``name`` in the directory, without following a link or blocking on a FIFO."""
    try:
        return os.open(name, _FILE_FLAGS | _NOATIME, dir_fd=directory_fd)
    except PermissionError:
        if not _NOATIME:
            raise
        return os.open(name, _FILE_FLAGS, dir_fd=directory_fd)  # O_NOATIME needs the owner
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink where a file was
            raise SourceChanged("the file was replaced by a symbolic link since it was listed", relpath) from None
        raise


def read_link(root: bytes, relpath: bytes) -> bytes:
    """``readlink`` of ``root/relpath``, at any path length."""
    with parent_directory(root, relpath) as (directory_fd, name):
        return os.readlink(name, dir_fd=directory_fd)


def readable(root: bytes, relpath: bytes) -> bool:
    """``access(R_OK)`` of ``root/relpath`` (it knows ACLs and capabilities), at any path length."""
    try:
        with parent_directory(root, relpath) as (directory_fd, name):
            return os.access(name, os.R_OK, dir_fd=directory_fd)
    except OSError:
        return False


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return kind
    return "special file"
