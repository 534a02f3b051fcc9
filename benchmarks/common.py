"""What several benchmark scripts need: bytecode for the package, an old-style event-handler file,
and a wait for idle CPUs before each run of an A/B."""

from __future__ import annotations

import compileall
import os
import time

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


def busy_share(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that was not idle over ``seconds`` (/proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_idle_cpus(limit: float = 0.1) -> None:
    """Until the CPUs are idle, before each run of an A/B.  Not the load average: after a run
    of 256 ranks it stays high for minutes on an idle machine."""
    while busy_share() > limit:
        time.sleep(2)
