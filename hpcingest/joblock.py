"""The job lock: at most one `start`/`resume` of a job at a time, taken atomically before any work.

Reading the job record and deciding "not running" is a check-then-act race: two runs started
at the same instant both pass it and then fight over the sync-state shards.  The lock closes
it.  Rank 0 takes it before it writes anything and holds it for the life of the process (all
passes of a periodic job); any other run of the same job is refused at once.

* ``flock`` (the default): an exclusive ``flock(2)`` on ``<job>/lock``.  The kernel drops it
  when the process dies (kill -9 included), so a crashed job can be resumed at once.  Linux
  NFS clients (2.6.12 and later) emulate flock with POSIX byte-range locks, which the server
  sees, so the lock holds across nodes; GPFS locks across nodes; Lustre does only when
  mounted with ``-o flock`` (``-o localflock`` makes it node-local, and without either option
  flock fails, see below).
* ``file``: an ``O_EXCL``-created ``<job>/lock.owner`` holding host, pid, the process start
  time and a token, its mtime refreshed every few seconds.  Creation is atomic on local
  filesystems, NFSv3+ and Lustre.  A lock file left by a process that died is broken when
  it is provably stale: on the same host, that process no longer exists (a reused pid is
  told apart by its start time); from another host, its mtime is more than
  :data:`STALE_AFTER_S` seconds old.  Used when flock is not supported (ENOLCK, ENOSYS,
  EOPNOTSUPP, EINVAL) or when ``HPCINGEST_JOB_LOCK=file`` asks for it (Lustre with
  ``localflock``, where flock would only exclude runs on the same node).
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from hpcingest.jobdir import JobError, check_private

MODE_VARIABLE = "HPCINGEST_JOB_LOCK"
STALE_AFTER_S = 30.0  # a lock file not refreshed for this long belongs to a dead process
REFRESH_S = 5.0
_FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class JobLocked(JobError):
    """Another run of the job holds its lock."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds a job lock: shown in the refusal, and used to tell a stale lock file."""

    host: str
    pid: int
    started: str  # the process's start time (/proc/PID/stat field 22), "" when unknown
    since: float
    token: str

    @classmethod
    def this_process(cls) -> "LockOwner":
        return cls(socket.gethostname(), os.getpid(), process_start_time(os.getpid()) or "", time.time(),
                   uuid.uuid4().hex)

    @classmethod
    def parse(cls, text: str) -> "LockOwner | None":
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None

    def to_text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.since))}"


