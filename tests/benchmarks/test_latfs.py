"""latfs, the benchmarks' FUSE filesystem with a metadata server's latency: it mirrors a
tree exactly, counts what it serves, and really waits the latency it is given.

No wall-clock limits: latency is checked from latfs's own record of each wait, and
against a zero-latency mount in the same test."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from benchmarks import latfs
from tests import trees
from tests.launchers import Launcher
from tests.test_scan import assert_matches_find, scan

pytestmark = pytest.mark.skipif(latfs.unavailable_reason() is not None,
                                reason=f"latfs cannot run here: {latfs.unavailable_reason()}")


def find_records(root: bytes) -> list[bytes]:
    """Type, size, mode, link target and relative path of every entry, as find prints them."""
    out = subprocess.run(["find", root, "-mindepth", "1", "-printf", r"%y %s %m %l %P\0"], capture_output=True,
                         check=True)
    return sorted(out.stdout.split(b"\0")[:-1])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> bytes:
    """Every kind of entry and name the walker meets, and a directory of 400 files."""
    root = os.fsencode(tmp_path_factory.mktemp("latfs-src"))
    trees.tricky_tree(os.path.join(root, b"tricky"))
    trees.links_tree(os.path.join(root, b"links"))
    trees.random_tree(os.path.join(root, b"random"), seed=3, entries=600)
    os.mkfifo(os.path.join(root, b"fifo"))
    os.makedirs(os.path.join(root, b"wide"))
    for i in range(400):
        trees.write_file(os.path.join(root, b"wide", b"entry-%04d" % i), i % 7)
    return root


def test_find_through_latfs_equals_find_on_the_source(source):
    with latfs.mounted(os.fsdecode(source), latency_ms=0.2, threads=4) as fs:
        through = find_records(os.fsencode(fs.mountpoint))
        used = fs.counters()
    assert through == find_records(source)
    assert used.count("lookup") >= len(through)  # every entry was looked up through latfs


def test_file_contents_and_links_read_through(source):
    with latfs.mounted(os.fsdecode(source), threads=2) as fs:
        mnt = os.fsencode(fs.mountpoint)
        for top, _, names in os.walk(os.path.join(source, b"random")):
            for name in names:
                path = os.path.join(top, name)
                with open(path, "rb") as a, open(mnt + path[len(source):], "rb") as b:
                    assert a.read() == b.read()
        assert os.readlink(mnt + b"/links/dangling") == b"does/not/exist"
        with pytest.raises(OSError):
            open(mnt + b"/random/new-file", "wb")  # read-only
        used = fs.counters()
    assert used.count("open") >= 1 and used.count("read") >= 1 and used.count("readlink") == 1


def test_counters_count_each_operation(source):
    wide = os.path.join(source, b"wide")
    names = sorted(os.listdir(wide))
    with latfs.mounted(os.fsdecode(source), threads=2) as fs:
        before = fs.counters()
        fd = os.open(os.path.join(os.fsencode(fs.mountpoint), b"wide"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            listed = os.listdir(fd)
            middle = fs.counters()
            for name in names:
                os.lstat(name, dir_fd=fd)
            after = fs.counters()
        finally:
            os.close(fd)
    assert sorted(os.fsencode(n) for n in listed) == names
    listing = middle - before
    assert listing.count("opendir") == 1 and listing.count("lookup") == 1  # "wide" itself
    assert listing.count("readdir") >= 2  # one per buffer the kernel asks for, and the empty one at the end
    stats = after - middle
    # one LOOKUP per lstat and nothing else: the kernel cached no entry, and the attributes
    # a lookup returned answered its own stat
    assert stats.count("lookup") == len(names)
    assert stats.count("getattr") + stats.count("opendir") + stats.count("readdir") == 0
    assert stats.ops["lookup"].cpu_ns > 0


def test_latency_is_waited_per_operation_and_not_without_it(source):
    wide = os.path.join(source, b"wide")
    names = sorted(os.listdir(wide))[:40]
    measured = {}
    for latency_ms in (0.0, 3.0):
        with latfs.mounted(os.fsdecode(source), latency_ms=latency_ms, threads=4) as fs:
            fd = os.open(os.path.join(os.fsencode(fs.mountpoint), b"wide"), os.O_RDONLY | os.O_DIRECTORY)
            before = fs.counters()
            for name in names:
                os.lstat(name, dir_fd=fd)
            os.close(fd)
            measured[latency_ms] = fs.counters() - before
    zero, slow = measured[0.0], measured[3.0]
    assert zero.count("lookup") == slow.count("lookup") == len(names)
    assert zero.ops["lookup"].wait_ns == 0
    # each wait sleeps to an absolute deadline, so none is shorter than the latency
    assert slow.ops["lookup"].wait_ns >= len(names) * 3_000_000
    assert slow.mean_wait_ms("lookup") >= 3.0
    assert slow.latency_ns == 3_000_000 and slow.capacity_ops_per_s() == pytest.approx(4 / 0.003)


def test_service_threads_bound_the_operations_in_flight(source):
    """More clients than service slots: at most ``threads`` are served at once, the rest queue."""
    wide = os.path.join(source, b"wide")
    names = sorted(os.listdir(wide))
    with latfs.mounted(os.fsdecode(source), latency_ms=2.0, threads=2) as fs:
        mnt_wide = os.path.join(os.fsencode(fs.mountpoint), b"wide")
        start = threading.Barrier(8)

        def client(part: list[bytes]) -> None:
            fd = os.open(mnt_wide, os.O_RDONLY | os.O_DIRECTORY)
            start.wait()
            for name in part:
                os.lstat(name, dir_fd=fd)
            os.close(fd)

        before = fs.counters()
        workers = [threading.Thread(target=client, args=(names[i::8],)) for i in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        used = fs.counters() - before
    assert used.count("lookup") == len(names) + 8  # each client also looked up "wide"
    assert used.peak_in_service <= 2
    assert used.ops["lookup"].queue_ns > 0  # eight clients, two slots: requests waited for a slot


def test_hpcingest_scan_through_latfs_equals_find_on_the_source(source, tmp_path):
    """The walker against a filesystem where every stat is a round trip (several ranks)."""
    with latfs.mounted(os.fsdecode(source), latency_ms=0.5, threads=8) as fs:
        mnt = os.fsencode(fs.mountpoint)
        before = fs.counters()
        listing, summary, _ = scan(Launcher("mpiexec", 4), mnt, tmp_path)
        used = fs.counters() - before
        assert_matches_find(mnt, listing, summary, 4)
    assert sorted(listing) == sorted(r.split(b" ", 4)[4] for r in find_records(source))
    assert used.count("lookup") >= len(listing)


@pytest.mark.parametrize("ranks", [1, 3])
def test_a_scan_asks_the_filesystem_no_more_than_find(tmp_path, ranks):
    """Every stat batch opened its directory by its path from the root: a lookup per
    component and an open, per 50 entries; on a 60-deep chain, 3,900 lookups where find
    needs 240 (O(depth²) where the client caches nothing).  A rank now keeps the directories
    it works in open and opens a subdirectory from its parent."""
    source = os.fsencode(tmp_path / "src")
    trees.chain_tree(source, depth=60)
    os.makedirs(os.path.join(source, b"wide"))
    for i in range(400):  # eight stat batches of one directory
        trees.write_file(os.path.join(source, b"wide", b"f%03d" % i), 0)
    with latfs.mounted(os.fsdecode(source), threads=8) as fs:
        mnt = os.fsencode(fs.mountpoint)
        before = fs.counters()
        find_records(mnt)
        by_find = fs.counters() - before
        before = fs.counters()
        listing, summary, _ = scan(Launcher("mpiexec", ranks), mnt, tmp_path)
        by_scan = fs.counters() - before
        assert_matches_find(mnt, listing, summary, ranks)
    opens = by_scan.count("opendir")
    assert by_scan.count("lookup") <= by_find.count("lookup") + 2 * ranks, (by_scan.ops, by_find.ops)
    assert opens <= by_find.count("opendir") + 2 * ranks, (by_scan.ops, by_find.ops)


def test_a_source_that_is_not_a_directory_is_a_one_line_error(tmp_path):
    binary = latfs.build()
    (tmp_path / "mnt").mkdir()
    done = subprocess.run([binary, str(tmp_path / "missing"), str(tmp_path / "mnt")], capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().strip().count("\n") == 0 and "not a readable directory" in done.stderr.decode()
    done = subprocess.run([binary, "--threads", "0", str(tmp_path), str(tmp_path / "mnt")], capture_output=True)
    assert done.returncode == 2 and b"usage" in done.stderr
    with pytest.raises(latfs.LatfsUnavailable, match="not a readable directory"):
        with latfs.mounted(str(tmp_path / "missing")):
            pass
