"""Ingest from S3 (a real moto server on loopback) into the zone: register at /bucket/key, PUT
streamed without local copies (over 32 MiB too), updates between passes, ETag checks, excludes,
bad credentials, and the delete modes."""

from __future__ import annotations

import itertools
import json
import os
import time

import pytest

from tests.ingest.conftest import HANDLERS, catalog, start
from tests.ingest.test_register import ok
from tests.launchers import Launcher
from tests.s3server import SlowDownProxy

COUNTING = os.path.join(HANDLERS, "counting.py")
FOUR = Launcher("mpiexec", 4)
MIB = 1 << 20
_buckets = itertools.count()

KEYS = {
    "data/a.txt": b"alpha",
    "data/sub/b.txt": b"bravo" * 100,
    "data/sub/deeper/c.bin": os.urandom(3000),
    "data/empty": b"",
    "data/folder/": b"",  # a folder marker: an empty collection, never an object
    "other/x": b"outside the prefix",
}


@pytest.fixture
def bucket(s3_server):
    name = f"ingest{os.getpid()}-{next(_buckets)}"
    s3_server.create_bucket(name)
    return name


def s3_start(zone, s3_server, bucket, target, tmp_path, operation="REGISTER_SYNC", *args, src_prefix="data",
             mode="DO_NOT_DELETE", launcher=FOUR, keypair=None):
    return start(zone, f"/{bucket}/{src_prefix}", target, "--event_handler", COUNTING, "--job_name", "s3",
                 *s3_server.options(keypair), *args, launcher=launcher, job_dir=tmp_path / "jobs",
                 env={"OPERATION": operation, "DELETE_MODE": mode, "HOOK_LOG": str(tmp_path / "hooks"),
                      "TO_RESOURCE": zone.default_resource if operation == "REGISTER_AS_REPLICA_SYNC" else ""})


def next_second() -> None:
    """S3 times have whole seconds: an object written in the second its sync starts is looked
    at again by the next pass, so tests that expect "unchanged" let that second pass first."""
    time.sleep(1.05 - time.time() % 1)


def object_bytes(zone, path: str) -> bytes:
    with zone.session() as session, session.data_objects.open(path, "r") as f:
        return f.read()


def report(tmp_path) -> list[dict]:
    path = tmp_path / "jobs" / "s3" / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def last_modified(s3_server, bucket: str, key: str) -> int:
    return int(s3_server.client().head_object(Bucket=bucket, Key=key)["LastModified"].timestamp())


@pytest.mark.parametrize("operation", ["REGISTER_SYNC", "REGISTER_AS_REPLICA_SYNC"])
def test_register_puts_bucket_key_paths_sizes_and_times_in_the_catalog(zone, s3_server, bucket, target, tmp_path,
                                                                      operation):
    s3_server.put_objects(bucket, KEYS)
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path, operation))
    got = catalog(zone, target)
    expected = {k[len("data/"):]: v for k, v in KEYS.items() if k.startswith("data/") and not k.endswith("/")}
    assert set(got.objects) == set(expected)
    for rel, data in expected.items():
        size, mtime, physical, replicas = got.objects[rel]
        assert (size, physical, replicas) == (len(data), f"/{bucket}/data/{rel}", 1)
        assert mtime == last_modified(s3_server, bucket, f"data/{rel}")
    assert got.collections == {"", "sub", "sub/deeper", "folder"}
    assert "failed 0" in out and "bytes uploaded 0" in out


def test_put_streams_small_and_big_objects_and_a_second_pass_changes_nothing(zone, s3_server, bucket, target,
                                                                            tmp_path):
    big = os.urandom(33 * MIB + 12345)  # over the single-buffer limit: ranged GETs in parallel
    s3_server.put_objects(bucket, {**KEYS, "data/big.bin": big})
    next_second()
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT", "--verify_checksum"))
    assert object_bytes(zone, f"{target}/big.bin") == big
    assert object_bytes(zone, f"{target}/sub/deeper/c.bin") == KEYS["data/sub/deeper/c.bin"]
    assert object_bytes(zone, f"{target}/empty") == b""
    assert "failed 0" in out and f"bytes uploaded {len(big) + 5 + 500 + 3000:,}" in out
    again = ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT"))
    assert "bytes uploaded 0" in again and "unchanged 8" in again  # 5 objects, 3 prefixes


