"""``python -m irods_capability_automated_ingest.irods_sync start|stop|watch|list ...``: the old
command line, run by hpcingest.

Cron lines and wrapper scripts written for irods_capability_automated_ingest 0.7.0 keep
working unchanged: the same subcommands and options reach hpcingest's command line (started
plainly it runs as one rank; under ``srun``/``mpiexec`` on every rank).  One difference is
undone here, because scripts test for it: the old tool exited 255 (``sys.exit(-1)``) when a
synchronous ``start`` or a ``watch`` saw failures, where ``hpcingest`` exits 1.  Every other
decision about the old options is hpcingest's own and holds for both names (README,
"Migrating from the Automated Ingest Framework").
"""

from __future__ import annotations

import sys

#: What the old tool exited with when a job had failures.
OLD_FAILURE_STATUS = 255
#: hpcingest's status for "the job had failures" (2 is a usage error, 3 a lost rank, 128+N a signal).
FAILURES_STATUS = 1
_REPORTS_FAILURES = ("start", "watch")
PROG = "python -m irods_capability_automated_ingest.irods_sync"


def old_status(command: str | None, status: int) -> int:
    """The exit status the old tool gave for the outcome hpcingest reports as ``status``."""
    if command in _REPORTS_FAILURES and status == FAILURES_STATUS:
        return OLD_FAILURE_STATUS
    return status


def main(argv: list[str] | None = None) -> int:
    from hpcingest.cli import main as hpcingest_main

    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return old_status(command, hpcingest_main(argv, prog=PROG))


def console_main() -> None:
    """The old console script and ``python -m``: the command line, then launch.exit_process."""
    from hpcingest.launch import exit_process

    exit_process(main())


if __name__ == "__main__":
    console_main()
