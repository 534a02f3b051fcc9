"""latfs: a FUSE mirror of a directory tree with a metadata server's latency and capacity.

Why: every walk figure from ext4 with a warm cache measures CPU (a stat is 1.5 us there).
On Lustre a stat is a round trip to a metadata server that serves N requests at once,
and a walk is fast only if it keeps many requests in flight.  latfs (``latfs.c`` beside
this file, built on first use against Debian's libfuse3) makes any tree behave so:

* every lookup, getattr, opendir, readdir page, open and readlink takes one of
  ``threads`` service slots and waits ``latency_ms`` (asleep, not computing), so the
  filesystem serves at most ``threads / latency`` operations per second;
* the kernel caches no entries (a stat is always one LOOKUP) and no attributes beyond
  the one tick that lets a LOOKUP's attributes answer its own stat;
* real-time priority where allowed, so busy clients on the same cores cannot delay its replies
  (a metadata server has CPUs of its own);
* shared-memory counters per operation kind: count, time queued for a slot, time in the
  latency wait, the handler's own CPU; :class:`Counters` snapshots subtract, so a
  benchmark can show what it measured was not latfs's own cost.

Use::

    with mounted(src, latency_ms=1, threads=64) as fs:
        before = fs.counters()
        ...                              # walk fs.mountpoint
        used = fs.counters() - before    # used.ops("lookup"), used.cpu_per_op_us(), ...
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Iterator

SOURCE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "latfs.c")
# the operation kinds in the order of latfs.c's enum op_kind (stats layout version 1)
OPERATIONS = ("lookup", "getattr", "opendir", "readdir", "releasedir", "open", "read", "release",
              "readlink", "forget", "statfs")
METADATA_OPERATIONS = ("lookup", "getattr", "opendir", "readdir", "open", "readlink")  # the ones delayed
_MAGIC = 0x3130534654414C
_VERSION = 1
_HEADER_WORDS = 16
_OP_WORDS = 4
_HEADER = ("magic", "version", "kinds", "latency_ns", "readdir_latency_ns", "threads", "pid", "in_service",
           "peak_in_service", "ready", "nodes", "priority")
PRIORITIES = ("normal", "nice -10", "real-time (SCHED_FIFO)")
MOUNT_TIMEOUT_S = 60  # a hang guard for mount and unmount, not a performance limit


class LatfsUnavailable(RuntimeError):
    """latfs cannot be built or mounted here (what is missing is in the message)."""


def unavailable_reason() -> str | None:
    """Why latfs cannot run on this machine, or None when it can (for test skips)."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this kernel or container)"
    for tool in ("fusermount3", "pkg-config", "cc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash .ci/setup.sh installs fuse3, libfuse3-dev and gcc)"
    if subprocess.run(["pkg-config", "--exists", "fuse3"]).returncode != 0:
        return "libfuse3-dev is not installed (bash .ci/setup.sh installs it)"
    return None


def build(cache_dir: str | None = None) -> str:
    """The latfs binary for the current latfs.c, compiled once into a cache keyed by the
    source's hash (several processes may race: each compiles to a temporary name and
    renames, so every caller gets a whole binary)."""
    reason = unavailable_reason()
    if reason:
        raise LatfsUnavailable(reason)
    with open(SOURCE_FILE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                      "hpcingest")
    os.makedirs(cache, exist_ok=True)
    binary = os.path.join(cache, f"latfs-{digest}")
    if os.path.exists(binary):
        return binary
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True, text=True,
                           check=True).stdout.split()
    partial = f"{binary}.{os.getpid()}.tmp"
    done = subprocess.run(["cc", "-O2", "-Wall", "-o", partial, SOURCE_FILE, *flags, "-lpthread"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise LatfsUnavailable(f"compiling latfs failed:\n{done.stderr[-2000:]}")
    os.replace(partial, binary)
    return binary


@dataclass
class OpCounters:
    """One operation kind: how many were served and where their time went."""

    count: int = 0
    queue_ns: int = 0  # waiting for a free service slot (the server was at capacity)
    wait_ns: int = 0  # in the latency wait (asleep)
    cpu_ns: int = 0  # the handler's own thread CPU (the real syscall, the reply)

    def __sub__(self, other: "OpCounters") -> "OpCounters":
        return OpCounters(self.count - other.count, self.queue_ns - other.queue_ns,
                          self.wait_ns - other.wait_ns, self.cpu_ns - other.cpu_ns)


@dataclass
class Counters:
    """A snapshot of latfs's counters; subtract two to get what happened in between."""

    latency_ns: int
    readdir_latency_ns: int
    threads: int
    peak_in_service: int
    nodes: int
    priority: str = "normal"  # how latfs's threads were scheduled
    ops: dict[str, OpCounters] = field(default_factory=dict)
    process_cpu_s: float = 0.0  # the whole latfs process (user + system), from /proc

    def __sub__(self, other: "Counters") -> "Counters":
        return Counters(self.latency_ns, self.readdir_latency_ns, self.threads, self.peak_in_service, self.nodes,
                        self.priority, {k: self.ops[k] - other.ops[k] for k in self.ops},
                        self.process_cpu_s - other.process_cpu_s)

    def count(self, *kinds: str) -> int:
        return sum(self.ops[k].count for k in (kinds or OPERATIONS))

    @property
    def metadata_ops(self) -> int:
        return self.count(*METADATA_OPERATIONS)

    def mean_wait_ms(self, *kinds: str) -> float:
        """Mean latency wait of the delayed operations of these kinds, as latfs measured it."""
        kinds = kinds or METADATA_OPERATIONS
        n = self.count(*kinds)
        return sum(self.ops[k].wait_ns for k in kinds) / n / 1e6 if n else 0.0

    def queue_s(self) -> float:
        return sum(op.queue_ns for op in self.ops.values()) / 1e9

    def handler_cpu_us_per_op(self) -> float:
        n = self.count()
        return sum(op.cpu_ns for op in self.ops.values()) / n / 1e3 if n else 0.0

    def process_cpu_us_per_op(self) -> float:
        n = self.count()
        return 1e6 * self.process_cpu_s / n if n else 0.0

    def capacity_ops_per_s(self) -> float:
        """threads / latency: the most metadata operations per second latfs can serve."""
        return self.threads / (self.latency_ns / 1e9) if self.latency_ns else float("inf")


def read_counters(path: str) -> Counters:
    with open(path, "rb") as f:
        data = f.read()
    words = struct.unpack(f"<{len(data) // 8}Q", data)
    header = dict(zip(_HEADER, words))
    if header.get("magic") != _MAGIC or header["version"] != _VERSION or header["kinds"] != len(OPERATIONS):
        raise LatfsUnavailable(f"{path} is not a latfs (layout {_VERSION}) counter file")
    ops = {}
    for i, name in enumerate(OPERATIONS):
        base = _HEADER_WORDS + _OP_WORDS * i
        ops[name] = OpCounters(*words[base:base + _OP_WORDS])
    return Counters(header["latency_ns"], header["readdir_latency_ns"], header["threads"],
                    header["peak_in_service"], header["nodes"], PRIORITIES[header["priority"]], ops,
                    process_cpu_s(header["pid"]))


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a live process, from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Mount:
    """A mounted latfs: its mount point and its counters."""

    source: str
    mountpoint: str
    stats_path: str
    process: subprocess.Popen

    def counters(self) -> Counters:
        return read_counters(self.stats_path)


def _is_mounted(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == real for line in f if len(line.split()) > 1)


def unmount(mount: Mount) -> None:
    """fusermount3 -u (lazily if something still has it open), then wait for latfs to exit."""
    if _is_mounted(mount.mountpoint):
        done = subprocess.run(["fusermount3", "-u", mount.mountpoint], capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", mount.mountpoint], capture_output=True)
    try:
        mount.process.wait(MOUNT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        mount.process.send_signal(signal.SIGKILL)
        mount.process.wait()


@contextlib.contextmanager
def mounted(source: str, mountpoint: str | None = None, *, latency_ms: float = 0.0, threads: int = 16,
            readdir_latency_ms: float | None = None, attr_timeout: float | None = None,
            entry_timeout: float | None = None, realtime: bool = True, whole_seconds: bool = False,
            workdir: str | None = None) -> Iterator[Mount]:
    """Mount latfs over ``source`` (at ``mountpoint``, else a fresh temporary directory)
    for the ``with`` block; unmounted on the way out, whatever happened inside.
    ``whole_seconds`` shows file times cut to whole seconds, as Lustre keeps them."""
    binary = build()
    with tempfile.TemporaryDirectory(prefix="latfs-", dir=workdir) as scratch:
        target = mountpoint or os.path.join(scratch, "mnt")
        os.makedirs(target, exist_ok=True)
        stats_path = os.path.join(scratch, "counters")
        argv = [binary, "--latency-ms", repr(latency_ms), "--threads", str(threads), "--stats", stats_path]
        if readdir_latency_ms is not None:
            argv += ["--readdir-latency-ms", repr(readdir_latency_ms)]
        if attr_timeout is not None:
            argv += ["--attr-timeout", repr(attr_timeout)]
        if entry_timeout is not None:
            argv += ["--entry-timeout", repr(entry_timeout)]
        if not realtime:
            argv.append("--no-realtime")
        if whole_seconds:
            argv.append("--whole-seconds")
        log = open(os.path.join(scratch, "latfs.log"), "w+b")
        process = subprocess.Popen([*argv, source, target], stdout=subprocess.PIPE, stderr=log,
                                   stdin=subprocess.DEVNULL)
        mount = Mount(os.path.realpath(source), target, stats_path, process)
        try:
            _wait_ready(process, log)
            yield mount
        finally:
            unmount(mount)
            log.close()


def _wait_ready(process: subprocess.Popen, log) -> None:
    """Until latfs prints "ready" (it is mounted), or say why it did not."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], MOUNT_TIMEOUT_S)
    line = process.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        if process.poll() is None:
            process.kill()
            process.wait()
        log.seek(0)
        raise LatfsUnavailable(f"latfs did not mount (exit {process.returncode}): "
                               f"{log.read().decode(errors='replace').strip()[-1000:]}")