def test_updates_between_passes_put_sync_and_put_append(zone, s3_server, bucket, target, tmp_path):
    base = os.urandom(40 * MIB)
    s3_server.put_objects(bucket, {"data/grows.bin": base[:20 * MIB], "data/rewritten.txt": b"first version",
                                   "data/same.txt": b"unchanged"})
    ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT_APPEND"))
    s3_server.put_objects(bucket, {"data/grows.bin": base, "data/rewritten.txt": b"v2",
                                   "data/new.txt": b"added between passes"})
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT_APPEND", "--verify_checksum"))
    assert object_bytes(zone, f"{target}/grows.bin") == base  # appended from the catalog size
    assert object_bytes(zone, f"{target}/rewritten.txt") == b"v2"  # shrank: put again whole
    assert object_bytes(zone, f"{target}/new.txt") == b"added between passes"
    assert "failed 0" in out
    s3_server.put_objects(bucket, {"data/rewritten.txt": b"third, with PUT_SYNC"})
    ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT_SYNC"))
    assert object_bytes(zone, f"{target}/rewritten.txt") == b"third, with PUT_SYNC"


def test_multipart_etags_are_rebuilt_with_the_chunk_size(zone, s3_server, bucket, target, tmp_path):
    data = os.urandom(12 * MIB)
    client = s3_server.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key="data/multi.bin")
    parts = []
    for number, offset in enumerate(range(0, len(data), 5 * MIB), start=1):
        part = client.upload_part(Bucket=bucket, Key="data/multi.bin", UploadId=upload["UploadId"],
                                  PartNumber=number, Body=data[offset:offset + 5 * MIB])
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    client.complete_multipart_upload(Bucket=bucket, Key="data/multi.bin", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})
    assert client.head_object(Bucket=bucket, Key="data/multi.bin")["ETag"].endswith('-3"')
    wrong = s3_start(zone, s3_server, bucket, target, tmp_path, "PUT", "--s3_multipart_chunksize_in_mib", "8")
    assert wrong.returncode == 1
    (failure,) = report(tmp_path)
    assert failure["error"] == "S3_ETAG_UNVERIFIABLE" and "--s3_multipart_chunksize_in_mib" in failure["message"]
    right = ok(s3_start(zone, s3_server, bucket, target, tmp_path, "PUT_SYNC", "--s3_multipart_chunksize_in_mib", "5"))
    assert "failed 0" in right and object_bytes(zone, f"{target}/multi.bin") == data


def test_bytes_damaged_on_the_way_are_a_failure_and_leave_no_object(zone, s3_server, bucket, target, tmp_path):
    s3_server.put_objects(bucket, {"data/good.txt": b"fine", "data/damaged.txt": b"will be flipped"})
    with SlowDownProxy(every=0, corrupt="/data/damaged.txt") as proxy:
        result = s3_start(zone, s3_server, bucket, target, tmp_path, "PUT", "--s3_proxy_url", proxy.url)
    assert result.returncode == 1 and proxy.corrupted >= 1
    (failure,) = report(tmp_path)
    assert failure["path"] == f"/{bucket}/data/damaged.txt" and failure["kind"] == "failed"
    assert set(catalog(zone, target).objects) == {"good.txt"}  # the corrupt upload was removed again


def test_a_key_too_long_for_the_catalogs_data_name_is_a_failure_and_the_rest_goes_in(zone, s3_server, bucket,
                                                                                      target, tmp_path):
    """An S3 key's last part may run to 1,001+ bytes, which fits iRODS's path buffers but not its
    catalog (data_name varchar(1000)): iRODS answers CAT_SQL_ERR; that object is a failure of its
    own, recorded with the error, and the others are registered."""
    long_name = "k" * 1001
    s3_server.put_objects(bucket, {"data/fine.txt": b"fine", f"data/{long_name}": b"long"})
    result = s3_start(zone, s3_server, bucket, target, tmp_path)
    assert result.returncode == 1, result
    (failure,) = report(tmp_path)
    assert failure["path"] == f"/{bucket}/data/{long_name}" and failure["kind"] == "failed", failure
    assert "CAT_SQL_ERR" in json.dumps(failure), failure
    assert set(catalog(zone, target).objects) == {"fine.txt"}


def test_excludes_apply_to_bucket_key_paths(zone, s3_server, bucket, target, tmp_path):
    s3_server.put_objects(bucket, KEYS)
    ok(s3_start(zone, s3_server, bucket, target, tmp_path, "REGISTER_SYNC", "--exclude_file_name",
                rf"/{bucket}/data/.*\.txt$", "--exclude_directory_name", rf"/{bucket}/data/sub/deeper$"))
    got = catalog(zone, target)
    assert set(got.objects) == {"empty"} and "sub/deeper" not in got.collections


