"""What several benchmark scripts need: bytecode for the package, an old-style event-handler file,
the machine's CPU busy share and a wait for idle CPUs before each run of an A/B, and the launcher's
command line."""

from __future__ import annotations

import compileall
import os
import threading
import time

from hpcingest.launch import mpiexec_path

_HANDLER = """from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.{operation}
"""


def handler_file(workdir: str, operation: str) -> str:
    """Write (or rewrite) ``<workdir>/<operation>_handler.py`` and return its path."""
    path = os.path.join(workdir, f"{operation.lower()}_handler.py")
    with open(path, "w") as f:
        f.write(_HANDLER.format(operation=operation))
    return path


def precompile() -> None:
    """Write hpcingest's bytecode before timing anything.

    A pip-installed package is byte-compiled at install time; an editable checkout run with
    PYTHONDONTWRITEBYTECODE (as in some sandboxes and CI images) would otherwise compile ~50
    modules from source in every rank of every run, about 0.1 s of CPU per rank that no real
    installation pays.  (Python reads existing .pyc files whatever that variable says.)"""
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hpcingest")
    compileall.compile_dir(package, quiet=1)


class CpuMeter:
    """Busy share of the machine's CPUs between start and stop, from /proc/stat."""

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def __enter__(self) -> "CpuMeter":
        self._busy, self._total = self._read()
        return self

    def __exit__(self, *exc) -> None:
        busy, total = self._read()
        self.busy_share = (busy - self._busy) / max(1, total - self._total)


class PeriodicSampler:
    """Calls ``sample()`` as the block starts, every ``interval`` s while it runs (a thread of its
    own), and as it ends: for what a benchmark reads of the machine beside the command it runs."""

    interval = 0.2

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


class CpuTimeline(PeriodicSampler):
    """The machine's CPU counters sampled while the block runs, so the busy share of a window
    known only afterwards (a walk inside a command whose start-up is CPU-bound) can be read:
    ``share(t0, t1)`` on the ``time.time()`` clock; ``busy_share`` is the whole block's."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []

    def sample(self) -> None:
        busy, total = CpuMeter._read()
        self.samples.append((time.time(), busy, total))

    @property
    def busy_share(self) -> float:
        return self._between(self.samples[0], self.samples[-1])

    def share(self, t0: float, t1: float) -> float:
        """Busy share between the last sample at or before ``t0`` and the first at or after ``t1``."""
        first = max((s for s in self.samples if s[0] <= t0), default=self.samples[0])
        last = min((s for s in self.samples if s[0] >= t1), default=self.samples[-1])
        return self._between(first, last)

    @staticmethod
    def _between(first: tuple[float, int, int], last: tuple[float, int, int]) -> float:
        return (last[1] - first[1]) / max(1, last[2] - first[2])


def wait_for_idle_cpus(limit: float = 0.1) -> None:
    """Until the CPUs are idle, before each run of an A/B.  Not the load average: after a run
    of 256 ranks it stays high for minutes on an idle machine."""
    while True:
        with CpuMeter() as meter:
            time.sleep(1.0)
        if meter.busy_share <= limit:
            return
        time.sleep(2)


def launch_prefix(launcher: str, ranks: int) -> list[str]:
    """The command line that starts ``ranks`` ranks: the venv's mpiexec, or srun on the local Slurm."""
    if launcher == "srun":
        return ["srun", "--mpi=pmi2", "-O", "-n", str(ranks)]
    return [mpiexec_path(), "-n", str(ranks)]
