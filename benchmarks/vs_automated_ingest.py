"""hpcingest against the iRODS Automated Ingest Framework 0.7.0 (Celery + Redis), same invocation.

Usage:  python benchmarks/vs_automated_ingest.py [--files 20000,100000] [--ranks 2,4] [--put-files 10000]
                                                 [--latency-ms 0.5] [--rounds 1] [--workdir DIR] [--quick]

Setup (idempotent): Debian's redis-server (installed with apt-get if missing; the system service is
never used) and a separate virtual environment with irods-capability-automated-ingest 0.7.0 and the
pins that make it install and run today (research/peer.md §11).  For every round of every workload
a fresh built-in zone (``--latency-ms``), a private redis-server on a free port and one Celery worker
with ``-c N`` are started, and both tools run against fresh target collections, alternating which
goes first:

  old:       python -m irods_capability_automated_ingest.irods_sync start SRC TARGET --synchronous --job_name J
  hpcingest: mpiexec -n N python -m hpcingest start SRC TARGET --synchronous --job_name J --job_dir D

Workloads: REGISTER_SYNC of each --files tree with each N in --ranks (initial pass, a second pass
over the unchanged tree with the same job, a pass after 1% of the files were appended to); PUT of
--put-files 4 KiB files with each N.  Reported per pass: files/s of each tool (whole commands), the
ratio hpcingest/old, iRODS API requests per file counted by the zone, and peak memory (VmHWM) of
every process involved, by role.  After every initial and 1%-modified pass both catalogs must hold
one object per file with the source's sizes, and the same names and sizes as each other; a run
that fails or lands a different catalog stops the benchmark with a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import handler_file, precompile  # noqa: E402
from benchmarks.ingest import api_calls, delta, per_file, run_start  # noqa: E402
from hpcingest import sample  # noqa: E402
from hpcingest.zone.testing import RunningZone, start_zone  # noqa: E402

OLD_VENV = "/opt/automated-ingest-venv"
# peer.md §11: the bare 0.7.0 pin resolves to an unbuildable kombu; these install and run.
OLD_PINS = {"irods-capability-automated-ingest": "0.7.0", "celery": "5.4.0", "kombu": "5.4.2", "redis": "4.6.0"}
OLD_EXTRAS = ("celery[redis]==5.4.0", "packaging", "setuptools")
OLD_PACKAGE = "irods_capability_automated_ingest"
# Where the old tool's processes start: a checkout of hpcingest holds a package of the same name (the
# old entry point, hpcingest.compat), which `python -m` and `celery -A` would import from the current
# directory instead of the old framework's.
OUTSIDE_CHECKOUT = "/"
JOB_PREFIX = "vsai_"  # the old workers leave /tmp/event_handler<job>*.py behind; we remove ours
IRODS_CLIENT_VARIABLES = ("IRODS_HOST", "IRODS_PORT", "IRODS_USER_NAME", "IRODS_ZONE_NAME", "IRODS_PASSWORD")
SAMPLE_SECONDS = 0.2


class SetupError(RuntimeError):
    """Redis, the old tool's environment, the zone or the workers could not be brought up."""


class RunFailed(RuntimeError):
    """A tool exited with an error or landed a catalog that does not match the source."""


# ------------------------------------------------------------------------------------------- setup

