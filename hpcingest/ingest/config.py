"""Everything `start` checks before any rank does work, and the validated job configuration.

Rank 0 builds an IngestConfig (or a one-line error) and broadcasts it; every other rank
only ever sees a valid configuration.  Nothing here holds an iRODS password; the S3 secret
travels to the ranks in memory (each rank needs it to sign requests) and is never written.
"""

from __future__ import annotations

import os
import posixpath
import stat
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcingest.compat.options import ignored_option_warnings
from hpcingest.exclusions import Exclusions
from hpcingest.ingest.monitor import STALL_AFTER_S
from hpcingest.logs import LogOptions, LogOptionsError
from hpcingest.jobdir import check_job_name, check_private_stat, job_root
from hpcingest.outputs import check_output
from hpcingest.sources import check_source, check_walk_options

if TYPE_CHECKING:
    from hpcingest.sources.s3 import S3Settings

class ConfigError(ValueError):
    """A usage error: printed as one line, exit status 2."""


@dataclass
class IngestConfig:
    root: bytes
    target: str
    job_name: str
    job_root: str
    files_per_task: int
    exclusions: Exclusions
    handler_text: str | None
    handler_filename: str | None
    ignore_cache: bool = False
    initial_ingest: bool = False
    synchronous: bool = False
    progress: bool = False
    interval: int | None = None
    idle_disconnect_s: int = 60
    irods_retry_s: float = 60.0  # budget for reaching iRODS, at start and after a lost connection
    irods_connections: int | None = None
    checksum: bool = False
    verify_checksum: bool = False
    log: dict = field(default_factory=dict)
    profile: bool = False
    s3: S3Settings | None = None  # an S3 source: root is b"/bucket/prefix"; holds the secret in memory only
    max_rate: float | None = None  # entries per second for the whole job
    stat_threads: int = 1  # threads statting one batch at once
    dead_rank_timeout_s: float = 60.0  # a rank silent this long ends the job (hpcingest.ingest.liveness)
    min_age: float | None = None  # landing zones: entries changed less than this many seconds ago wait
    metrics_file: str | None = None  # Prometheus textfile (node_exporter) rank 0 keeps up to date
    stall_after: float = STALL_AFTER_S  # no progress on any rank for this long: reported as stalled
    warnings: list[str] = field(default_factory=list)

    def options_for_record(self) -> dict:
        """What the job record keeps (no secrets, JSON-friendly)."""
        return {"files_per_task": self.files_per_task, "ignore_cache": self.ignore_cache,
                "initial_ingest": self.initial_ingest, "synchronous": self.synchronous,
                "interval": self.interval, "irods_idle_disconnect_seconds": self.idle_disconnect_s,
                "irods_retry_seconds": self.irods_retry_s,
                "irods_connections": self.irods_connections, "checksum": self.checksum,
                "verify_checksum": self.verify_checksum, "log": self.log, "profile": self.profile,
                "s3": self.s3.public_options() if self.s3 is not None else None, "max_rate": self.max_rate,
                "stat_threads": self.stat_threads, "dead_rank_timeout": self.dead_rank_timeout_s,
                "min_age": self.min_age, "metrics_file": self.metrics_file, "stall_after": self.stall_after}


def check_target(target: str) -> str:
    """An absolute, normalised collection path under a zone (never "/")."""
    if not target:
        raise ConfigError("TARGET_COLLECTION is empty: give an absolute collection path (/zone/home/user/...)")
    if not target.startswith("/"):
        raise ConfigError(f"target collection {target!r} must be an absolute path (/zone/home/user/...)")
    normalised = posixpath.normpath(target)
    if normalised.startswith("//"):
        normalised = "/" + normalised.lstrip("/")
    if normalised == "/":
        raise ConfigError("target collection '/': Root may only contain collections which represent zones")
    return normalised


