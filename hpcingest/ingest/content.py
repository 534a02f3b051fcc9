"""Where PUT, PUT_SYNC and PUT_APPEND read the bytes they upload: a file, or an S3 object.

The sink decides *whether* to upload; these classes decide *how*, so the same decisions
(create, overwrite, append from the catalog size, re-put a shrunk source) serve both kinds
of source.

S3 objects stream straight into iRODS, with no local temporary copy.  Up to 32 MiB an
object is one GET and one single-call DATA_OBJ_PUT; above, ranged GETs of the multipart
chunk size run in parallel threads (S3 gives each connection a modest share of bandwidth)
while the main thread writes the chunks in order through one open iRODS handle.  The MD5 of
what was written is checked against the ETag, a multipart ETag being rebuilt from per-chunk
MD5s with ``--s3_multipart_chunksize_in_mib``; a mismatch is a failure.

Files are read only through a descriptor of the very file the walk statted, and exactly the
bytes decided on (see :class:`FileContent`).  Whatever an upload that failed (or that read a
source changing under it) left behind is removed again, for files and objects alike: an
object that exists is taken for a finished upload only when it has a good replica of the
source's size, and a removed one is uploaded again by the next pass.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hpcingest.fileio import SourceChanged, read_exactly
from hpcingest.irods.errors import IrodsOperationError
from hpcingest.lazy import lazy_module
from hpcingest.records import Entry
from hpcingest.sources.posix_open import DirectoryHandles, open_statted_file

ops = lazy_module("hpcingest.irods.operations")

#: Ranged GETs in flight per rank for one big object (each holds one chunk in memory).
S3_PARALLEL_GETS = 4
CHECKSUM_CHUNK = 8 << 20


@dataclass
class Digests:
    """Digests of bytes as they stream past, only the ones asked for: the MD5 (an S3 upload's
    ETag check) and the SHA-256 (--verify_checksum against a ``sha2:`` catalog checksum)."""

    with_md5: bool = True
    with_sha256: bool = True
    md5: Any = None
    sha256: Any = None

    def __post_init__(self) -> None:
        self.md5 = hashlib.md5() if self.with_md5 else None
        self.sha256 = hashlib.sha256() if self.with_sha256 else None

    @classmethod
    def like_stored(cls, stored: str) -> "Digests":
        """Just the digest that compares with a catalog checksum written like ``stored``."""
        sha2 = stored.startswith("sha2:")
        return cls(with_md5=not sha2, with_sha256=sha2)

    def update(self, chunk: bytes) -> None:
        if self.md5 is not None:
            self.md5.update(chunk)
        if self.sha256 is not None:
            self.sha256.update(chunk)

    def like(self, stored: str) -> str:
        """In the server's notation: ``sha2:<base64>`` or hex MD5."""
        if stored.startswith("sha2:"):
            import base64

            return "sha2:" + base64.b64encode(self.sha256.digest()).decode()
        return self.md5.hexdigest()


