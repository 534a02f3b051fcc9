"""S3 source: lists ``/bucket/prefix`` in parallel and hands objects to sinks like files.

Prefixes are directories.  Every common prefix (``Delimiter="/"``) becomes a stealable work
item for the same engine that walks filesystems, and each one is listed page by page
(ListObjectsV2, continuation tokens) by whichever rank holds it.  Work items are plain bytes:

* ``L<head><directory><token>``: list one page of a prefix.  ``head`` packs the number of
  batches earlier pages of this prefix made and whether they went well (for sinks that track
  directory completion); an empty token is the first page.
* ``P<head><directory><token>``: the same page, but only to find subprefixes: a prefix an
  earlier run of the same pass finished (``sink.completed_earlier``) is not handed out again.
* ``O<dirlen><directory><records>``: entries already listed, at most ``files_per_task`` of
  them; each record packs kind (object or prefix), size, mtime, name and ETag.  Never pickle.

A rank that lists a page pushes its batches and the next page.  While the rank's queue is
short the next page goes on top, so this rank lists the following page at once while other
ranks steal the batches (the engine hands out the oldest items): a flat prefix of millions of
keys is listed back to back, as fast as S3 answers, and every rank ingests while pages arrive.
Once the queue is long the next page goes underneath, so the rank works off its own batches
first and memory stays bounded.

``EntryBatch.directory`` is the prefix relative to the source prefix (bytes, no trailing
slash, ``b""`` for the source prefix itself) and the names are the last key components, so
``--list`` and logical paths look exactly like a filesystem walk.  The stats are
``ObjectStat``: the attributes of ``os.stat_result`` that sinks read, plus the ETag.

Exclusion regexes ``re.match`` the path ``/bucket/key`` (no trailing slash for prefixes), the
same form as the source argument, like the filesystem walk matches absolute paths (the old
framework compiled them but never applied them to S3).  Objects are of type ``regular``,
prefixes of type ``directory``.

Keys ending in ``/`` (folder markers) are never objects, as in the old framework; a marker
does make its prefix show up, so an empty "folder" is an empty directory, as on a filesystem.

Differences from the old framework, on purpose: the source prefix names a directory
(``/bucket/dat`` lists ``dat/...`` and never ``data/...``), the region is used, and keys whose
path has an empty, ``.`` or ``..`` component (``a//b``, ``a/../b``) are reported as errors
instead of producing wrong paths.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    SSLError,
)

from hpcingest import logs
from hpcingest.sources import S3SourceError  # noqa: F401  (raised here, defined where no botocore is needed)
from hpcingest.engine import WorkContext
from hpcingest.exclusions import Exclusions
from hpcingest.profile import recorder
from hpcingest.records import EntryBatch, EntryType, WalkError
from hpcingest.sources.placement import Placement
from hpcingest.sources.posix import Sink

LIST_PAGE = b"L"[0]
DESCEND_PAGE = b"P"[0]
OBJECT_BATCH = b"O"[0]

PAGE_SIZE = 1000  # the most ListObjectsV2 returns per request
EAGER_LISTING_QUEUE = 1024  # below this many queued items a lister lists its next page first
MAX_ATTEMPTS = 10  # tries in all per request, for SlowDown/503/500 and connection errors (botocore "standard" mode)
CHECK_MAX_ATTEMPTS = 2  # the up-front check must fail fast on a wrong endpoint
CHECK_CONNECT_TIMEOUT_S = 5
PROXY_PASSWORD_VARIABLE = "HPCINGEST_S3_PROXY_PASSWORD"

_LIST_HEAD = struct.Struct("<IBH")  # batches made by earlier pages, all pages ok, directory length
_BATCH_HEAD = struct.Struct("<dH")  # time the page was asked for, directory length
_RECORD = struct.Struct("<BHHQd")  # kind, name length, etag length, size, mtime
_OBJECT, _PREFIX = 0, 1
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError, SSLError)
_BAD_COMPONENTS = frozenset((b"", b".", b".."))


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3, from the ``--s3_*`` options; the secret never shows in repr or str."""

    access_key: str
    secret_key: str = field(repr=False)
    endpoint_domain: str = "s3.amazonaws.com"
    region_name: str = "us-east-1"
    proxy_url: str | None = None  # never with a password (refused on the command line)
    insecure: bool = False  # plain http, as the old tool's ``secure=not --s3_insecure_connection``
    multipart_chunksize_mib: int = 8  # the uploader's part size, to recompute multipart ETags
    keypair_file: str | None = None  # named in error messages
    # for the user in proxy_url; from $HPCINGEST_S3_PROXY_PASSWORD or --s3_proxy_password_file,
    # so it is in no process's arguments, and never written anywhere
    proxy_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        logs.register_secret(self.secret_key)
        logs.register_secret(self.proxy_password)

    @classmethod
    def from_options(cls, args: Any) -> "S3Settings":
        """Settings from parsed ``--s3_*`` options (see ``cli.add_s3_options``); raises
        S3SourceError for a bad keypair file or option."""
        access, secret = read_keypair(args.s3_keypair)
        proxy_url, proxy_password = proxy_options(args)
        settings = cls(access, secret, endpoint_domain=args.s3_endpoint_domain, region_name=args.s3_region_name,
                       proxy_url=proxy_url, insecure=args.s3_insecure_connection,
                       multipart_chunksize_mib=args.s3_multipart_chunksize_in_mib, keypair_file=args.s3_keypair,
                       proxy_password=proxy_password)
        settings.validate()
        return settings

    def public_options(self) -> dict[str, Any]:
        """What a job record may keep: no key, no secret, no proxy password."""
        return {"s3_keypair": self.keypair_file, "s3_endpoint_domain": self.endpoint_domain,
                "s3_region_name": self.region_name, "s3_proxy_url": _redact(self.proxy_url or "") or None,
                "s3_insecure_connection": self.insecure,
                "s3_multipart_chunksize_in_mib": self.multipart_chunksize_mib}

    def validate(self) -> None:
        """Reject what boto3 would only trip over later, or silently take differently."""
        domain = self.endpoint_domain
        if not domain or "://" in domain or "/" in domain:
            raise S3SourceError(f"--s3_endpoint_domain {domain!r}: give HOST or HOST:PORT without a scheme "
                                "(https is used; --s3_insecure_connection for plain http)")
        if not self.region_name:
            raise S3SourceError("--s3_region_name must not be empty")
        if self.multipart_chunksize_mib < 1:
            raise S3SourceError("--s3_multipart_chunksize_in_mib must be at least 1")
        if self.proxy_url is not None and "://" not in self.proxy_url:
            # not echoed: a malformed URL may hold a password that _redact would not find
            raise S3SourceError("--s3_proxy_url: give a URL such as http://HOST:PORT")

    @property
    def proxy_endpoint(self) -> str | None:
        """The proxy URL botocore gets, with the password (in this process's memory only)."""
        if not self.proxy_url or not self.proxy_password:
            return self.proxy_url
        scheme, rest = self.proxy_url.split("://", 1)
        user, _, host = rest.rpartition("@")
        return f"{scheme}://{user}:{quote(self.proxy_password, safe='')}@{host}"

    @property
    def endpoint_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.endpoint_domain}"

    @property
    def addressing_style(self) -> str:
        """Like the old tool's MinIO client: virtual-hosted buckets on AWS (botocore's "auto"
        falls back to path style where TLS needs it), path style everywhere else, since
        MinIO, Ceph RGW and test servers seldom have wildcard DNS for bucket names."""
        host = self.endpoint_domain.rsplit(":", 1)[0] if "]" not in self.endpoint_domain else ""
        return "auto" if host == "amazonaws.com" or host.endswith(".amazonaws.com") else "path"


