"""Records that flow from sources to sinks: entries, batches of entries, walk errors.

Names are ``bytes`` end to end (``os.fsencode``): HPC filesystems hold names that are not
UTF-8, and a lossy decode would register the wrong physical path.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import time
from dataclasses import dataclass, field


class EntryType(str, enum.Enum):
    """Entry kinds, named as the old framework's ``--exclude_file_type`` names them."""

    REGULAR = "regular"
    DIRECTORY = "directory"
    LINK = "link"
    SOCKET = "socket"
    PIPE = "pipe"
    CHARACTER = "character"
    BLOCK = "block"

    @classmethod
    def from_mode(cls, mode: int) -> "EntryType":
        return _TYPE_BY_IFMT[stat.S_IFMT(mode)]


_TYPE_BY_IFMT = {
    stat.S_IFREG: EntryType.REGULAR,
    stat.S_IFDIR: EntryType.DIRECTORY,
    stat.S_IFLNK: EntryType.LINK,
    stat.S_IFSOCK: EntryType.SOCKET,
    stat.S_IFIFO: EntryType.PIPE,
    stat.S_IFCHR: EntryType.CHARACTER,
    stat.S_IFBLK: EntryType.BLOCK,
}


@dataclass(frozen=True, slots=True)
class Entry:
    """The lstat facts of one entry; symlinks describe the link itself, never its target."""

    relpath: bytes
    type: EntryType
    size: int
    mtime: float
    ctime: float
    mode: int
    uid: int
    gid: int
    inode: int
    etag: str = ""  # S3 objects: the ETag of the listing (an MD5, or a multipart MD5 with "-<parts>")
    device: int = 0  # st_dev: with the inode, what a later open must find (0 for S3)

    @property
    def name(self) -> bytes:
        return self.relpath.rpartition(b"/")[2]


@dataclass(slots=True)
class EntryBatch:
    """Entries of one directory, stat results kept raw so hot paths avoid per-entry objects.

    ``directory`` is the path of the parent relative to the source root (``b""`` for the
    root itself); ``names`` and ``stats`` are parallel lists; ``excluded`` counts the
    names an exclusion rule dropped.
    """

    directory: bytes
    names: list[bytes] = field(default_factory=list)
    stats: list[os.stat_result] = field(default_factory=list)
    excluded: int = 0
    errors: int = 0  # names of this batch the walk could not stat
    # The wall-clock time just before the entries were statted (listed, for S3).  It, not the
    # time a sink gets the batch, is what the sink records as their sync time: a batch may wait
    # seconds in queues (stolen, forwarded, waiting for its state), and a file changed in that
    # wait would otherwise be recorded as synced after its change and skipped by every later pass.
    statted_at: float = field(default_factory=time.time)

    def relpath(self, name: bytes) -> bytes:
        return self.directory + b"/" + name if self.directory else name

    def entries(self) -> list[Entry]:
        return [
            Entry(self.relpath(n), EntryType.from_mode(s.st_mode), s.st_size, s.st_mtime,
                  s.st_ctime, s.st_mode, s.st_uid, s.st_gid, s.st_ino, getattr(s, "etag", ""), s.st_dev)
            for n, s in zip(self.names, self.stats)
        ]

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class WalkError:
    """Something the walk could not read; counted and reported, never fatal."""

    relpath: bytes
    operation: str  # "opendir", "readdir", "lstat", ...
    errno: int
    message: str

    @classmethod
    def from_os_error(cls, relpath: bytes, operation: str, err: OSError) -> "WalkError":
        return cls(relpath, operation, err.errno or errno.EIO, err.strerror or str(err))

    def describe(self, root: bytes) -> str:
        """The error as one sentence, the path exact (surrogate-escaped): whoever shows it
        escapes it for where it goes (hpcingest.escaping), as a name can hold anything."""
        path = os.fsdecode(os.path.join(root, self.relpath) if self.relpath else root)
        return f"{self.operation} '{path}': [Errno {self.errno}] {self.message}"
