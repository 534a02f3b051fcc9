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

from hpcingest.irods.errors import IrodsOperationError
from hpcingest.ingest.monitor import request_stop
from hpcingest.jobdir import read_note, write_note_once

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
    write_note_once(halt_path(job_path), reason)
    request_stop(job_path, "halt")


def halt_reason(job_path: str) -> str | None:
    """Why the job was halted, or None when it was not."""
    return read_note(halt_path(job_path))


def clear_halt(job_path: str) -> None:
    """A new run starts without the reason an earlier run stopped for."""
    try:
        os.unlink(halt_path(job_path))
    except FileNotFoundError:
        pass