def proxy_options(args: Any) -> tuple[str | None, str | None]:
    """``--s3_proxy_url`` and the proxy password, from $HPCINGEST_S3_PROXY_PASSWORD or
    ``--s3_proxy_password_file``.  A password inside the URL is refused: every user of the
    host sees command lines (``ps``), and the old tool stored it in its job records too."""
    url = args.s3_proxy_url or None
    password_file = getattr(args, "s3_proxy_password_file", None)
    if url is None:
        if password_file:
            raise S3SourceError("--s3_proxy_password_file needs --s3_proxy_url")
        return None, None
    try:
        parts = urlsplit(url) if "://" in url else None
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        # not echoed: a malformed URL may hold a password
        raise S3SourceError("--s3_proxy_url: give a URL such as http://HOST:PORT or http://USER@HOST:PORT")
    if parts.password is not None:
        raise S3SourceError(
            "--s3_proxy_url must not contain a password: command lines are visible to every user of this "
            "host (`ps`), so this one already was (change it if that matters); give the URL as "
            f"http://USER@HOST:PORT and the password in ${PROXY_PASSWORD_VARIABLE} or in a file named by "
            "--s3_proxy_password_file")
    password = read_secret_file(password_file, "--s3_proxy_password_file") if password_file \
        else os.environ.get(PROXY_PASSWORD_VARIABLE) or None
    if password is not None and not parts.username:
        raise S3SourceError("a proxy password needs the proxy user in --s3_proxy_url: http://USER@HOST:PORT")
    return url, password