class FileContent:
    """Uploads from the filesystem under ``root``: only the regular file the walk statted, and
    exactly the bytes decided on (hpcingest.sources.posix_open, hpcingest.fileio)."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self._directories = DirectoryHandles(root)  # the files of a batch share their directory

    def close(self) -> None:
        """The pass is over: close the directories kept open."""
        self._directories.close()

    def path(self, entry: Entry) -> bytes:
        return os.path.join(self.root, entry.relpath)

    @contextmanager
    def _opened(self, entry: Entry, whole_file: bool = True) -> Iterator[int]:
        """The statted file, open; refused (nothing read) when it is shorter than statted or,
        for a ``whole_file`` copy, was modified at all since (an append reads only what was
        statted, so a file that grew is fine there; the next pass appends the rest)."""
        fd, st = open_statted_file(self.root, entry.relpath, entry.device, entry.inode, self._directories)
        try:
            _check_version(entry, st, whole_file, "since it was listed; it was not read")
            yield fd
        finally:
            os.close(fd)

    def put(self, session, entry: Entry, logical: str, resource: str | None, checksum: bool,
            overwrite: bool) -> int:
        with self._opened(entry) as fd, removed_on_failure(session, logical):
            try:
                ops.put_descriptor(session, fd, entry.size, logical, entry.mode & 0o777, resource=resource,
                                   checksum=checksum, overwrite=overwrite)
            finally:  # a transfer that failed because the file changed under it says so
                _check_version(entry, os.fstat(fd), True, "while it was uploaded; the partial copy was "
                               "removed and the next pass uploads it again")
        return entry.size

    def append(self, session, entry: Entry, logical: str, offset: int) -> int:
        """Bytes ``[offset, statted size)``, however far the file has grown by now."""
        with self._opened(entry, whole_file=False) as fd:
            return ops.append_descriptor(session, fd, logical, offset, entry.size)

    def checksum_like(self, entry: Entry, stored: str) -> str:
        digests = Digests.like_stored(stored)
        with self._opened(entry, whole_file=False) as fd:
            for offset in range(0, entry.size, CHECKSUM_CHUNK):
                digests.update(read_exactly(fd, offset, min(CHECKSUM_CHUNK, entry.size - offset)))
        return digests.like(stored)

    def discard(self, entry: Entry) -> None:
        """Nothing is kept per entry for files."""


def _check_version(entry: Entry, st: os.stat_result, whole_file: bool, when: str) -> None:
    """SourceChanged unless ``st`` still describes the statted version of the file: as long as
    it was, and, for a whole-file copy, not modified at all (a copy of a file written to
    meanwhile is no version of it)."""
    if st.st_size < entry.size:
        raise SourceChanged(f"the file shrank from {entry.size} to {st.st_size} bytes {when}", entry.relpath)
    if whole_file and (st.st_mtime != entry.mtime or st.st_size != entry.size):
        raise SourceChanged(f"the file was modified {when} (size {entry.size} -> {st.st_size})", entry.relpath)


_ALREADY_THERE = ("OVERWRITE_WITHOUT_FORCE_FLAG", "CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME")


@contextmanager
def removed_on_failure(session, logical: str) -> Iterator[None]:
    """Whatever a failed upload left at ``logical`` is removed, so no partial or wrong object
    can look like a finished one (a later pass finds nothing there and uploads it again).

    An error that says the object was already there (a create refused) touches nothing: that
    object is someone else's, or an earlier attempt's that the caller will judge."""
    try:
        yield
    except BaseException as err:
        if getattr(err, "name", None) not in _ALREADY_THERE:
            try:
                ops.remove_object(session, logical, to_trash=False)
            except Exception:  # noqa: BLE001 - nothing there, or no connection: the next pass's check decides
                pass
        raise


class S3Content:
    """Uploads objects of an :class:`~hpcingest.sources.s3.S3Source`."""

    def __init__(self, source, verify: bool = False, parallel_gets: int = S3_PARALLEL_GETS) -> None:
        self.source = source
        self.verify = verify
        self.chunk = max(1, source.settings.multipart_chunksize_mib) << 20
        self.parallel_gets = parallel_gets
        self._digests: dict[bytes, Digests] = {}  # relpath -> digests of its last upload, for verify

    def close(self) -> None:
        """Nothing to close: the source's client is shared."""

    def put(self, session, entry: Entry, logical: str, resource: str | None, checksum: bool,
            overwrite: bool) -> int:
        options: dict[str, str] = {}
        if resource:
            options["destRescName"] = resource
        if checksum:
            options["regChksum"] = ""
        digests = Digests(with_sha256=self.verify)
        data = self._get(entry, 0, None) if entry.size <= ops.SINGLE_BUFFER_LIMIT else None
        with removed_on_failure(session, logical):  # never leave a partial or corrupt object a later pass would trust
            if data is not None:
                digests.update(data)
                if overwrite:
                    options["forceFlag"] = ""
                ops.guarded(lambda: ops.put_bytes(session, data, logical, 0o644, options))
                written, parts = len(data), [hashlib.md5(data[i:i + self.chunk]).digest()
                                             for i in range(0, max(len(data), 1), self.chunk)]
            else:
                written, parts = ops.guarded(lambda: self._stream(session, entry, logical, 0, "w", options, digests))
            if self.verify:
                self._digests[entry.relpath] = digests
            check_etag(entry, digests, parts, written, self.source.settings.multipart_chunksize_mib)
        return written

    def append(self, session, entry: Entry, logical: str, offset: int) -> int:
        """The object's bytes from ``offset`` on; the ETag covers the whole object, so an
        append is checked by size only (--verify_checksum checks the whole result)."""
        written, _ = ops.guarded(lambda: self._stream(session, entry, logical, offset, "a", {}, None))
        self._digests.pop(entry.relpath, None)
        return written

    def checksum_like(self, entry: Entry, stored: str) -> str:
        digests = self._digests.pop(entry.relpath, None)
        if digests is None:  # after an append: read the object once more
            digests = Digests.like_stored(stored)
            for chunk in self._chunks(entry, 0):
                digests.update(chunk)
        return digests.like(stored)

    def discard(self, entry: Entry) -> None:
        self._digests.pop(entry.relpath, None)

    # -- S3 ---------------------------------------------------------------------------------
    def _get(self, entry: Entry, start: int, end: int | None) -> bytes:
        request = {"Bucket": self.source.bucket, "Key": self.source.object_key(entry.relpath)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        body = self.source.client.get_object(**request)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def _chunks(self, entry: Entry, start: int) -> Iterator[bytes]:
        """The object from ``start`` on, in chunk-size pieces fetched ahead in parallel."""
        from concurrent.futures import ThreadPoolExecutor  # here: only S3 ingest of large objects uses it

        ranges = deque((offset, min(offset + self.chunk, entry.size)) for offset in range(start, entry.size, self.chunk))
        with ThreadPoolExecutor(self.parallel_gets, thread_name_prefix="s3-get") as pool:
            pending = deque()
            while ranges or pending:
                while ranges and len(pending) < self.parallel_gets:
                    begin, end = ranges.popleft()
                    pending.append((end - begin, pool.submit(self._get, entry, begin, end)))
                expected, future = pending.popleft()
                chunk = future.result()
                if len(chunk) != expected:
                    raise IrodsOperationError("S3_SHORT_READ", None,
                                              f"S3 returned {len(chunk)} bytes for a {expected}-byte range of "
                                              f"{self.source.object_key(entry.relpath)} (changed while read?)")
                yield chunk

    def _stream(self, session, entry: Entry, logical: str, start: int, mode: str, options: dict,
                digests: Digests | None) -> tuple[int, list[bytes]]:
        written, parts = 0, []
        with session.data_objects.open(logical, mode, **options) as target:
            if start:
                target.seek(start)
            for chunk in self._chunks(entry, start):
                target.write(chunk)
                written += len(chunk)
                if digests is not None:
                    digests.update(chunk)
                    parts.append(hashlib.md5(chunk).digest())
        return written, parts


def check_etag(entry: Entry, digests: Digests, parts: list[bytes], written: int, chunk_mib: int) -> None:
    """Raise unless the uploaded bytes are the object the listing described.

    A plain ETag is the MD5 of the object; a multipart one (``<hex>-<parts>``) is the MD5 of
    the concatenated part MD5s, which only the uploader's part size reproduces."""
    etag = entry.etag
    if written != entry.size:
        raise IrodsOperationError("S3_SIZE_MISMATCH", None,
                                  f"read {written} bytes, the listing said {entry.size} (object changed?)")
    if not etag:
        return
    digest, _, count = etag.partition("-")
    if not count:
        got = digests.md5.hexdigest()
    elif int(count) != len(parts):
        raise IrodsOperationError(
            "S3_ETAG_UNVERIFIABLE", None,
            f"multipart ETag {etag} has {count} parts, a {chunk_mib} MiB part size gives {len(parts)}: "
            "set --s3_multipart_chunksize_in_mib to the part size the object was uploaded with")
    else:
        got = hashlib.md5(b"".join(parts)).hexdigest()
    if got != digest:
        raise IrodsOperationError("S3_ETAG_MISMATCH", None,
                                  f"MD5 of the uploaded bytes is {got}, the object's ETag is {etag}")
