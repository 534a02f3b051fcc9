"""The S3 source in one process against the moto server: settings, checks, work items, listing.

The engine is replaced by a LIFO list (what a single rank does), so the order of pushes and
the sink hooks can be observed directly.  The MPI scans are in test_s3.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import stat
import time
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from hpcingest.cli import build_parser
from hpcingest.exclusions import Exclusions
from hpcingest.records import EntryBatch, WalkError
from hpcingest.sources import s3
from hpcingest.sources.s3 import (
    ObjectStat,
    S3Settings,
    S3Source,
    S3SourceError,
    check_s3_source,
    parse_s3_source,
    read_keypair,
    s3_client,
)
from tests.s3server import SlowDownProxy, free_port, write_keypair

BUCKET = "unit"
SECRET = "s3cr3t/Unit+Secret"


class FakeContext:
    """A single rank's queue: ``run`` pops the newest item first, like the engine."""

    rank, size = 0, 1
    throttling = False

    def __init__(self, already_queued: int = 0) -> None:
        self.items: list[bytes] = []
        self.already_queued = already_queued

    def push(self, item: bytes) -> None:
        self.items.append(item)

    push_local = push

    def push_to(self, rank: int, *items: bytes) -> None:
        self.items.extend(items)  # one rank: work placed anywhere lands here, as in the engine

    def poll(self) -> None:
        pass

    def throttle(self, units: int) -> None:
        self.throttled = getattr(self, "throttled", 0) + units

    def queued(self) -> int:
        return len(self.items) + self.already_queued

    def run(self, source: S3Source, sink) -> None:
        while self.items:
            source.process(self.items.pop(), self, sink)


@dataclass
class RecordingSink:
    """Keeps every entry, error and hook call, in order."""

    completed: set[bytes] = field(default_factory=set)
    entries: dict[bytes, ObjectStat] = field(default_factory=dict)
    batches: list[EntryBatch] = field(default_factory=list)
    errors: list[WalkError] = field(default_factory=list)
    listed_calls: list[tuple[bytes, int, bool]] = field(default_factory=list)
    events: list[tuple[str, bytes]] = field(default_factory=list)

    def consume(self, batch: EntryBatch, ctx) -> None:
        self.batches.append(batch)
        for name, st in zip(batch.names, batch.stats):
            self.entries[batch.relpath(name)] = st
        self.events.append(("consume", batch.directory))

    def error(self, error: WalkError) -> None:
        self.errors.append(error)

    def listed(self, directory: bytes, batches: int, ok: bool, ctx) -> None:
        self.listed_calls.append((directory, batches, ok))

    def completed_earlier(self, directory: bytes, ctx) -> bool:
        return directory in self.completed


KEYS = {
    "data/a.txt": b"alpha",
    "data/d1/b.bin": b"b" * 100,
    "data/d1/d2/c": b"",
    "data/d1/d2/": b"",  # folder marker of a prefix that has keys
    "data/empty/": b"",  # folder marker of an otherwise empty prefix
    "data/": b"",  # marker of the source prefix itself
    "data/skip/x": b"x",
    "data/caf\u00e9/\u6587\u4ef6": "unicode".encode(),
    "data2/not-under-data": b"no",  # shares the string prefix "data", not the directory
    "dat": b"no",
    "top-level": b"t",
}


@pytest.fixture(scope="module")
def server(s3_server):
    s3_server.create_bucket(BUCKET)
    s3_server.put_objects(BUCKET, KEYS)
    return s3_server


@pytest.fixture(scope="module")
def settings(server) -> S3Settings:
    access, secret = read_keypair(server.keypair)
    return S3Settings(access, secret, endpoint_domain=server.endpoint, insecure=True, keypair_file=server.keypair)


def walk(settings: S3Settings, prefix: str = "data", sink=None, **kwargs) -> RecordingSink:
    sink = sink or RecordingSink()
    source = S3Source(settings, BUCKET, prefix, **kwargs)
    ctx = FakeContext()
    ctx.items.extend(source.initial_items())
    ctx.run(source, sink)
    return sink


