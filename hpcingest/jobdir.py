"""Job directories: everything a job keeps, in files every node sees, with no server.

Layout of ``<job_root>/<job_name>/`` (0700; files 0600):

* ``job.json``  -- the job record: options (never a password or S3 secret), the handler
  file's text, status, pass number, start/end times, counters;
* ``state/``    -- the sync-state shards (hpcingest.syncstate);
* ``failures.jsonl`` -- the failure report of the last pass (rank files while it runs);
* ``summary.json`` -- the last pass's summary;
* ``lock`` (or ``lock.owner``) -- the lock a running job holds (hpcingest.joblock).

A job directory is trusted only when the running user owns it and no other user can write
it (:meth:`JobDirectory.check_trusted`): its record names a handler file, a log file and
command-line options that a run executes or writes, so one planted by another user in a
shared ``--job_dir`` must never run (as root least of all).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import re
import stat
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from hpcingest.typedjson import record_from_json

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class JobError(ValueError):
    """A job cannot be created, found or changed; the message says why."""


def default_job_root() -> str:
    home = os.environ.get("HPCINGEST_HOME")
    return os.path.join(home, "jobs") if home else os.path.join(os.path.expanduser("~"), ".hpcingest", "jobs")


def job_root(job_dir: str | None, *, create: bool = False) -> str:
    """The directory holding job directories, absolute: ``job_dir`` (--job_dir), else
    $HPCINGEST_HOME/jobs, else ~/.hpcingest/jobs.  Every command that uses one resolves it
    here, so a root that is a file, lies under a file or cannot be made is one JobError
    (saying where it came from when not given) -- not an OSError traceback from whichever
    call meets it first (listdir in `list`, makedirs in `start`, a 500 on every request of
    `serve`).  A root that does not exist yet is no jobs to readers; ``create`` (whoever
    starts jobs there) makes it, mode 0700."""
    root = os.path.abspath(job_dir or default_job_root())
    origin = ("" if job_dir else " (from $HPCINGEST_HOME; --job_dir chooses another)"
              if os.environ.get("HPCINGEST_HOME") else " (the default; --job_dir chooses another)")

    def unusable(why: str) -> JobError:
        return JobError(f"job root {root}{origin} {why}")

    def because(err: OSError) -> str:
        return "a part of its path is not a directory" if err.errno == errno.ENOTDIR else err.strerror

    try:
        st = os.stat(root)
    except FileNotFoundError:
        if not create:
            return root  # nothing was started there yet: no jobs
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            st = os.stat(root)
        except OSError as err:  # EACCES, EROFS, ENOENT (/proc): not a place for jobs
            raise unusable(f"cannot be made: {because(err)}") from None
    except OSError as err:
        raise unusable(f"cannot be used: {because(err)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise unusable("is not a directory")
    if not os.access(root, os.R_OK | os.X_OK | (os.W_OK if create else 0)):
        raise unusable(f"is not {'writable' if create else 'readable'} by you")
    return root


def check_job_name(name: str) -> str:
    if not _NAME.match(name):
        raise JobError(f"invalid job name {name!r}: use letters, digits and . _ @ + - (max 128), "
                       "starting with a letter or digit")
    return name


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_private(path: str, what: str, *, directory: bool, shared: bool = False, follow: bool = False) -> None:
    """Refuse ``path`` unless it is what it should be (a symbolic link only with ``follow``),
    the running user owns it and no other user can write it.  ``shared``: root may own it
    too, and a directory may be writable by all if it is sticky (like /tmp, where nobody
    can rename or remove another user's entries): the directory holding job directories,
    a site's handler file."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as err:
        raise JobError(f"{what} {path}: {err.strerror}") from None
    check_private_stat(st, path, what, directory=directory, shared=shared)


def check_private_stat(st: os.stat_result, path: str, what: str, *, directory: bool, shared: bool = False) -> None:
    """:func:`check_private` on what a stat of ``path`` gave: for a file already open, whose
    ``fstat`` is what will be read, not what the name leads to a moment later."""
    if stat.S_ISLNK(st.st_mode):
        raise JobError(f"{what} {path} is a symbolic link; refusing it (use the real path)")
    if stat.S_ISDIR(st.st_mode) != directory:
        raise JobError(f"{what} {path} is not a {'directory' if directory else 'regular file'}")
    me = os.geteuid()
    if st.st_uid != me and not (shared and st.st_uid == 0):
        raise JobError(f"{what} {path} belongs to {user_name(st.st_uid)}, not to you ({user_name(me)}): "
                       "refusing it, as hpcingest never runs what another user could have prepared")
    if st.st_mode & 0o022 and not (shared and directory and st.st_mode & stat.S_ISVTX):
        raise JobError(f"{what} {path} can be written by other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                       f"refusing it (`chmod go-w {path}` if its content is yours)")


@dataclass
class JobRecord:
    job_name: str
    source: str
    target: str
    options: dict[str, Any]
    handler_text: str | None = None
    handler_filename: str | None = None
    status: str = "created"  # created, running, finished, failed, stopped
    periodic: bool = False
    pass_number: int = 0
    start_time: float | None = None
    end_time: float | None = None
    counters: dict[str, int | float] = field(default_factory=dict)  # IngestSummary.counters_for_record
    launch: dict[str, Any] = field(default_factory=dict)  # host, pid, ranks of the running pass
    argv: list[str] = field(default_factory=list)  # the start command's arguments, for `resume`
    cwd: str = ""  # where the start command ran: `resume` resolves argv's relative paths there
    last_pass_entries: int | None = None  # entries of the last complete pass (for an ETA)
    pass_token: str = ""  # names the current pass; a resumed pass keeps it, a new pass gets a new one
    pass_complete: bool = False


def write_private(path: str, text: str, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600 (a reader never sees half a file);
    ``durable`` also fsyncs it (records yes, progress reports every few seconds no)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def read_record(path: str, record_type: type[T], what: str) -> T | None:
    """A dataclass record kept as JSON in a job directory, or None when there is none; one
    that cannot be read or does not fit the record, field types included (a damaged file,
    a hand edit), is a JobError naming ``what`` and the file: every command that reads the
    record then says the same one line instead of failing somewhere further on."""
    try:
        with open(path, encoding="utf-8") as f:
            return record_from_json(record_type, json.load(f))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as err:
        raise JobError(f"{what} record {path} is unreadable: {err}") from None


def write_record(path: str, record: Any) -> None:
    """Replace the JSON record at ``path`` with the dataclass ``record`` (atomically, mode 0600)."""
    write_private(path, json.dumps(asdict(record), indent=2) + "\n")


def write_note_once(path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists (atomically: the first writer of many
    ranks wins); True when this call wrote it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    return True


def read_note(path: str) -> str | None:
    """The text of a small note file (a halt or lost-rank reason), None when there is none."""
    try:
        with open(path, encoding="utf-8") as source:
            return source.read().strip() or None
    except FileNotFoundError:
        return None


class JobDirectory:
    def __init__(self, root: str, name: str) -> None:
        self.root = os.path.abspath(root)
        self.name = check_job_name(name)
        self.path = os.path.join(self.root, self.name)

    @property
    def record_path(self) -> str:
        return os.path.join(self.path, "job.json")

    @property
    def state_dir(self) -> str:
        return os.path.join(self.path, "state")

    @property
    def failures_path(self) -> str:
        return os.path.join(self.path, "failures.jsonl")

    @property
    def summary_path(self) -> str:
        return os.path.join(self.path, "summary.json")

    def pass_summary_path(self, pass_number: int) -> str:
        """Every pass's summary is kept (summary.json is the last one's): periodic jobs."""
        return os.path.join(self.path, "summaries", f"pass-{pass_number:04d}.json")

    def profile_dir(self, pass_number: int) -> str:
        return os.path.join(self.path, "profile", f"pass-{pass_number:04d}")

    def exists(self) -> bool:
        return os.path.exists(self.record_path)

    def create(self) -> None:
        """Make (or find) the job directory, refusing one that is not trusted."""
        job_root(self.root, create=True)
        check_private(self.root, "job root", directory=True, shared=True)
        with contextlib.suppress(FileExistsError):  # an existing one is checked below
            os.mkdir(self.path, 0o700)
        with contextlib.suppress(FileExistsError):  # an existing one is checked below
            os.mkdir(self.state_dir, 0o700)
        self.check_trusted()

    def check_trusted(self) -> None:
        """Raise JobError unless the job root, this directory, its record and its state
        directory are the running user's and writable by nobody else."""
        check_private(self.root, "job root", directory=True, shared=True)
        check_private(self.path, "job directory", directory=True)
        if os.path.lexists(self.record_path):
            check_private(self.record_path, "job record", directory=False)
        if os.path.lexists(self.state_dir):
            check_private(self.state_dir, "job state directory", directory=True)

    def owned_by_someone_else(self) -> str | None:
        """The owner's name when another user owns this job directory, else None."""
        try:
            uid = os.lstat(self.path).st_uid
        except OSError:
            return None
        return None if uid == os.geteuid() else user_name(uid)

    def load(self) -> JobRecord:
        record = read_record(self.record_path, JobRecord, "job")
        if record is None:
            raise JobError(f"job {self.name!r} does not exist in {self.root}")
        return record

    def save(self, record: JobRecord) -> None:
        write_record(self.record_path, record)

    def update(self, **changes: Any) -> JobRecord:
        record = self.load()
        for key, value in changes.items():
            setattr(record, key, value)
        self.save(record)
        return record


def list_jobs(root: str) -> list[JobDirectory]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    jobs = []
    for name in names:
        if _NAME.match(name):
            job = JobDirectory(root, name)
            if job.exists():
                jobs.append(job)
    return jobs