def ensure_redis() -> str:
    """redis-server from Debian; installed without letting the package start its system service."""
    path = shutil.which("redis-server")
    if path:
        return path
    print("installing redis-server with apt-get", flush=True)
    # invoke-rc.d consults policy-rc.d; exit status 101 means "do not start services" (Debian policy).
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    if ours:
        with open(policy, "w") as out:
            out.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        result = subprocess.run(["apt-get", "install", "-y", "redis-server"], capture_output=True, text=True,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    finally:
        if ours:
            os.unlink(policy)
    path = shutil.which("redis-server")
    if result.returncode or not path:
        raise SetupError(f"apt-get install redis-server failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return path


def ensure_old_venv(venv: str) -> str:
    """The old tool's own venv (made with Debian's python3), with the §11 pins; returns its python."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        print(f"creating {venv}", flush=True)
        made = subprocess.run(["/usr/bin/python3", "-m", "venv", venv], capture_output=True, text=True)
        if made.returncode:
            raise SetupError(f"python3 -m venv {venv} failed:\n{made.stderr[-2000:]}")
    check = ("import importlib.metadata as m, json, sys; "
             f"print(json.dumps({{n: (m.version(n) if n in {{d.metadata['Name'].lower() for d in m.distributions()}} "
             f"else None) for n in {sorted(OLD_PINS)!r}}}))")

    def installed() -> dict[str, str | None]:
        out = subprocess.run([python, "-c", check], capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    if installed() != OLD_PINS:
        pins = [f"{name}=={version}" for name, version in OLD_PINS.items() if name != "celery"] + list(OLD_EXTRAS)
        print(f"installing into {venv}: {' '.join(pins)}", flush=True)
        pip = subprocess.run([python, "-m", "pip", "install", "-q", *pins], capture_output=True, text=True)
        if pip.returncode:
            raise SetupError(f"pip install into {venv} failed:\n{pip.stderr[-2000:]}")
        if installed() != OLD_PINS:
            raise SetupError(f"{venv} holds {installed()}, expected {OLD_PINS}")
    smoke = subprocess.run([python, "-c", f"import {OLD_PACKAGE}.irods_sync, celery, redis_lock"], cwd=OUTSIDE_CHECKOUT,
                           capture_output=True, text=True, env={**os.environ, "CELERY_BROKER_URL": "redis://x:1/0"})
    if smoke.returncode:
        raise SetupError(f"the old tool does not import in {venv}:\n{smoke.stderr[-2000:]}")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Service:
    """A long-lived helper (redis-server, the Celery worker) in its own process group."""

    name: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the whole group (Celery's pool children included), SIGKILL it after 15 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of a group whose leader already left
        self.process.wait()


def start_service(name: str, argv: list[str], log: str, env: dict[str, str] | None = None,
                  cwd: str | None = None) -> Service:
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
    return Service(name, process)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's /proc children list)."""
    result: list[int] = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with contextlib.suppress(OSError), open(path) as source:
            result.extend(int(p) for p in source.read().split())
    return result


def old_tool_env(zone: RunningZone, broker: str) -> dict[str, str]:
    """The old tool's environment: the zone's env and auth files (its PRC reads both), the broker.

    The IRODS_HOST/PORT/... variables are removed because, when all of them are set, the old tool
    uses them instead of the environment file (irods_utils.irods_session)."""
    env = {k: v for k, v in os.environ.items() if k not in IRODS_CLIENT_VARIABLES and k != "PYTHONPATH"}
    return {**env, **zone.environ(), "CELERY_BROKER_URL": broker}


@dataclass
class OldStack:
    """Everything one round needs: a fresh zone, a private Redis and one Celery worker with -c N."""

    zone: RunningZone
    redis: Service
    workers: Service
    env: dict[str, str]
    python: str
    logs: str

    def roots(self, include_old: bool) -> dict[int, str | None]:
        """Sampler roles by process-tree root; None = not part of the run being measured."""
        return {self.zone.pid or -1: None, self.redis.pid: "Redis server" if include_old else None,
                self.workers.pid: "Celery workers" if include_old else None}


def wait_for_workers(stack: OldStack, concurrency: int, timeout: float = 90.0) -> None:
    """Until the worker answers a ping through the broker and its pool has all N processes."""
    celery = os.path.join(os.path.dirname(stack.python), "celery")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.workers.process.poll() is not None:
            raise SetupError(f"the Celery worker exited with {stack.workers.process.returncode}; see {stack.logs}")
        ping = subprocess.run([celery, "-A", OLD_PACKAGE, "inspect", "ping", "--timeout", "2"], env=stack.env,
                              cwd=OUTSIDE_CHECKOUT, capture_output=True, text=True)
        if ping.returncode == 0 and len(children(stack.workers.pid)) >= concurrency:
            return
        time.sleep(0.5)
    raise SetupError(f"the Celery worker did not come up within {timeout:.0f} s; see {stack.logs}")


@contextlib.contextmanager
def old_stack(args: argparse.Namespace, python: str, redis_server: str, ranks: int,
              label: str) -> Iterator[OldStack]:
    """Zone + Redis + Celery for one round, all stopped (process groups killed) on the way out."""
    root = os.path.join(args.workdir, f"zone-{label}-{time.time_ns()}")
    logs = os.path.join(args.workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        try:
            zone = start_zone(root, subprocess_mode=True, latency_ms=args.latency_ms)
        except Exception as error:
            raise SetupError(f"the built-in zone did not start: {error}") from error
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        cleanup.callback(zone.stop)
        port = free_port()
        redis = start_service("redis", [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--daemonize", "no"], os.path.join(logs, "redis.log"))
        cleanup.callback(redis.stop)
        deadline = time.monotonic() + 20
        while not redis_ping(port):
            if redis.process.poll() is not None or time.monotonic() > deadline:
                raise SetupError(f"redis-server on port {port} did not answer; see {logs}/redis.log")
            time.sleep(0.05)
        env = old_tool_env(zone, f"redis://127.0.0.1:{port}/0")
        # The worker command of peer.md §11, with -c N.
        workers = start_service("celery", [os.path.join(os.path.dirname(python), "celery"), "-A", OLD_PACKAGE,
                                           "worker", "-l", "error", "-Q", "restart,path,file", "-c", str(ranks),
                                           "--without-mingle", "--without-gossip"],
                                os.path.join(logs, "celery.log"), env=env, cwd=args.workdir)
        cleanup.callback(workers.stop)
        stack = OldStack(zone, redis, workers, env, python, logs)
        wait_for_workers(stack, ranks)
        cleanup.callback(remove_handler_copies)
        yield stack


def remove_handler_copies() -> None:
    """The old workers write every job's handler to /tmp and never delete it (peer.md §2.1)."""
    for path in glob.glob(f"/tmp/event_handler{JOB_PREFIX}*.py"):
        with contextlib.suppress(OSError):
            os.unlink(path)


# ------------------------------------------------------------------------------------------ memory

@dataclass
class RoleMemory:
    """Peak resident memory of the processes of one role during one run."""

    role: str
    processes: int
    max_kib: int
    sum_kib: int


def read_status(pid: int) -> tuple[str, int] | None:
    """(Name, VmHWM in KiB) of a live process, None if it is gone (or a zombie without memory)."""
    try:
        with open(f"/proc/{pid}/status") as source:
            fields = dict(line.split(":", 1) for line in source if ":" in line)
    except OSError:
        return None
    if "VmHWM" not in fields:
        return None
    return fields["Name"].strip(), int(fields["VmHWM"].split()[0])


class MemorySampler:
    """Peak RSS of every process in this script's process tree while one run goes on.

    Roles come from process-tree roots (``roots``: pid -> role, None to ignore that subtree); any
    other descendant is an MPI launcher process (mpiexec, hydra_pmi_proxy) or else ``client_role``.
    Processes alive at the start have their high-water mark reset (clear_refs 5) so the figure
    belongs to this run; processes that exit during the run keep the last VmHWM sampled, which
    misses at most the final ``SAMPLE_SECONDS`` of their life."""

    LAUNCHER = "mpiexec + hydra proxy"

    def __init__(self, roots: dict[int, str | None], client_role: str) -> None:
        self.roots = roots
        self.client_role = client_role
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (role, KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def _tree(self) -> Iterator[tuple[int, str, int]]:
        stack: list[tuple[int, str | None]] = [(pid, None) for pid in children(os.getpid())]
        while stack:
            pid, inherited = stack.pop()
            role = self.roots[pid] if pid in self.roots else inherited
            if pid in self.roots and role is None:
                continue
            status = read_status(pid)
            if status is None:
                continue
            name, hwm = status
            if role is None:
                role = self.LAUNCHER if name.startswith(("mpiexec", "hydra")) else self.client_role
            elif role == self.LAUNCHER and not name.startswith(("mpiexec", "hydra")):
                role = self.client_role  # the ranks under hydra_pmi_proxy
            yield pid, role, hwm
            stack.extend((child, role) for child in children(pid))

    def _sample(self) -> None:
        for pid, role, hwm in self._tree():
            if hwm > self.peaks.get(pid, ("", 0))[1]:
                self.peaks[pid] = (role, hwm)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> "MemorySampler":
        for pid, _, _ in self._tree():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as out:
                out.write("5")
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_role(self) -> list[RoleMemory]:
        roles: dict[str, list[int]] = {}
        for role, kib in self.peaks.values():
            roles.setdefault(role, []).append(kib)
        return [RoleMemory(role, len(v), max(v), sum(v)) for role, v in sorted(roles.items())]


# --------------------------------------------------------------------------------------- measuring

@dataclass
class RunResult:
    """One timed run of one tool: whole-command seconds, the zone's API counts, memory by role."""

    seconds: float
    files: int
    calls: dict[str, int]
    memory: list[RoleMemory]

    @property
    def rate(self) -> float:
        return self.files / self.seconds

    @property
    def calls_per_file(self) -> float:
        return per_file(self.calls, self.files)


def measure(zone: RunningZone, files: int, roots: dict[int, str | None], client_role: str,
            run: Callable[[], float]) -> RunResult:
    before = api_calls(zone)
    with MemorySampler(roots, client_role) as sampler:
        seconds = run()
    return RunResult(seconds, files, delta(before, api_calls(zone)), sampler.by_role())


def run_old(stack: OldStack, src: str, target: str, timeout: float, *extra: str) -> float:
    """The old tool exactly as its README says; job name = the target's last component."""
    argv = [stack.python, "-m", f"{OLD_PACKAGE}.irods_sync", "start", src, target, "--synchronous",
            "--job_name", target.rsplit("/", 1)[1], *extra]
    t = time.perf_counter()
    try:
        done = subprocess.run(argv, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, cwd=OUTSIDE_CHECKOUT)
    except subprocess.TimeoutExpired as error:
        raise RunFailed(f"the old tool did not finish within {timeout:.0f} s: {shlex.join(argv)}") from error
    seconds = time.perf_counter() - t
    if done.returncode:
        raise RunFailed(f"the old tool exited {done.returncode} (255 = failed tasks): {shlex.join(argv)}\n"
                        f"{done.stderr[-3000:]}\nworker log: {stack.logs}/celery.log")
    return seconds


def run_new(stack: OldStack, src: str, target: str, ranks: int, workdir: str, *extra: str) -> float:
    try:
        return run_start(stack.zone, src, target, ranks, workdir, *extra)
    except subprocess.CalledProcessError as error:
        raise RunFailed(f"hpcingest exited {error.returncode}: {shlex.join(map(str, error.cmd))}") from error


# ------------------------------------------------------------------------------------ trees, catalog

@dataclass(frozen=True)
class Facts:
    """What a catalog must hold for a tree: one object per non-directory, the lstat sizes."""

    files: int
    bytes: int


def source_facts(src: str) -> Facts:
    """Every non-directory entry, symlinks to directories included (both tools register them)."""
    files = size = 0
    for top, dirs, names in os.walk(os.fsencode(src)):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            files += 1
            size += os.lstat(os.path.join(top, name)).st_size
    return Facts(files, size)


def catalog(zone: RunningZone, target: str) -> dict[str, int]:
    """Relative logical path -> size of every replica under ``target``."""
    from irods.column import Like
    from irods.models import Collection, DataObject

    result: dict[str, int] = {}
    with zone.session() as session:
        for condition in (Collection.name == target, Like(Collection.name, target + "/%")):
            for row in session.query(Collection.name, DataObject.name, DataObject.size).filter(condition):
                path = f"{row[Collection.name]}/{row[DataObject.name]}"[len(target) + 1:]
                if path in result:
                    raise RunFailed(f"{target}/{path} has more than one replica")
                result[path] = int(row[DataObject.size])
    return result


def verify(zone: RunningZone, facts: Facts, targets: dict[str, str], what: str) -> None:
    """Both catalogs hold exactly the source's files and sizes, and the same names as each other."""
    catalogs = {tool: catalog(zone, target) for tool, target in targets.items()}
    for tool, objects in catalogs.items():
        found = Facts(len(objects), sum(objects.values()))
        if found != facts:
            raise RunFailed(f"after the {what} pass, {tool} landed {found} under {targets[tool]}; "
                            f"the source holds {facts}")
    (a, first), (b, second) = catalogs.items()
    if first != second:
        differ = sorted(set(first.items()) ^ set(second.items()))[:5]
        raise RunFailed(f"after the {what} pass the {a} and {b} catalogs differ, e.g. {differ}")


def register_tree(workdir: str, files: int) -> str:
    """The sample tree of benchmarks/ingest.py, minus its one non-UTF-8 file name.

    The old tool 0.7.0 cannot ingest a non-UTF-8 name below the source root: it maps the logical
    path to the parent collection and every such task fails with "cannot sync file ... to
    collection" (peer.md §3.7 predicted it; the first run of this script confirmed it).  Comparing
    against a failing run would be worthless, so the name is left out."""
    src = os.path.join(workdir, f"tree{files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        sample.generate(src, files=files, seed=11, max_file_size=512)
        for top, _, names in os.walk(os.fsencode(src)):
            for name in names:
                try:
                    name.decode("utf-8")
                except UnicodeDecodeError:
                    os.unlink(os.path.join(top, name))
        open(src + ".complete", "w").close()
    return src


def put_tree(workdir: str, files: int) -> str:
    """``files`` files of 4 KiB, 100 to a directory."""
    src = os.path.join(workdir, f"put{files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        block = os.urandom(4096)
        for i in range(files):
            directory = os.path.join(src, f"d{i // 100:04d}")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"f{i:06d}"), "wb") as out:
                out.write(block)
        open(src + ".complete", "w").close()
    return src


def modify_fraction(src: str, fraction: float, seed: int) -> int:
    """Append one byte to ``fraction`` of the regular files, after the clock has moved on by > 1 s
    (both tools compare mtimes with whole-second resolution somewhere on the way)."""
    regular = [os.path.join(top, name) for top, _, names in os.walk(os.fsencode(src)) for name in names
               if not os.path.islink(os.path.join(top, name))]
    changed = random.Random(seed).sample(regular, max(1, int(len(regular) * fraction)))
    time.sleep(1.1)
    for path in changed:
        with open(path, "ab") as out:
            out.write(b"+")
    return len(changed)


# ------------------------------------------------------------------------------------------ workloads

TOOLS = ("old", "hpcingest")


@dataclass
class Workload:
    """One row of the report: both tools' runs of one pass over all rounds."""

    name: str
    files: int
    ranks: int
    runs: dict[str, list[RunResult]] = field(default_factory=lambda: {tool: [] for tool in TOOLS})

    def median(self, tool: str, value: Callable[[RunResult], float]) -> float:
        return statistics.median(value(r) for r in self.runs[tool])

    def memory(self, tool: str) -> dict[str, RoleMemory]:
        """Per role, the largest figures over the rounds."""
        roles: dict[str, RoleMemory] = {}
        for run in self.runs[tool]:
            for m in run.memory:
                seen = roles.get(m.role)
                roles[m.role] = m if seen is None else RoleMemory(
                    m.role, max(seen.processes, m.processes), max(seen.max_kib, m.max_kib),
                    max(seen.sum_kib, m.sum_kib))
        return roles


@dataclass
class Round:
    """The two targets of one round and how to run each tool against its own."""

    args: argparse.Namespace
    stack: OldStack
    src: str
    ranks: int
    files: int
    targets: dict[str, str]
    order: int  # flips every pass, so neither tool always goes first

    def run_pass(self, workload: Workload, *extra: str) -> None:
        tools = TOOLS if self.order % 2 == 0 else TOOLS[::-1]
        self.order += 1
        for tool in tools:
            if tool == "old":
                result = measure(self.stack.zone, self.files, self.stack.roots(True), "irods_sync CLI",
                                 lambda: run_old(self.stack, self.src, self.targets["old"], self.args.run_timeout,
                                                 *extra))
            else:
                result = measure(self.stack.zone, self.files, self.stack.roots(False), "hpcingest ranks",
                                 lambda: run_new(self.stack, self.src, self.targets["hpcingest"], self.ranks,
                                                 self.args.workdir, *extra))
            workload.runs[tool].append(result)
            print(f"  {workload.name:<34s} {tool:<9s} {result.seconds:9.2f} s {result.rate:9,.0f} files/s "
                  f"{result.calls_per_file:7.3f} calls/file  {json.dumps(result.calls)}", flush=True)


def make_round(args: argparse.Namespace, stack: OldStack, src: str, ranks: int, kind: str, number: int) -> Round:
    stamp = time.time_ns() // 1_000_000
    targets = {tool: f"{stack.zone.home}/{JOB_PREFIX}{kind}_{tool}_n{ranks}_r{number}_{stamp}" for tool in TOOLS}
    return Round(args, stack, src, ranks, source_facts(src).files, targets, number)


def register_workloads(args: argparse.Namespace, python: str, redis_server: str, files: int,
                       ranks: int) -> list[Workload]:
    src = register_tree(args.workdir, files)
    initial = Workload(f"initial REGISTER_SYNC, {files:,} files", files, ranks)
    unchanged = Workload(f"unchanged tree, {files:,} files", files, ranks)
    modified = Workload(f"1% modified, {files:,} files", files, ranks)
    for number in range(args.rounds):
        print(f"\nREGISTER_SYNC {files:,} files, N = {ranks}, round {number + 1}/{args.rounds} "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
        with old_stack(args, python, redis_server, ranks, f"reg{files}n{ranks}") as stack:
            rnd = make_round(args, stack, src, ranks, f"reg{files}", number)
            facts = source_facts(src)
            rnd.run_pass(initial)
            verify(stack.zone, facts, rnd.targets, "initial")
            rnd.run_pass(unchanged)
            changed = modify_fraction(src, 0.01, seed=files + 7919 * number)
            modified.name = f"1% modified ({changed:,} changed), {files:,} files"
            rnd.run_pass(modified)
            verify(stack.zone, source_facts(src), rnd.targets, "1% modified")
    return [initial, unchanged, modified]


def put_workload(args: argparse.Namespace, python: str, redis_server: str, ranks: int) -> Workload:
    src = put_tree(args.workdir, args.put_files)
    handler = handler_file(args.workdir, "PUT")
    workload = Workload(f"PUT, {args.put_files:,} files of 4 KiB", args.put_files, ranks)
    for number in range(args.rounds):
        print(f"\nPUT {args.put_files:,} files, N = {ranks}, round {number + 1}/{args.rounds} "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
        with old_stack(args, python, redis_server, ranks, f"put{ranks}") as stack:
            rnd = make_round(args, stack, src, ranks, "put", number)
            rnd.run_pass(workload, "--event_handler", handler)
            verify(stack.zone, source_facts(src), rnd.targets, "PUT")
    return workload


# ------------------------------------------------------------------------------------------- report

def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def role_cell(m: RoleMemory | None) -> str:
    if m is None:
        return "–"
    return mib(m.max_kib) if m.processes == 1 else f"{mib(m.max_kib)} / {mib(m.sum_kib)} ({m.processes})"


def report(workloads: list[Workload]) -> None:
    print("\n### Throughput (whole commands; median over rounds)\n")
    print("| workload | N | old s | old files/s | hpcingest s | hpcingest files/s | **ratio** "
          "| old API calls/file | hpcingest API calls/file |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        old_rate, new_rate = (w.median(t, lambda r: r.rate) for t in TOOLS)
        print(f"| {w.name} | {w.ranks} | {w.median('old', lambda r: r.seconds):,.2f} | {old_rate:,.0f} "
              f"| {w.median('hpcingest', lambda r: r.seconds):,.2f} | {new_rate:,.0f} | **{new_rate / old_rate:,.1f}×** "
              f"| {w.median('old', lambda r: r.calls_per_file):.3f} "
              f"| {w.median('hpcingest', lambda r: r.calls_per_file):.3f} |")
    print("\n### Peak memory, MiB (VmHWM; one process: its peak; several: max per process / sum (count); "
          "largest over rounds)\n")
    old_roles = ("Redis server", "Celery workers", "irods_sync CLI")
    new_roles = ("hpcingest ranks", MemorySampler.LAUNCHER)
    print("| workload | N | " + " | ".join(f"old: {r}" for r in old_roles) + " | old total | "
          + " | ".join(f"hpcingest: {r}" for r in new_roles) + " | hpcingest total |")
    print("|---|---:|" + "---:|" * (len(old_roles) + len(new_roles) + 2))
    for w in workloads:
        old, new = w.memory("old"), w.memory("hpcingest")
        print(f"| {w.name} | {w.ranks} | " + " | ".join(role_cell(old.get(r)) for r in old_roles)
              + f" | {mib(sum(m.sum_kib for m in old.values()))} | "
              + " | ".join(role_cell(new.get(r)) for r in new_roles)
              + f" | {mib(sum(m.sum_kib for m in new.values()))} |")


def targets_met(workloads: list[Workload]) -> None:
    for prefix, target in (("initial REGISTER_SYNC", 10.0), ("unchanged tree", 20.0)):
        for w in workloads:
            if w.name.startswith(prefix):
                ratio = w.median("hpcingest", lambda r: r.rate) / w.median("old", lambda r: r.rate)
                verdict = "met" if ratio >= target else "NOT met"
                print(f"target ≥ {target:.0f}× on {w.name}, N = {w.ranks}: {ratio:.1f}× — {verdict}")


# --------------------------------------------------------------------------------------------- main

def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int_list, default=[20_000, 100_000], help="register tree sizes")
    parser.add_argument("--ranks", type=int_list, default=[2, 4], help="N: MPI ranks and Celery concurrency")
    parser.add_argument("--put-files", type=int, default=10_000, help="0 skips the PUT workload")
    parser.add_argument("--latency-ms", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per workload (medians)")
    parser.add_argument("--run-timeout", type=float, default=4 * 3600, help="seconds before a run counts as hung")
    parser.add_argument("--venv", default=OLD_VENV, help="the old tool's virtual environment")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-vs-automated-ingest"))
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 files, N = 2, 200 PUT files")
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    if args.quick:
        args.files, args.ranks, args.put_files = [300], [2], 200
    os.makedirs(args.workdir, exist_ok=True)
    # SIGTERM must unwind through the finally blocks that stop Redis, the workers and the zone.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"# hpcingest vs irods-capability-automated-ingest 0.7.0 ({os.cpu_count()} cores), command: "
          f"{shlex.join(['python', *sys.argv])}", flush=True)
    try:
        redis_server = ensure_redis()
        python = ensure_old_venv(args.venv)
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    workloads: list[Workload] = []
    try:
        for files in args.files:
            for ranks in args.ranks:
                workloads += register_workloads(args, python, redis_server, files, ranks)
        if args.put_files:
            for ranks in args.ranks:
                workloads.append(put_workload(args, python, redis_server, ranks))
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"run failed: {error}", file=sys.stderr)
        return 1
    finally:
        if workloads:
            report(workloads)
    targets_met(workloads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