# -- keypair and settings --------------------------------------------------------------------
@pytest.mark.parametrize("content, found", [(b"", 0), (b"\n\n  \n", 0), (b"AKIAONLY\n", 1)])
def test_keypair_needs_two_lines(tmp_path, content, found):
    path = tmp_path / "kp"
    path.write_bytes(content)
    with pytest.raises(S3SourceError, match=f"line 1 and the secret key on line 2 .found {found} non-empty"):
        read_keypair(str(path))


def test_keypair_tolerates_crlf_blank_lines_and_extra_lines(tmp_path):
    path = tmp_path / "kp"
    path.write_bytes(b"\r\n AKIA1 \r\n\r\n" + SECRET.encode() + b"\r\nignored\n")
    assert read_keypair(str(path)) == ("AKIA1", SECRET)


def test_keypair_file_problems_are_named_without_content(tmp_path):
    with pytest.raises(S3SourceError, match="no such file"):
        read_keypair(str(tmp_path / "missing"))
    with pytest.raises(S3SourceError, match="is a directory"):
        read_keypair(str(tmp_path))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    with pytest.raises(S3SourceError, match="not a text file") as info:
        read_keypair(str(binary))
    assert SECRET not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_keypair(tmp_path):
    path = tmp_path / "kp"
    write_keypair(str(path), "AKIA1", SECRET)
    os.chmod(path, 0)
    with pytest.raises(S3SourceError, match="cannot be read: Permission denied"):
        read_keypair(str(path))


def test_the_secret_never_shows_in_repr_or_str():
    settings = S3Settings("AKIA1", SECRET, proxy_url="http://proxy:3128")
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert "AKIA1" in repr(settings)


def options(tmp_path, *extra: str):
    keypair = write_keypair(str(tmp_path / "kp"), "AKIA1", SECRET)
    return build_parser().parse_args(["scan", "/b/p", "--s3_keypair", keypair, *extra])


def test_settings_from_the_command_line(tmp_path):
    args = options(tmp_path, "--s3_endpoint_domain", "minio.example:9000", "--s3_region_name", "eu-west-3",
                   "--s3_proxy_url", "http://proxy:3128", "--s3_insecure_connection",
                   "--s3_multipart_chunksize_in_mib", "16")
    settings = S3Settings.from_options(args)
    assert (settings.access_key, settings.secret_key) == ("AKIA1", SECRET)
    assert settings.endpoint_url == "http://minio.example:9000"
    assert (settings.region_name, settings.proxy_url, settings.multipart_chunksize_mib) == \
        ("eu-west-3", "http://proxy:3128", 16)
    defaults = S3Settings.from_options(options(tmp_path))  # the old framework's defaults
    assert defaults.endpoint_url == "https://s3.amazonaws.com"
    assert (defaults.region_name, defaults.proxy_url, defaults.multipart_chunksize_mib) == ("us-east-1", None, 8)


@pytest.mark.parametrize("extra, message", [
    (["--s3_endpoint_domain", "http://minio:9000"], "without a scheme"),
    (["--s3_endpoint_domain", "minio:9000/path"], "without a scheme"),
    (["--s3_multipart_chunksize_in_mib", "0"], "at least 1"),
    (["--s3_region_name", ""], "must not be empty"),
    (["--s3_proxy_url", "user:pw@proxy"], "give a URL"),
])
def test_bad_settings(tmp_path, extra, message):
    with pytest.raises(S3SourceError, match=message) as info:
        S3Settings.from_options(options(tmp_path, *extra))
    assert "pw" not in str(info.value)


def test_the_proxy_password_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCINGEST_S3_PROXY_PASSWORD", "p@ss/w:rd")
    settings = S3Settings.from_options(options(tmp_path, "--s3_proxy_url", "http://me@proxy:3128"))
    assert settings.proxy_url == "http://me@proxy:3128" and "p@ss" not in repr(settings)
    assert "p@ss" not in json.dumps(settings.public_options())
    assert s3_client(settings).meta.config.proxies["https"] == "http://me:p%40ss%2Fw%3Ard@proxy:3128"
    (tmp_path / "pw").write_text("from-the-file\n")
    from_file = S3Settings.from_options(options(tmp_path, "--s3_proxy_url", "http://me@proxy:3128",
                                                "--s3_proxy_password_file", str(tmp_path / "pw")))
    assert from_file.proxy_password == "from-the-file"  # the file wins over the variable
    monkeypatch.delenv("HPCINGEST_S3_PROXY_PASSWORD")
    without = S3Settings.from_options(options(tmp_path, "--s3_proxy_url", "http://proxy:3128"))
    assert without.proxy_endpoint == "http://proxy:3128"