def test_ten_thousand_keys_under_nested_prefixes(zone, s3_server, bucket, target, tmp_path):
    keys = {f"data/p{i % 20:02d}/q{i % 7}/k{i:05d}": b"%d" % i for i in range(10_000)}
    s3_server.put_objects(bucket, keys, threads=32)
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path))
    got = catalog(zone, target)
    size, _, physical, _ = got.objects["p03/q2/k00023"]
    assert len(got.objects) == 10_000 and (size, physical) == (2, f"/{bucket}/data/p03/q2/k00023")
    summary = json.loads((tmp_path / "jobs" / "s3" / "summary.json").read_text())
    assert min(summary["entries_per_rank"]) > 0  # every rank ingested while the pages arrived
    assert "created REGISTER_SYNC 10,000" in out


def test_bad_credentials_and_missing_bucket_fail_before_anything_is_written(zone, s3_server, bucket, target,
                                                                          tmp_path):
    s3_server.put_objects(bucket, KEYS)
    wrong = tmp_path / "wrong.keypair"
    wrong.write_text(f"{s3_server.access_key}\nnot-the-secret-at-all\n")
    for keypair, src_bucket, expected in ((str(wrong), bucket, b"SignatureDoesNotMatch"),
                                          (None, "no-such-bucket-here", b"no-such-bucket-here")):
        result = s3_start(zone, s3_server, src_bucket, target, tmp_path, keypair=keypair)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and b"Traceback" not in result.stderr
        assert s3_server.secret_key.encode() not in result.stderr + result.stdout
    with zone.session() as session:
        assert not session.collections.exists(target)


@pytest.mark.parametrize("operation, mode", [("REGISTER_SYNC", "UNREGISTER"), ("PUT_SYNC", "TRASH")])
def test_delete_modes_for_s3(zone, s3_server, bucket, target, tmp_path, operation, mode):
    s3_server.put_objects(bucket, KEYS)
    ok(s3_start(zone, s3_server, bucket, target, tmp_path, operation, mode=mode))
    s3_server.delete_objects(bucket, ["data/a.txt", "data/sub/b.txt", "data/sub/deeper/c.bin"])
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path, operation, mode=mode))
    got = catalog(zone, target)
    assert set(got.objects) == {"empty"} and got.collections == {"", "folder"}
    assert "deleted (gone from the source) 3 objects, 2 collections" in out
    if mode == "TRASH":
        trash = f"/{zone.zone}/trash/home/" + target[len(f"/{zone.zone}/home/"):]
        with zone.session() as session:
            assert session.data_objects.exists(f"{trash}/a.txt")


def test_the_s3_secret_is_in_no_file_log_or_output(zone, s3_server, bucket, target, tmp_path):
    s3_server.put_objects(bucket, KEYS)
    log = tmp_path / "logs" / "s3.log"
    log.parent.mkdir()
    result = s3_start(zone, s3_server, bucket, target, tmp_path, "PUT", "--log_filename", str(log),
                      "--log_level", "DEBUG", "--profile")
    ok(result)
    secret = s3_server.secret_key.encode()
    assert secret not in result.stdout + result.stderr
    written = [os.path.join(top, name) for top, _, names in os.walk(tmp_path) for name in names]
    assert any(p.endswith("job.json") for p in written) and any(".rank" in p for p in written)
    for path in written:
        with open(path, "rb") as f:
            assert secret not in f.read(), path
    record = json.loads((tmp_path / "jobs" / "s3" / "job.json").read_text())
    assert record["options"]["s3"]["s3_endpoint_domain"] == s3_server.endpoint


def test_register_updates_size_and_time_when_an_object_changes(zone, s3_server, bucket, target, tmp_path):
    s3_server.put_objects(bucket, {"data/grows.txt": b"short", "data/same.txt": b"same"})
    next_second()
    ok(s3_start(zone, s3_server, bucket, target, tmp_path))
    next_second()
    s3_server.put_objects(bucket, {"data/grows.txt": b"a good deal longer now"})
    out = ok(s3_start(zone, s3_server, bucket, target, tmp_path))
    got = catalog(zone, target)
    size, mtime, physical, replicas = got.objects["grows.txt"]
    assert (size, physical, replicas) == (22, f"/{bucket}/data/grows.txt", 1)
    assert mtime == last_modified(s3_server, bucket, "data/grows.txt")
    assert "updated REGISTER_SYNC 1" in out and "unchanged 1" in out