def read_secret_file(path: str, option: str) -> str:
    """The first line of a file holding one secret."""
    secret = read_text_file(path, option).split("\n", 1)[0].rstrip("\r")
    if not secret:
        raise S3SourceError(f"{option} {path!r}: the first line is empty")
    return secret


def read_text_file(path: str, option: str) -> str:
    """A small text file holding secrets; messages never quote its content."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except FileNotFoundError:
        raise S3SourceError(f"{option} {path!r}: no such file") from None
    except IsADirectoryError:
        raise S3SourceError(f"{option} {path!r} is a directory, not a file") from None
    except OSError as err:
        raise S3SourceError(f"{option} {path!r} cannot be read: {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise S3SourceError(f"{option} {path!r} is not a text file") from None


def read_keypair(path: str) -> tuple[str, str]:
    """The access key (line 1) and secret key (line 2) of the old framework's keypair file.

    Blank lines and surrounding whitespace (CRLF files) are ignored; lines after the second
    are too, as the old tool only read two."""
    lines = [line.strip() for line in read_text_file(path, "--s3_keypair").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise S3SourceError(f"--s3_keypair {path!r} must hold the access key on line 1 and the secret key "
                            f"on line 2 (found {len(lines)} non-empty line{'s' if len(lines) != 1 else ''})")
    return lines[0], lines[1]


def s3_client(settings: S3Settings, *, max_attempts: int = MAX_ATTEMPTS, connect_timeout: float = 10,
              read_timeout: float = 60) -> Any:
    """A boto3 S3 client for ``settings``, with its own session (the default one is shared).

    SigV4 signed for ``region_name``.  Throttling (503 SlowDown), 500s and dropped connections
    are retried by botocore's "standard" mode: exponential backoff with full jitter, which
    is what AWS recommends for SlowDown (the "adaptive" mode is still marked experimental).
    Checksums are only sent and checked where the API requires them, because third-party
    endpoints (older MinIO and Ceph) reject the CRC headers botocore adds by default."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region_name,
        signature_version="s3v4",
        s3={"addressing_style": settings.addressing_style},
        proxies={"http": settings.proxy_endpoint, "https": settings.proxy_endpoint} if settings.proxy_url else None,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region_name,
        aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key, config=config)