@pytest.mark.parametrize("extra, message", [
    (["--s3_proxy_url", "http://me:pw@proxy:3128"], "must not contain a password.*HPCINGEST_S3_PROXY_PASSWORD"),
    (["--s3_proxy_url", "http://me:@proxy:3128"], "must not contain a password"),
    (["--s3_proxy_url", "http://[pw"], "give a URL"),
    (["--s3_proxy_password_file", "/nonexistent/pw"], "needs --s3_proxy_url"),
    (["--s3_proxy_url", "http://proxy:3128", "--s3_proxy_password_file", "/nonexistent/pw"], "no such file"),
])
def test_bad_proxy_settings(tmp_path, extra, message):
    with pytest.raises(S3SourceError, match=message) as info:
        S3Settings.from_options(options(tmp_path, *extra))
    assert "pw@" not in str(info.value) and ":pw" not in str(info.value)


def test_a_proxy_password_needs_a_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCINGEST_S3_PROXY_PASSWORD", "secret-proxy")
    with pytest.raises(S3SourceError, match="needs the proxy user"):
        S3Settings.from_options(options(tmp_path, "--s3_proxy_url", "http://proxy:3128"))


@pytest.mark.parametrize("src, expected", [
    ("/bucket", ("bucket", "")),
    ("/bucket/", ("bucket", "")),
    ("/bucket/a/b/", ("bucket", "a/b")),
    ("bucket/a", ("bucket", "a")),
])
def test_parse_source(src, expected):
    assert parse_s3_source(src) == expected


@pytest.mark.parametrize("src", ["", "/", "//"])
def test_parse_source_needs_a_bucket(src):
    with pytest.raises(S3SourceError, match="give /BUCKET"):
        parse_s3_source(src)


@pytest.mark.parametrize("domain, style", [
    ("s3.amazonaws.com", "auto"), ("s3.eu-west-3.amazonaws.com", "auto"),
    ("minio.example:9000", "path"), ("127.0.0.1:9000", "path"), ("[::1]:9000", "path"),
    ("amazonaws.com.evil.example", "path"),
])
def test_addressing_style(domain, style):
    assert S3Settings("a", "s", endpoint_domain=domain).addressing_style == style


def test_client_uses_region_endpoint_proxy_and_retries():
    settings = S3Settings("AKIA1", SECRET, endpoint_domain="minio.example:9000", region_name="eu-west-3",
                          proxy_url="http://proxy:3128")
    client = s3_client(settings)
    config = client.meta.config
    assert client.meta.endpoint_url == "https://minio.example:9000"
    assert client.meta.region_name == "eu-west-3"
    assert config.signature_version == "s3v4"
    assert config.s3["addressing_style"] == "path"
    assert config.proxies == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert config.retries == {"mode": "standard", "total_max_attempts": s3.MAX_ATTEMPTS}


def test_requests_are_signed_for_the_region(server):
    """The old tool never passed the region; the SigV4 scope must carry it."""
    access, secret = read_keypair(server.keypair)
    client = s3_client(S3Settings(access, secret, endpoint_domain=server.endpoint, region_name="eu-west-3",
                                  insecure=True))
    scopes = []
    client.meta.events.register("before-send.s3", lambda request, **_: scopes.append(
        request.headers["Authorization"].decode()))
    try:
        client.list_objects_v2(Bucket=BUCKET, MaxKeys=1)
    except ClientError:
        pass  # whether moto minds the region does not matter here
    assert "/eu-west-3/s3/aws4_request" in scopes[0]


# -- the up-front check ----------------------------------------------------------------------
def test_check_accepts_a_good_source(settings):
    check_s3_source(settings, BUCKET, "data")
    check_s3_source(settings, BUCKET, "no/such/prefix")  # prefixes are not objects: an empty listing


def test_check_rejects_a_wrong_secret(settings):
    wrong = S3Settings(settings.access_key, SECRET, endpoint_domain=settings.endpoint_domain, insecure=True,
                       keypair_file="kp")
    with pytest.raises(S3SourceError, match=r"secret key from kp \(line 2\) does not match.*SignatureDoesNotMatch") \
            as info:
        check_s3_source(wrong, BUCKET, "data")
    assert SECRET not in str(info.value)


