"""Stopping a whole job for a refusal that no file of it can get past.

A server that refuses this user path registration (PATH_REG_NOT_ALLOWED under iRODS's default
policy) or an operation that needs a rodsadmin would refuse every file alike: reporting each
one as a failure buries the cause under thousands of lines.  The first rank that meets such a
refusal records the reason in the job directory and writes the job's ``stop`` file, so every
rank finishes its current item and checkpoints as for `hpcingest stop`; rank 0 then prints the
reason once and exits non-zero, and rerunning the command resumes the pass.
"""

from __future__ import annotations

import os
import time

from hpcingest.irods.errors import IrodsOperationError
from hpcingest.ingest.monitor import stop_path

HALT_FILE = "halt"


def halt_path(job_path: str) -> str:
    return os.path.join(job_path, HALT_FILE)


def refused_registration_message(error: IrodsOperationError) -> str:
    return (f"the iRODS server refused to register files in place ({error.name}, {error.code}): registering "
            "needs a rodsadmin, or a server policy that allows path registration (core.re's "
            "acSetChkFilePathPerm); or ingest with PUT instead. Nothing more was tried; rerun the same "
            "command to resume once that is changed")


def request_halt(job_path: str, reason: str) -> None:
    """Record ``reason`` (the first rank's wins) and ask every rank to stop."""
    try:
        fd = os.open(halt_path(job_path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(reason + "\n")
    with open(os.open(stop_path(job_path), os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
        out.write(f"{time.time()}\n")


def halt_reason(job_path: str) -> str | None:
    """Why the job was halted, or None when it was not."""
    try:
        with open(halt_path(job_path), encoding="utf-8") as source:
            return source.read().strip() or None
    except FileNotFoundError:
        return None


def clear_halt(job_path: str) -> None:
    """A new run starts without the reason an earlier run stopped for."""
    try:
        os.unlink(halt_path(job_path))
    except FileNotFoundError:
        pass
