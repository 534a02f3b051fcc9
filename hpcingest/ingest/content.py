"""Where PUT, PUT_SYNC and PUT_APPEND read the bytes they upload: a file, or an S3 object.

The sink decides *whether* to upload; these classes decide *how*, so the same decisions
(create, overwrite, append from the catalog size, re-put a shrunk source) serve both kinds
of source.

S3 objects stream straight into iRODS, with no local temporary copy.  Up to 32 MiB an
object is one GET and one single-call DATA_OBJ_PUT; above, ranged GETs of the multipart
chunk size run in parallel threads (S3 gives each connection a modest share of bandwidth)
while the main thread writes the chunks in order through one open iRODS handle.  The MD5 of
what was written is checked against the ETag, a multipart ETag being rebuilt from per-chunk
MD5s with ``--s3_multipart_chunksize_in_mib``; a mismatch is a failure, and an object this
pass created with wrong content is removed again, so the next pass retries it.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from hpcingest.irods.errors import IrodsOperationError
from hpcingest.lazy import lazy_module
from hpcingest.records import Entry

ops = lazy_module("hpcingest.irods.operations")

#: Ranged GETs in flight per rank for one big object (each holds one chunk in memory).
S3_PARALLEL_GETS = 4


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
    """Uploads from the filesystem under ``root``."""

    def __init__(self, root: bytes) -> None:
        self.root = root

    def path(self, entry: Entry) -> bytes:
        return os.path.join(self.root, entry.relpath)

    def put(self, session, entry: Entry, logical: str, resource: str | None, checksum: bool,
            overwrite: bool) -> int:
        return ops.put_file(session, self.path(entry), logical, resource=resource, checksum=checksum,
                            overwrite=overwrite).size

    def append(self, session, entry: Entry, logical: str, offset: int) -> int:
        return ops.append_file(session, self.path(entry), logical, offset)

    def checksum_like(self, entry: Entry, stored: str) -> str:
        digests = Digests.like_stored(stored)
        with open(self.path(entry), "rb") as f:
            while chunk := f.read(8 << 20):
                digests.update(chunk)
        return digests.like(stored)

    def discard(self, entry: Entry) -> None:
        """Nothing is kept per entry for files."""


class S3Content:
    """Uploads objects of an :class:`~hpcingest.sources.s3.S3Source`."""

    def __init__(self, source, verify: bool = False, parallel_gets: int = S3_PARALLEL_GETS) -> None:
        self.source = source
        self.verify = verify
        self.chunk = max(1, source.settings.multipart_chunksize_mib) << 20
        self.parallel_gets = parallel_gets
        self._digests: dict[bytes, Digests] = {}  # relpath -> digests of its last upload, for verify

    def put(self, session, entry: Entry, logical: str, resource: str | None, checksum: bool,
            overwrite: bool) -> int:
        options: dict[str, str] = {}
        if resource:
            options["destRescName"] = resource
        if checksum:
            options["regChksum"] = ""
        digests = Digests(with_sha256=self.verify)
        if entry.size <= ops.SINGLE_BUFFER_LIMIT:
            data = self._get(entry, 0, None)
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
        try:
            check_etag(entry, digests, parts, written, self.source.settings.multipart_chunksize_mib)
        except IrodsOperationError:
            if not overwrite:  # never leave a corrupt object behind that a later pass would trust
                ops.remove_object(session, logical, to_trash=False)
            raise
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