def test_check_rejects_an_unknown_access_key(settings):
    wrong = S3Settings("AKIANOSUCHKEY0000000", SECRET, endpoint_domain=settings.endpoint_domain, insecure=True)
    with pytest.raises(S3SourceError, match=r"access key \(line 1\) is not known.*InvalidAccessKeyId"):
        check_s3_source(wrong, BUCKET, "data")


def test_check_rejects_a_user_without_permission(server, settings):
    access, secret = read_keypair(server.new_keypair("no-permissions-unit", policy=None))
    denied = S3Settings(access, secret, endpoint_domain=settings.endpoint_domain, insecure=True)
    with pytest.raises(S3SourceError, match=r"may not list this bucket \(AccessDenied\)"):
        check_s3_source(denied, BUCKET, "data")


def test_check_rejects_a_missing_bucket(settings):
    with pytest.raises(S3SourceError, match=r"s3://no-such-bucket/p at http://.*bucket 'no-such-bucket' does not "
                                            r"exist \(NoSuchBucket\)"):
        check_s3_source(settings, "no-such-bucket", "p")


def test_check_fails_fast_on_an_unreachable_endpoint(settings):
    closed = S3Settings("AKIA1", SECRET, endpoint_domain=f"127.0.0.1:{free_port()}", insecure=True)
    started = time.monotonic()
    with pytest.raises(S3SourceError, match="cannot reach the S3 endpoint http://127.0.0.1:") as info:
        check_s3_source(closed, BUCKET, "data")
    assert time.monotonic() - started < 10
    assert SECRET not in str(info.value)


def test_check_names_tls_and_proxy_failures(settings):
    tls = S3Settings(settings.access_key, settings.secret_key, endpoint_domain=settings.endpoint_domain)
    with pytest.raises(S3SourceError, match=r"TLS with the S3 endpoint https://127.0.0.1:\d+ failed.*"
                                            r"--s3_insecure_connection uses plain http"):
        check_s3_source(tls, BUCKET, "data")
    proxied = S3Settings(settings.access_key, settings.secret_key, endpoint_domain=settings.endpoint_domain,
                         insecure=True, proxy_url=f"http://user:pw@127.0.0.1:{free_port()}")
    with pytest.raises(S3SourceError, match=r"through the proxy http://\*\*\*@127.0.0.1") as info:
        check_s3_source(proxied, BUCKET, "data")
    assert "pw" not in str(info.value)


def test_throttling_is_retried(server, settings):
    with SlowDownProxy(every=1) as proxy:  # every first attempt gets 503 SlowDown
        throttled = S3Settings(settings.access_key, settings.secret_key, endpoint_domain=settings.endpoint_domain,
                               insecure=True, proxy_url=proxy.url)
        check_s3_source(throttled, BUCKET, "data")
        sink = walk(throttled, page_size=2)
    assert proxy.throttled >= 5 and proxy.retried == proxy.throttled
    assert sink.entries.keys() == walk(settings).entries.keys()


# -- work items --------------------------------------------------------------------------------
def test_work_items_round_trip_without_pickle():
    records = [s3._Record(False, "f\u00e9\0x".encode(), 1 << 40, 1700000000.25, b"d41d8cd98f00b204e9800998ecf8427e-3"),
               s3._Record(True, b"sub")]
    item = s3.batch_item(b"a/b", records, 1700000001.125)
    assert item[:1] == b"O"
    directory, unpacked, listed_at = s3._unpack_batch_item(item)
    assert (directory, list(unpacked), listed_at) == (b"a/b", records, 1700000001.125)
    item = s3.list_item(b"dir/\xe9", "token+/=", batches=7, ok=False)
    assert item[:1] == b"L"
    assert s3._unpack_list_item(item) == (b"dir/\xe9", "token+/=", 7, False)
    assert s3.list_item(b"", descend_only=True)[:1] == b"P"


