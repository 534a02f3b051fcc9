"""`hpcingest scan /bucket/prefix --s3_keypair ...` under real MPI ranks against moto's server."""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass

import pytest

from hpcingest.sources.s3 import read_keypair
from tests.conftest import launcher_params
from tests.launchers import Launcher, hpcingest_argv, run
from tests.s3server import S3TestServer, SlowDownProxy, free_port, write_keypair
from tests.test_scan import read_listing

BIG = 33 << 20  # over the old tool's 32 MiB single-stream limit


def nested_keys(seed: int = 11, count: int = 600) -> dict[str, bytes]:
    """Keys under data/ up to five prefixes deep, folder markers, and decoys beside data/."""
    rng = random.Random(seed)
    keys: dict[str, bytes] = {}
    for i in range(count):
        depth = rng.randrange(0, 6)
        parts = [f"d{rng.randrange(3)}" for _ in range(depth)]
        keys["/".join(["data", *parts, f"f{i}.{rng.choice(['txt', 'tmp', 'bin'])}"])] = os.urandom(rng.randrange(300))
    keys.update({"data/": b"", "data/d0/": b"", "data/empty/": b"", "data/skip/inner/x": b"xyz",
                 "data/\u00fcnicode/\u6587\u4ef6 with spaces": b"u",
                 "data2/decoy": b"no", "dat": b"no", "other/y": b"no"})
    return keys


@dataclass(frozen=True)
class Expected:
    files: dict[bytes, int]  # relpath -> size
    directories: set[bytes]

    @property
    def paths(self) -> set[bytes]:
        return set(self.files) | self.directories


def expected_view(keys: dict[str, bytes], prefix: str) -> Expected:
    """What a scan of /bucket/prefix must list: objects, and every prefix on the way to one
    (or to a folder marker); keys ending in "/" are never objects."""
    files: dict[bytes, int] = {}
    directories: set[bytes] = set()
    for key, body in keys.items():
        if not key.startswith(prefix + "/"):
            continue
        parts = key[len(prefix) + 1:].split("/")
        directories.update(os.fsencode("/".join(parts[:i])) for i in range(1, len(parts)))
        if parts[-1]:
            files[os.fsencode("/".join(parts))] = len(body)
    return Expected(files, directories)


def scan_s3(server: S3TestServer, launcher: Launcher | None, src: str, out_dir, *extra: str,
            keypair: str | None = None):
    listing, summary = os.path.join(out_dir, "list"), os.path.join(out_dir, "summary.json")
    argv = hpcingest_argv("scan", src, *server.options(keypair), "--list", listing, "--json", summary, "--quiet",
                          *extra)
    result = run(launcher, argv)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert_no_secret(server, result)
    return read_listing(listing), json.load(open(summary)), result


def assert_no_secret(server: S3TestServer, result) -> None:
    for stream in (result.stdout, result.stderr):
        assert server.secret_key.encode() not in stream


def assert_matches(listing: list[bytes], summary: dict, expected: Expected, ranks: int) -> None:
    assert len(listing) == len(set(listing)), "an entry was listed twice"
    assert set(listing) == expected.paths
    assert (summary["files"], summary["directories"]) == (len(expected.files), len(expected.directories))
    assert summary["bytes"] == sum(expected.files.values())
    assert (summary["errors"], summary["symlinks"], summary["other"]) == (0, 0, 0)
    assert summary["ranks"] == ranks
    assert sum(summary["entries_per_rank"]) == len(expected.paths)


@pytest.fixture(scope="module")
def buckets(s3_server):
    """nested: a tree with decoys; flat: 10k keys under one prefix; big: one 33 MiB object."""
    nested = nested_keys()
    s3_server.create_bucket("nested")
    s3_server.put_objects("nested", nested)
    flat = {f"flat/k{i:05d}": b"v" * (i % 97) for i in range(10_000)}
    s3_server.create_bucket("flat")
    s3_server.put_objects("flat", flat)
    s3_server.create_bucket("big")
    s3_server.put_objects("big", {"large/object.bin": os.urandom(BIG), "large/small": b"s"})
    return {"nested": nested, "flat": flat}


@pytest.mark.parametrize("launcher", launcher_params(ranks=(1, 4), srun_ranks=(4,)))
def test_nested_prefixes_list_every_key(s3_server, buckets, launcher, tmp_path):
    listing, summary, _ = scan_s3(s3_server, launcher, "/nested/data", tmp_path)
    expected = expected_view(buckets["nested"], "data")
    assert_matches(listing, summary, expected, launcher.ranks)
    assert b"empty" in expected.directories and b"decoy" not in b"".join(listing)
    assert summary["source"] == "/nested/data"


def test_whole_bucket_and_a_deeper_prefix(s3_server, buckets, tmp_path):
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/nested", tmp_path)
    whole = {f"root/{k}": v for k, v in buckets["nested"].items()}
    assert_matches(listing, summary, expected_view(whole, "root"), 2)
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/nested/data/d0/", tmp_path)
    assert_matches(listing, summary, expected_view(buckets["nested"], "data/d0"), 2)