def process_start_time(pid: int) -> str | None:
    """The start time of a local process in clock ticks since boot, None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 and fields[0] not in ("Z", "X") else None


class JobLock:
    """The lock of one job directory; :meth:`acquire` raises :class:`JobLocked` when it is taken,
    :meth:`wait` waits for it.  ``name``: the lock's file in the job directory (``lock``, and
    ``lock.owner`` for the lock file), so a job can have more than one."""

    def __init__(self, job_path: str, job_name: str, mode: str | None = None, name: str = "lock") -> None:
        self.job_path = job_path
        self.job_name = job_name
        self.name = name
        self.mode = mode or os.environ.get(MODE_VARIABLE) or "flock"
        if self.mode not in ("flock", "file"):
            raise JobError(f"${MODE_VARIABLE}={self.mode!r}: use flock or file")
        self.owner = LockOwner.this_process()
        self._fd: int | None = None
        self._held_file = False
        self._stop_refresh = threading.Event()

    @property
    def flock_path(self) -> str:
        return os.path.join(self.job_path, self.name)

    @property
    def owner_path(self) -> str:
        return os.path.join(self.job_path, f"{self.name}.owner")

    def acquire(self) -> None:
        """Take the lock now or raise; it stays held until :meth:`release` or the process ends."""
        if self.mode == "flock" and self._try_flock():
            return
        self._take_owner_file()

    def wait(self, poll_s: float = 0.05) -> None:
        """Take the lock, waiting while another process holds it: for a short critical section
        (a record's read-change-write), not for a run.  The lock file is looked at every
        ``poll_s``; a holder that died leaves it stale and it is broken as in :meth:`acquire`."""
        if self.mode == "flock" and self._try_flock(wait=True):
            return
        while True:
            try:
                self._take_owner_file()
                return
            except JobLocked:
                time.sleep(poll_s)

    def release(self) -> None:
        if self in _held:
            _held.remove(self)
        if self._fd is not None:
            os.close(self._fd)  # never unlinked: a waiter may hold the same file open
            self._fd = None
        if self._held_file:
            self._stop_refresh.set()
            if self._read_owner() == self.owner:
                os.unlink(self.owner_path)
            self._held_file = False

    # --- flock ---------------------------------------------------------------------------

    def _try_flock(self, wait: bool = False) -> bool:
        """True when held; False when this filesystem has no flock (use the lock file)."""
        fd = os.open(self.flock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            check_private(self.flock_path, "job lock file", directory=False)
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_text(fd)
            os.close(fd)
            self._refuse(LockOwner.parse(holder))
        except OSError as err:
            os.close(fd)
            if err.errno in _FLOCK_UNSUPPORTED:
                return False
            raise JobError(f"cannot lock {self.flock_path}: {err.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.owner.to_text().encode(), 0)
        self._hold(fd=fd)
        return True

    # --- O_EXCL lock file ----------------------------------------------------------------

    def _take_owner_file(self) -> None:
        for _ in range(2):  # a second try after breaking a stale lock file
            try:
                fd = os.open(self.owner_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                holder = self._read_owner()
                if not self._stale(holder):
                    self._refuse(holder)
                self._break(holder)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.owner.to_text())
            self._hold()
            threading.Thread(target=self._refresh, name="hpcingest-job-lock", daemon=True).start()
            return
        self._refuse(self._read_owner())

    def _stale(self, holder: LockOwner | None) -> bool:
        """Provably left behind; an unreadable file (a racer between creating and writing it)
        only once it is old."""
        if holder is not None and holder.host == socket.gethostname():
            running = process_start_time(holder.pid)
            return running is None or bool(holder.started) and running != holder.started
        try:
            age = time.time() - os.stat(self.owner_path).st_mtime
        except FileNotFoundError:
            return True
        return age > STALE_AFTER_S

    def _break(self, holder: LockOwner | None) -> None:
        """Remove a stale lock file, and only that one: set aside under a unique name, then
        checked, so a racer's fresh lock taken meanwhile is put back, not deleted."""
        aside = f"{self.owner_path}.stale.{self.owner.token}"
        try:
            os.rename(self.owner_path, aside)
        except FileNotFoundError:
            return
        with open(aside) as f:
            moved = LockOwner.parse(f.read())
        if holder is not None and moved != holder:
            try:
                os.link(aside, self.owner_path)
            except FileExistsError:
                pass
            os.unlink(aside)
            self._refuse(moved)
        os.unlink(aside)

    def _refresh(self) -> None:
        while not self._stop_refresh.wait(REFRESH_S):
            try:
                os.utime(self.owner_path)
            except OSError:
                pass  # the next refresh tries again; a lock file 30 s old is taken as stale

    def _read_owner(self) -> LockOwner | None:
        try:
            with open(self.owner_path) as f:
                return LockOwner.parse(f.read())
        except FileNotFoundError:
            return None

    # --- both ----------------------------------------------------------------------------

    def _hold(self, fd: int | None = None) -> None:
        self._fd = fd
        self._held_file = fd is None
        _held.append(self)  # a lock object that is collected would close its descriptor

    def _refuse(self, holder: LockOwner | None):
        who = f" ({holder.describe()})" if holder is not None else ""
        raise JobLocked(f"job {self.job_name!r} is already running{who}: see `hpcingest list`; "
                        f"`hpcingest stop {self.job_name}` stops it")


_held: list[JobLock] = []


@atexit.register
def _release_all() -> None:
    for lock in list(_held):
        lock.release()


def _read_text(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace")
    except OSError:
        return ""