def test_a_batch_carries_the_time_its_page_was_asked_for(settings):
    """However long a batch item waits before a rank takes it, its sync time is that of the
    listing: an object rewritten after the listing must show on the next pass."""
    source, ctx, sink = S3Source(settings, BUCKET, "data", files_per_task=1), FakeContext(), RecordingSink()
    before = time.time()
    source.process(s3.list_item(b""), ctx, sink)
    after = time.time()
    time.sleep(0.05)  # the batch items wait in the queue
    ctx.run(source, sink)
    top = [b for b in sink.batches if b.directory == b""]
    assert top and all(before <= b.statted_at <= after for b in top)


def test_object_stat_reads_like_a_stat_result():
    st = ObjectStat(s3.OBJECT_MODE, 5, 12.5, "abc")
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o644
    assert (st.st_size, st.st_mtime, st.st_ctime, st.st_uid, st.st_gid, st.st_ino, st.etag) == (5, 12.5, 12.5, 0, 0, 0,
                                                                                                "abc")
    assert pickle.loads(pickle.dumps(st)) == st
    with pytest.raises(AttributeError):
        st.st_size = 6  # frozen


# -- listing -----------------------------------------------------------------------------------
def expected_entries(prefix: str) -> dict[bytes, bool]:
    """relpath -> is a directory, derived from KEYS for a source prefix."""
    entries: dict[bytes, bool] = {}
    cut = len(prefix) + 1 if prefix else 0
    for key in KEYS:
        if prefix and not key.startswith(prefix + "/"):
            continue
        parts = key[cut:].split("/")
        for i in range(1, len(parts)):
            entries[os.fsencode("/".join(parts[:i]))] = True
        if parts[-1]:
            entries[os.fsencode(key[cut:])] = False
    return entries


@pytest.mark.parametrize("prefix", ["data", "data/d1", ""])
@pytest.mark.parametrize("files_per_task, page_size", [(50, 1000), (1, 1), (2, 3)])
def test_walk_finds_every_entry_with_its_stats(server, settings, prefix, files_per_task, page_size):
    sink = walk(settings, prefix, files_per_task=files_per_task, page_size=page_size)
    expected = expected_entries(prefix)
    assert {k: stat.S_ISDIR(v.st_mode) for k, v in sink.entries.items()} == expected
    assert not sink.errors
    client = server.client()
    for relpath, st in sink.entries.items():
        if stat.S_ISDIR(st.st_mode):
            continue
        key = f"{prefix}/{os.fsdecode(relpath)}" if prefix else os.fsdecode(relpath)
        head = client.head_object(Bucket=BUCKET, Key=key)
        assert st.st_size == len(KEYS[key]) == head["ContentLength"]
        assert st.st_mtime == head["LastModified"].timestamp()
        assert st.etag == hashlib.md5(KEYS[key]).hexdigest()
        assert all(len(b) <= files_per_task for b in sink.batches)


def test_source_names_and_paths(settings):
    source = S3Source(settings, BUCKET, "/data/")
    assert source.root == b"/unit/data"
    assert source.object_key(b"d1/b.bin") == "data/d1/b.bin"
    assert source.physical_path(b"d1/b.bin") == "/unit/data/d1/b.bin"
    assert S3Source(settings, BUCKET, "").physical_path(b"top-level") == "/unit/top-level"


def test_a_prefix_is_consumed_before_its_children_are_listed(settings):
    sink = walk(settings, files_per_task=1, page_size=1)
    first_consumed = {}
    for i, (_, directory) in enumerate(sink.events):
        first_consumed.setdefault(directory, i)
    # every batch of d1/d2 comes after the batch that held the entry d1/d2
    holder = next(i for i, b in enumerate(sink.batches) if b.directory == b"d1" and b"d2" in b.names)
    assert first_consumed[b"d1/d2"] > holder


def test_listed_reports_each_prefix_once_with_all_its_batches(settings):
    sink = walk(settings, files_per_task=1, page_size=1)
    counts = {}
    for batch in sink.batches:
        counts[batch.directory] = counts.get(batch.directory, 0) + 1
    calls = {d: (n, ok) for d, n, ok in sink.listed_calls}
    assert len(calls) == len(sink.listed_calls), "one call per prefix"
    assert calls == {d: (counts.get(d, 0), True) for d in calls}
    assert set(calls) == {b""} | {r for r, is_dir in expected_entries("data").items() if is_dir}