def parse_s3_source(src: str) -> tuple[str, str]:
    """``/bucket/prefix`` to ``(bucket, prefix)``; the prefix has no slash at either end
    (``""`` for the whole bucket).  The leading slash is optional."""
    bucket, _, prefix = src.strip("/").partition("/")
    if not bucket:
        raise S3SourceError(f"S3 source {src!r}: give /BUCKET or /BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def source_path(bucket: str, prefix: str) -> str:
    """The ``/bucket/prefix`` form used in messages, summaries and exclusion matching."""
    return f"/{bucket}/{prefix}" if prefix else f"/{bucket}"


def check_s3_source(settings: S3Settings, bucket: str, prefix: str, client: Any = None) -> None:
    """List one key of the source with few retries and a short connect timeout, so that bad
    credentials, a missing bucket or an unreachable endpoint stop the job before any rank
    starts, with a message that says which (and never contains the secret)."""
    if client is None:
        client = s3_client(settings, max_attempts=CHECK_MAX_ATTEMPTS, connect_timeout=CHECK_CONNECT_TIMEOUT_S,
                           read_timeout=30)
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=_list_prefix(prefix, ""), Delimiter="/", MaxKeys=1)
    except (ClientError, BotoCoreError) as err:
        raise S3SourceError(describe_s3_error(err, settings, bucket, prefix)) from None


def describe_s3_error(err: Exception, settings: S3Settings, bucket: str, prefix: str = "") -> str:
    """A message for a failed S3 call that says what to fix."""
    hint = _s3_error_hint(err, settings, bucket)
    if isinstance(err, _CONNECTION_ERRORS):
        return hint  # names the endpoint already
    return f"s3:/{source_path(bucket, prefix)} at {settings.endpoint_url}: {hint}"


def _s3_error_hint(err: Exception, settings: S3Settings, bucket: str) -> str:
    if isinstance(err, ClientError):
        code = _error_code(err)
        keypair = f" from {settings.keypair_file}" if settings.keypair_file else ""
        hints = {
            "InvalidAccessKeyId": f"the access key{keypair} (line 1) is not known to the endpoint",
            "SignatureDoesNotMatch": f"the secret key{keypair} (line 2) does not match the access key, "
                                     "or --s3_region_name is wrong",
            "InvalidToken": f"the credentials{keypair} are not valid",
            "ExpiredToken": f"the credentials{keypair} have expired",
            "AccessDenied": "the credentials are valid but may not list this bucket",
            "403": f"access denied: wrong credentials{keypair} or no permission to list this bucket",
            "NoSuchBucket": f"bucket {bucket!r} does not exist",
            "404": f"bucket {bucket!r} does not exist",
            "AuthorizationHeaderMalformed": f"the bucket is not in region {settings.region_name!r} "
                                            "(set --s3_region_name)",
            "PermanentRedirect": f"the bucket is not in region {settings.region_name!r} (set --s3_region_name)",
            "301": f"the bucket is not in region {settings.region_name!r} (set --s3_region_name)",
            "InvalidBucketName": f"{bucket!r} is not a valid bucket name",
            "SlowDown": "the endpoint is throttling requests (503 SlowDown) and retries did not get through",
            "407": "the proxy refused the credentials: check the user in --s3_proxy_url and the password in "
                   f"${PROXY_PASSWORD_VARIABLE} or --s3_proxy_password_file",
        }
        return f"{hints.get(code, _client_error_message(err))} ({code})"
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError)):
        return f"cannot reach the S3 endpoint {settings.endpoint_url}: {_redact(str(err))}"
    if isinstance(err, ProxyConnectionError):
        return f"cannot reach the S3 endpoint through the proxy {_redact(settings.proxy_url or '')}"
    if isinstance(err, SSLError):
        return (f"TLS with the S3 endpoint {settings.endpoint_url} failed: {_redact(str(err))} "
                "(--s3_insecure_connection uses plain http)")
    return _redact(str(err))


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """The ``os.stat_result`` attributes sinks read, for an S3 object or prefix (a prefix has
    no time of its own: 0).  Frozen and slotted: one per object, so it stays small."""

    st_mode: int
    st_size: int
    st_mtime: float
    etag: str = ""  # without quotes; "<md5>-<parts>" for multipart uploads

    @property
    def st_ctime(self) -> float:
        return self.st_mtime

    st_uid = 0
    st_gid = 0
    st_ino = 0
    st_dev = 0