def test_an_object_rewritten_after_the_listing_is_seen_however_far_behind_its_time_stamp(
        zone, s3_server_behind, target, tmp_path):
    """S3 stamps an object with the time its upload began, by the endpoint's clock: a version
    written after a pass's listing can carry a LastModified before it (here the endpoint's clock
    is 30 s behind).  The sync time recorded was the listing's, and every later pass took the
    object for unchanged and never registered the new version."""
    server, bucket = s3_server_behind, f"behind{os.getpid()}"
    server.create_bucket(bucket)
    server.put_objects(bucket, {"data/f.txt": b"first", "data/same.txt": b"same"})
    next_second()
    ok(s3_start(zone, server, bucket, target, tmp_path))
    first_pass_ended = time.time()
    next_second()
    server.put_objects(bucket, {"data/f.txt": b"second, after the listing"})
    assert last_modified(server, bucket, "data/f.txt") < first_pass_ended
    out = ok(s3_start(zone, server, bucket, target, tmp_path))
    assert "updated REGISTER_SYNC 1" in out and "unchanged 1" in out
    assert catalog(zone, target).objects["f.txt"][0] == len(b"second, after the listing")


PROXY_PASSWORD = "Proxy-Pass-3b9e/@:%"  # characters a URL must escape


def stored_and_shown(tmp_path, result) -> str:
    """Everything a job leaves or shows: its output, every file under tmp_path (job record,
    summaries, failure report, logs, the command lines `ps` showed while it ran)."""
    texts = [result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")]
    for top, _, names in os.walk(tmp_path):
        for name in names:
            with open(os.path.join(top, name), "rb") as f:
                texts.append(f.read().decode(errors="replace"))
    return "\n".join(texts)


@pytest.mark.parametrize("given", ["environment", "file", "missing"])
def test_the_proxy_password_reaches_the_proxy_and_nothing_else(zone, s3_server, bucket, target, tmp_path, given):
    s3_server.put_objects(bucket, KEYS)
    env = {"COMMAND_LINES": str(tmp_path / "ps.txt")}
    extra = ["--log_filename", str(tmp_path / "log"), "--log_level", "INFO"]
    if given == "environment":
        env["HPCINGEST_S3_PROXY_PASSWORD"] = PROXY_PASSWORD
    elif given == "file":
        (tmp_path / "proxy.pw").write_text(PROXY_PASSWORD + "\n")
        extra += ["--s3_proxy_password_file", str(tmp_path / "proxy.pw")]
    with SlowDownProxy(every=0, credentials=f"ingest:{PROXY_PASSWORD}") as proxy:
        result = start(zone, f"/{bucket}/data", target, "--job_name", "s3", *s3_server.options(),
                       "--s3_proxy_url", proxy.url.replace("http://", "http://ingest@"),
                       "--event_handler", os.path.join(HANDLERS, "command_lines.py"), *extra, launcher=FOUR,
                       job_dir=tmp_path / "jobs", env=env)
    if given == "missing":
        assert result.returncode == 2 and proxy.authorized == 0
        assert b"the proxy refused the credentials" in result.stderr and b"Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert proxy.authorized > 0 and proxy.refused == 0  # every request carried the password
    assert set(catalog(zone, target).objects) == {"a.txt", "sub/b.txt", "sub/deeper/c.bin", "empty"}
    assert "-m hpcingest start" in (tmp_path / "ps.txt").read_text()  # the ranks' command lines were seen
    if given == "file":
        (tmp_path / "proxy.pw").unlink()
    shown = stored_and_shown(tmp_path, result)
    assert "Proxy-Pass-3b9e" not in shown and "Proxy-Pass-3b9e".encode().hex() not in shown


def test_a_password_in_the_proxy_url_is_refused_and_never_stored(zone, s3_server, bucket, target, tmp_path):
    result = start(zone, f"/{bucket}/data", target, "--job_name", "s3", *s3_server.options(),
                   "--s3_proxy_url", "http://ingest:Typed-On-The-Command-Line@127.0.0.1:3128",
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert "must not contain a password" in stderr and "HPCINGEST_S3_PROXY_PASSWORD" in stderr and "`ps`" in stderr
    assert "Typed-On-The-Command-Line" not in stored_and_shown(tmp_path, result)
    assert not (tmp_path / "jobs" / "s3" / "job.json").exists()