def test_next_page_goes_on_top_while_the_queue_is_short(settings):
    source = S3Source(settings, BUCKET, "data", files_per_task=1, page_size=3)  # data/ (marker), a.txt, café/
    short, long = FakeContext(), FakeContext(already_queued=s3.EAGER_LISTING_QUEUE)
    for ctx in (short, long):
        source.process(s3.list_item(b""), ctx, RecordingSink())
    assert [i[:1] for i in short.items] == [b"O", b"O", b"L"]  # this rank lists on at once
    assert [i[:1] for i in long.items] == [b"L", b"O", b"O"]  # this rank works off its batches first


def test_resumed_prefixes_are_only_descended(settings):
    sink = RecordingSink(completed={b"d1"})
    walk(settings, sink=sink, page_size=1)
    assert not [b for b in sink.batches if b.directory == b"d1"]
    assert b"d1/d2/c" in sink.entries  # d2 itself was not completed
    assert b"d1" not in {d for d, _, _ in sink.listed_calls}


def test_exclusions_match_bucket_and_key(settings):
    rules = Exclusions.parse(None, [r"/unit/data/d1/.*\.bin$"], [r"/unit/data/skip$"])
    sink = walk(settings, exclusions=rules)
    assert b"d1/b.bin" not in sink.entries and b"skip" not in sink.entries and b"skip/x" not in sink.entries
    assert b"a.txt" in sink.entries and b"d1/d2/c" in sink.entries
    assert sum(b.excluded for b in sink.batches) == 2
    by_type = walk(settings, exclusions=Exclusions.parse(["regular"], None, None))
    assert by_type.entries and all(stat.S_ISDIR(s.st_mode) for s in by_type.entries.values())


def test_keys_that_cannot_be_paths_are_reported(server, settings):
    bucket = "unit-bad-keys"
    server.create_bucket(bucket)
    server.put_objects(bucket, {"p/ok": b"1", "p/a//b": b"2", "p/./c": b"3", "p/d/..": b"4"})
    sink = RecordingSink()
    source = S3Source(settings, bucket, "p")
    ctx = FakeContext()
    ctx.items.extend(source.initial_items())
    ctx.run(source, sink)
    assert set(sink.entries) == {b"ok", b"a", b"d"}
    assert sorted(e.relpath for e in sink.errors) == [b".", b"a/", b"d/.."]
    assert {e.errno for e in sink.errors} == {errno.EINVAL}
    assert (b"a", 0, False) in sink.listed_calls


class DenyingClient:
    """The real client, except that listing one prefix is refused like S3 does."""

    def __init__(self, client, denied_prefix: str) -> None:
        self.client, self.denied_prefix = client, denied_prefix

    def list_objects_v2(self, **request):
        if request["Prefix"] == self.denied_prefix:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "ListObjectsV2")
        return self.client.list_objects_v2(**request)


def test_a_prefix_that_cannot_be_listed_is_an_error_and_the_walk_goes_on(settings):
    sink = RecordingSink()
    source = S3Source(settings, BUCKET, "data", client=DenyingClient(s3_client(settings), "data/d1/"))
    ctx = FakeContext()
    ctx.items.extend(source.initial_items())
    ctx.run(source, sink)
    assert [(e.relpath, e.operation, e.errno) for e in sink.errors] == [(b"d1", "list_objects", errno.EACCES)]
    assert "AccessDenied" in sink.errors[0].message
    assert b"d1" in sink.entries and b"a.txt" in sink.entries and b"d1/b.bin" not in sink.entries
    assert (b"d1", 0, False) in sink.listed_calls
    assert sink.errors[0].describe(source.root).startswith("list_objects '/unit/data/d1': [Errno 13]")


def test_unknown_item_kind(settings):
    with pytest.raises(ValueError, match="unknown S3 work item"):
        S3Source(settings, BUCKET, "data").process(b"Zjunk", FakeContext(), RecordingSink())


def test_files_per_task_must_be_positive(settings):
    with pytest.raises(ValueError):
        S3Source(settings, BUCKET, "data", files_per_task=0)


def test_settings_survive_the_broadcast(settings):
    """Rank 0 checks and broadcasts the settings (pickle), each rank makes its own client."""
    source = S3Source(pickle.loads(pickle.dumps(settings)), BUCKET, "data")
    assert source.client.list_objects_v2(Bucket=BUCKET, MaxKeys=1)["KeyCount"] == 1