OBJECT_MODE = stat.S_IFREG | 0o644
PREFIX_MODE = stat.S_IFDIR | 0o755
_PREFIX_STAT = ObjectStat(PREFIX_MODE, 0, 0.0)


@dataclass(frozen=True, slots=True)
class _Record:
    """One listed entry inside an ``O`` work item."""

    is_prefix: bool
    name: bytes
    size: int = 0
    mtime: float = 0.0
    etag: bytes = b""


def list_item(directory: bytes, token: str = "", batches: int = 0, ok: bool = True,
              descend_only: bool = False) -> bytes:
    return (b"P" if descend_only else b"L") + _LIST_HEAD.pack(batches, ok, len(directory)) + directory \
        + token.encode()


def _unpack_list_item(item: bytes) -> tuple[bytes, str, int, bool]:
    batches, ok, length = _LIST_HEAD.unpack_from(item, 1)
    start = 1 + _LIST_HEAD.size
    return item[start:start + length], item[start + length:].decode(), batches, bool(ok)


def batch_item(directory: bytes, records: list[_Record], listed_at: float) -> bytes:
    parts = [b"O", _BATCH_HEAD.pack(listed_at, len(directory)), directory]
    for r in records:
        head = _RECORD.pack(_PREFIX if r.is_prefix else _OBJECT, len(r.name), len(r.etag), r.size, r.mtime)
        parts += (head, r.name, r.etag)
    return b"".join(parts)


def _unpack_batch_item(item: bytes) -> tuple[bytes, Iterator[_Record], float]:
    listed_at, length = _BATCH_HEAD.unpack_from(item, 1)
    start = 1 + _BATCH_HEAD.size
    return item[start:start + length], _unpack_records(item, start + length), listed_at


def _unpack_records(item: bytes, offset: int) -> Iterator[_Record]:
    while offset < len(item):
        kind, name_len, etag_len, size, mtime = _RECORD.unpack_from(item, offset)
        offset += _RECORD.size
        name = item[offset:offset + name_len]
        offset += name_len
        yield _Record(kind == _PREFIX, name, size, mtime, item[offset:offset + etag_len])
        offset += etag_len