def test_ten_thousand_keys_in_one_prefix_spread_over_ranks(s3_server, buckets, tmp_path):
    """One flat prefix: pages are listed one after another, their batches are stolen."""
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 4), "/flat/flat", tmp_path)
    assert_matches(listing, summary, expected_view(buckets["flat"], "flat"), 4)
    busy = [n for n in summary["entries_per_rank"] if n]
    assert len(busy) > 1, summary["entries_per_rank"]
    assert summary["items_stolen"] > 0


def test_object_over_32_mib(s3_server, buckets, tmp_path):
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/big/large", tmp_path)
    assert sorted(listing) == [b"object.bin", b"small"]
    assert summary["bytes"] == BIG + 1
    assert summary["size_histogram"][">= 32 MiB"] == 1


def test_updates_between_passes(s3_server, buckets, tmp_path):
    s3_server.create_bucket("changing")
    keys = {"p/a": b"1", "p/sub/b": b"22", "p/sub/c": b"333"}
    s3_server.put_objects("changing", keys)
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/changing/p", tmp_path)
    assert_matches(listing, summary, expected_view(keys, "p"), 2)
    keys.update({"p/a": b"grown" * 1000, "p/new/deep/d": b"4444"})
    del keys["p/sub/c"]
    s3_server.put_objects("changing", {k: keys[k] for k in ("p/a", "p/new/deep/d")})
    s3_server.delete_objects("changing", ["p/sub/c"])
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/changing/p", tmp_path)
    assert_matches(listing, summary, expected_view(keys, "p"), 2)


def test_exclusions_match_bucket_and_key(s3_server, buckets, tmp_path):
    listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 4), "/nested/data", tmp_path,
                                  "--exclude_file_name", r"/nested/data/.*\.tmp$",
                                  "--exclude_directory_name", "/nested/data/skip$", "/nested/data/d1$")
    full = expected_view(buckets["nested"], "data")
    kept = {p for p in full.paths
            if not p.endswith(b".tmp") and p.split(b"/")[0] not in (b"skip", b"d1")}
    assert set(listing) == kept
    excluded_files = {p for p in full.files if p.endswith(b".tmp") and p.split(b"/")[0] not in (b"skip", b"d1")}
    assert summary["excluded"] == len(excluded_files) + 2  # the files, and the two pruned prefixes


def test_throttling_is_retried_with_backoff(s3_server, tmp_path):
    """Through --s3_proxy_url, every other request is answered 503 SlowDown first."""
    keys = nested_keys(seed=5, count=20)
    s3_server.create_bucket("throttled")
    s3_server.put_objects("throttled", keys)
    with SlowDownProxy(every=2) as proxy:
        listing, summary, _ = scan_s3(s3_server, Launcher("mpiexec", 2), "/throttled/data", tmp_path,
                                      "--s3_proxy_url", proxy.url, "--files_per_task", "5")
    assert_matches(listing, summary, expected_view(keys, "data"), 2)
    assert proxy.throttled > 3 and proxy.retried == proxy.throttled


def unknown_key_keypair(server: S3TestServer, tmp_path) -> str:
    return write_keypair(str(tmp_path / "unknown"), "AKIAUNKNOWNKEY000000", server.secret_key)


def wrong_secret_keypair(server: S3TestServer, tmp_path) -> str:
    return write_keypair(str(tmp_path / "wrong"), server.access_key, server.secret_key[::-1])


def one_line_keypair(server: S3TestServer, tmp_path) -> str:
    path = tmp_path / "one-line"
    path.write_text(server.secret_key + "\n")
    return str(path)


BAD_SOURCES = {
    "missing keypair file": (lambda s, t: str(t / "absent"), "/nested/data", [], "--s3_keypair .*: no such file"),
    "one-line keypair file": (one_line_keypair, "/nested/data", [], "found 1 non-empty line"),
    "unknown access key": (unknown_key_keypair, "/nested/data", [], r"access key from .* \(line 1\) is not known"),
    "wrong secret": (wrong_secret_keypair, "/nested/data", [], r"secret key from .* \(line 2\) does not match"),
    "no permission": (lambda s, t: s.new_keypair("no-permissions-mpi", policy=None), "/nested/data", [],
                      r"may not list this bucket \(AccessDenied\)"),
    "missing bucket": (None, "/no-such-bucket/data", [], r"bucket 'no-such-bucket' does not exist \(NoSuchBucket\)"),
    "unreachable endpoint": (None, "/nested/data", ["--s3_endpoint_domain", "127.0.0.1:{port}"],
                             r"cannot reach the S3 endpoint http://127.0.0.1:\d+"),
    "no bucket": (None, "/", [], "give /BUCKET"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_source_is_a_clear_error_before_work_starts(s3_server, buckets, tmp_path, case):
    make_keypair, src, extra, message = BAD_SOURCES[case]
    keypair = make_keypair(s3_server, tmp_path) if make_keypair else None
    extra = [e.format(port=free_port()) for e in extra]
    listing = tmp_path / "list"
    result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", src, *s3_server.options(keypair), *extra,
                                                        "--list", str(listing)))
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert_no_secret(s3_server, result)
    if keypair and os.path.exists(keypair) and case != "one-line keypair file":
        assert read_keypair(keypair)[1].encode() not in result.stderr + result.stdout
    assert re.search(message, stderr), stderr
    assert "Traceback" not in stderr
    assert stderr.count("error:") == 1, "only rank 0 reports"
    assert not listing.exists(), "no rank started work"