def check_metrics_file(path: str | None) -> str | None:
    """--metrics_file: its directory must exist and be writable (the file is replaced there
    atomically, through a temporary file beside it, as node_exporter's textfile collector needs),
    and what is there must be a regular file: replacing it deleted a device or a link (as root,
    ``--metrics_file /dev/...``, or a link someone planted in a shared textfile directory)."""
    if path is None:
        return None
    if not path:
        raise ConfigError("--metrics_file is empty: give a file name (e.g. /var/lib/node_exporter/hpcingest.prom)")
    path = os.path.abspath(path)
    if not path.endswith(".prom"):
        raise ConfigError(f"--metrics_file {path} must end in .prom: node_exporter's textfile collector reads "
                          "only *.prom files")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--metrics_file {path}: directory {directory} does not exist or is not writable")
    try:
        check_output("--metrics_file", path, regular_only=True,
                     why="it is replaced by a regular file every few seconds, so give the name of a new or "
                         "regular file")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return path


def read_handler(path: str | None) -> tuple[str | None, str | None]:
    """The handler file's text.  Only a regular file: ``/dev/zero`` was read forever, and a
    FIFO would block its open (hence O_NONBLOCK, which a regular file ignores).  Its code runs
    as the ingesting user (often root): the file must be that user's (or root's) and writable
    by nobody else, on `start` as on `resume` (a job could start that it could not resume).
    A leading byte-order mark is dropped, as Python's own import drops it."""
    if path is None:
        return None, None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, encoding="utf-8-sig") as f:
            st = os.fstat(fd)  # the file read, not what the name leads to a moment later
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"--event_handler {path!r} is not a regular file: give the handler's .py file")
            check_private_stat(st, path, "the event handler", directory=False, shared=True)
            return f.read(), os.path.abspath(path)
    except OSError as err:
        raise ConfigError(f"--event_handler {path!r}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"--event_handler {path!r} is not UTF-8 text: {err}") from None


def log_options(args) -> LogOptions:
    """The --log_* options, checked (a bad level or rotation unit is a usage error)."""
    try:
        return LogOptions(args.log_filename, args.log_level, args.log_when, args.log_interval).validate()
    except LogOptionsError as err:
        raise ConfigError(str(err)) from None


def build_config(args) -> IngestConfig:
    check_walk_options(args)
    if args.interval is not None and args.interval < 1:
        raise ConfigError("--interval must be a positive number of seconds")
    if args.irods_connections is not None and args.irods_connections < 1:
        raise ConfigError("--irods_connections must be at least 1")
    if args.irods_idle_disconnect_seconds < 1:
        raise ConfigError("--irods_idle_disconnect_seconds must be at least 1")
    if not args.dead_rank_timeout >= 1:
        raise ConfigError("--dead_rank_timeout must be at least 1 second")
    if not args.irods_retry_seconds > 0:
        raise ConfigError("--irods_retry_seconds must be a positive number of seconds")
    min_age = args.min_age
    if min_age is not None and not min_age >= 0:
        raise ConfigError("--min_age must be a number of seconds (0 or more)")
    metrics_file = check_metrics_file(args.metrics_file)
    if not args.stall_after > 0:
        raise ConfigError("--stall_after must be a positive number of seconds")
    target = check_target(args.target)
    exclusions = Exclusions.parse(args.exclude_file_type, args.exclude_file_name, args.exclude_directory_name)
    root, s3 = check_source(args)
    handler_text, handler_filename = read_handler(args.event_handler)
    job_name = check_job_name(args.job_name) if args.job_name is not None else str(uuid.uuid1())
    warnings = ignored_option_warnings(args)
    return IngestConfig(
        root=root, target=target, job_name=job_name, s3=s3, max_rate=args.max_rate, stat_threads=args.stat_threads,
        job_root=job_root(args.job_dir),
        files_per_task=args.files_per_task, exclusions=exclusions,
        handler_text=handler_text, handler_filename=handler_filename,
        ignore_cache=args.ignore_cache, initial_ingest=args.initial_ingest, synchronous=args.synchronous,
        progress=args.progress, interval=args.interval, idle_disconnect_s=args.irods_idle_disconnect_seconds,
        irods_retry_s=args.irods_retry_seconds,
        irods_connections=args.irods_connections, checksum=args.checksum, verify_checksum=args.verify_checksum,
        log=log_options(args).as_mapping(), stall_after=args.stall_after,
        profile=args.profile, dead_rank_timeout_s=args.dead_rank_timeout, warnings=warnings,
        min_age=min_age or None, metrics_file=metrics_file,
    )