class S3Source:
    """Lists ``s3://bucket/prefix``; the same interface as PosixSource.

    ``client`` replaces the boto3 client (tests); otherwise each rank makes its own on first
    use, since clients are neither picklable nor worth making on ranks that never list."""

    def __init__(self, settings: S3Settings, bucket: str, prefix: str, files_per_task: int = 50,
                 exclusions: Exclusions | None = None, *, page_size: int = PAGE_SIZE, client: Any = None) -> None:
        if files_per_task < 1:
            raise ValueError("files_per_task must be at least 1")
        logs.register_secret(settings.secret_key)  # settings arrive pickled on most ranks
        self.settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = os.fsencode(source_path(bucket, self.prefix))
        self.files_per_task = files_per_task
        self.exclusions = exclusions or Exclusions()
        self.page_size = page_size
        self._client = client
        self._placement = Placement()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.settings)
        return self._client

    def close(self) -> None:
        """Nothing to let go: the client outlives the walk (S3Content reads through it)."""

    def object_key(self, relpath: bytes) -> str:
        """The S3 key of an entry, from its path relative to the source prefix."""
        rel = os.fsdecode(relpath)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def physical_path(self, relpath: bytes) -> str:
        """``/bucket/key``: the old framework's physical path, the S3 resource vault layout."""
        return f"/{self.bucket}/{self.object_key(relpath)}"

    def initial_items(self) -> list[bytes]:
        return [list_item(b"")]

    def process(self, item: bytes, ctx: WorkContext, sink: Sink) -> None:
        kind = item[0]
        if kind in (LIST_PAGE, DESCEND_PAGE):
            directory, token, batches, ok = _unpack_list_item(item)
            with recorder.current.span("list"):
                self._list_page(directory, token, batches, ok, kind == DESCEND_PAGE, ctx, sink)
        elif kind == OBJECT_BATCH:
            directory, records, listed_at = _unpack_batch_item(item)
            with recorder.current.span("stat"):
                self._emit_batch(directory, records, listed_at, ctx, sink)
        else:
            raise ValueError(f"unknown S3 work item kind {kind!r}")

    # -- listing ------------------------------------------------------------------------
    def _list_page(self, directory: bytes, token: str, batches: int, ok: bool, descend_only: bool,
                   ctx: WorkContext, sink: Sink) -> None:
        if not token and not descend_only:
            completed = getattr(sink, "completed_earlier", None)
            descend_only = completed is not None and completed(directory, ctx)
            wants_listing = getattr(sink, "wants_listing", None)
            if not descend_only and wants_listing is not None and wants_listing(directory):
                self._list_whole_prefix(directory, ctx, sink)
                return
        list_prefix = _list_prefix(self.prefix, os.fsdecode(directory))
        listed_at = time.time()
        page = self._page(directory, list_prefix, token, sink)
        if page is None:
            if not descend_only:
                _listed(sink, directory, batches, False, ctx)
            return
        records, ok = self._records(directory, list_prefix, page, descend_only, sink, ok)
        next_token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        if descend_only:
            for record in records:
                child = _join(directory, record.name)
                if not self.exclusions.excludes(EntryType.DIRECTORY, self._abspath(child)):
                    ctx.push(list_item(child))
            if next_token:
                ctx.push(list_item(directory, next_token, descend_only=True))
            return
        eager = _queued(ctx) < EAGER_LISTING_QUEUE
        if next_token and not eager:
            # the batch count travels with the page: count this page's batches before pushing
            ctx.push(list_item(directory, next_token, batches + self._batch_count(records), ok))
        batches += self._push_batches(directory, records, listed_at, ctx)
        if next_token and eager:
            ctx.push(list_item(directory, next_token, batches, ok))
        if not next_token:
            _listed(sink, directory, batches, ok, ctx)

    def _list_whole_prefix(self, directory: bytes, ctx: WorkContext, sink: Sink) -> None:
        """Every page of one prefix here, for a sink that sweeps deletions: only a complete
        listing may decide what is gone.  The batches are still pushed (and stolen) as pages
        arrive; only the listing itself stays on this rank, as it is serial in S3 anyway."""
        list_prefix = _list_prefix(self.prefix, os.fsdecode(directory))
        token, batches, ok, names = "", 0, True, []
        while True:
            listed_at = time.time()
            page = self._page(directory, list_prefix, token, sink)
            if page is None:
                _listed(sink, directory, batches, False, ctx)
                return
            records, ok = self._records(directory, list_prefix, page, False, sink, ok)
            names.extend(record.name for record in records)
            batches += self._push_batches(directory, records, listed_at, ctx)
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
            ctx.poll()
        if ok:
            sink.directory_names(directory, names, ctx)
        _listed(sink, directory, batches, ok, ctx)

    def _page(self, directory: bytes, list_prefix: str, token: str, sink: Sink) -> dict | None:
        """One ListObjectsV2 page, or None when it failed (reported to the sink)."""
        request = {"Bucket": self.bucket, "Prefix": list_prefix, "Delimiter": "/", "MaxKeys": self.page_size}
        if token:
            request["ContinuationToken"] = token
        try:
            return self.client.list_objects_v2(**request)
        except (ClientError, BotoCoreError) as err:
            sink.error(self._walk_error(directory, err))
            return None

    def _batch_count(self, records: list) -> int:
        return -(-len(records) // self.files_per_task)

    def _push_batches(self, directory: bytes, records: list, listed_at: float, ctx: WorkContext) -> int:
        """The page's records as batch items, each carrying the time the page was asked for:
        what a sink records as their sync time, however long the item waits to be taken."""
        step = self.files_per_task
        for i in range(0, len(records), step):
            ctx.push(batch_item(directory, records[i:i + step], listed_at))
        return self._batch_count(records)

    def _records(self, directory: bytes, list_prefix: str, page: dict, prefixes_only: bool, sink: Sink,
                 ok: bool) -> tuple[list[_Record], bool]:
        """The page's entries (only its prefixes when ``prefixes_only``); folder markers are
        skipped and keys that cannot be paths are reported.  Returns them and the ok flag."""
        cut = len(list_prefix)
        records = []
        if not prefixes_only:
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                name = os.fsencode(key[cut:])
                if name in _BAD_COMPONENTS:
                    self._bad_key(directory, name, key, sink)
                    ok = False
                    continue
                records.append(_Record(False, name, obj["Size"], obj["LastModified"].timestamp(),
                                       obj.get("ETag", "").strip('"').encode("ascii", "replace")))
        for common in page.get("CommonPrefixes", ()):
            key = common["Prefix"]
            name = os.fsencode(key[cut:-1])
            if name in _BAD_COMPONENTS:
                self._bad_key(directory, name, key, sink)
                ok = False
                continue
            records.append(_Record(True, name))
        return records, ok

    @staticmethod
    def _bad_key(directory: bytes, name: bytes, key: str, sink: Sink) -> None:
        sink.error(WalkError(_join(directory, name), "list_objects", errno.EINVAL,
                             f"key {key!r} has an empty, '.' or '..' path component; skipped"))

    # -- batches ------------------------------------------------------------------------
    def _emit_batch(self, directory: bytes, records: Iterator[_Record], listed_at: float, ctx: WorkContext,
                    sink: Sink) -> None:
        records = list(records)
        ctx.throttle(len(records))
        batch = EntryBatch(directory, statted_at=listed_at)
        subdirectories: list[bytes] = []
        exclusions = self.exclusions
        check = exclusions.needs_paths or bool(exclusions.types)
        for record in records:
            entry_type = EntryType.DIRECTORY if record.is_prefix else EntryType.REGULAR
            if check and exclusions.excludes(entry_type, self._abspath(_join(directory, record.name))):
                batch.excluded += 1
                continue
            batch.names.append(record.name)
            if record.is_prefix:
                batch.stats.append(_PREFIX_STAT)
                subdirectories.append(_join(directory, record.name))
            else:
                batch.stats.append(ObjectStat(OBJECT_MODE, record.size, record.mtime, record.etag.decode("ascii")))
        sink.consume(batch, ctx)
        self._placement.push_listings(subdirectories, list_item, ctx, sink)

    def _abspath(self, relpath: bytes) -> bytes:
        return self.root + b"/" + relpath

    def _walk_error(self, directory: bytes, err: Exception) -> WalkError:
        code = _error_code(err) if isinstance(err, ClientError) else ""
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            number = errno.EACCES
        elif code in ("NoSuchBucket", "404"):
            number = errno.ENOENT
        else:
            number = errno.EIO
        return WalkError(directory, "list_objects", number, _s3_error_hint(err, self.settings, self.bucket))


def _list_prefix(source_prefix: str, directory: str) -> str:
    """The S3 prefix that lists ``directory`` (relative to the source prefix) one level deep."""
    path = f"{source_prefix}/{directory}" if source_prefix and directory else source_prefix or directory
    return path + "/" if path else ""


def _join(directory: bytes, name: bytes) -> bytes:
    return directory + b"/" + name if directory else name


def _queued(ctx: WorkContext) -> int:
    queued = getattr(ctx, "queued", None)
    return queued() if queued is not None else 0


def _listed(sink: Sink, directory: bytes, batches: int, ok: bool, ctx: WorkContext) -> None:
    """Tell a sink that tracks directory completion how many batches a prefix made in all."""
    listed = getattr(sink, "listed", None)
    if listed is not None:
        listed(directory, batches, ok, ctx)


def _error_code(err: ClientError) -> str:
    error = err.response.get("Error", {})
    return str(error.get("Code") or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))


def _client_error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message") or err)


def _redact(text: str) -> str:
    """Drop ``user:password@`` from URLs in a message (proxy URLs may carry credentials)."""
    return re.sub(r"(\w+://)[^/@\s\"']+@", r"\1***@", text)

