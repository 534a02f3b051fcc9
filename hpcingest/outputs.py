"""Files hpcingest writes where the user said: scan's --list and --json, profile's HTML and PNG,
start's --metrics_file, the service's timeline pages, the sample tree's files.

Why one module: hpcingest runs as root on HPC systems, often in shared directories (/tmp,
project scratch) where anyone may plant a symlink or a device under the name we are about to
write.  Opening such a name for writing follows the link and overwrites its target, and
replacing it deletes someone's device or link.  So an output that exists must be a regular
file (it is replaced) or is refused; a new file is only ever created (O_EXCL: never through a
link, never over anything); and a replaced file is written beside its name first and renamed
over it (a reader never sees half a file, and rename replaces a link instead of following it).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from hpcingest.records import EntryType

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def check_output(option: str, path: str, regular_only: bool, why: str = "") -> None:
    """Raise ValueError (one line naming ``option``) unless ``path`` may be written: its directory
    exists, it is not a directory, and (``regular_only``: outputs that are replaced) it is nothing
    but a regular file if it exists.  Without ``regular_only`` (scan --json, written in place) a
    link is followed: ``/dev/stdout`` and a FIFO with a reader are legitimate there.  ``why``
    ends the refusal of a non-regular file, saying what the option needs instead."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"{option}: directory {parent!r} does not exist")
    try:
        st = os.lstat(path) if regular_only else os.stat(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise ValueError(f"{option}: {path!r}: {err.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{option}: {path!r} is a directory")
    if regular_only and not stat.S_ISREG(st.st_mode):
        kind = EntryType.from_mode(st.st_mode).value
        raise ValueError(f"{option}: {path!r} exists and is not a regular file (a {kind})"
                         + (f"; {why}" if why else "; it is left as it is: give the name of a new or regular file"))


def same_file(first: str, second: str) -> bool:
    """Whether two names reach one file: the same name once links and ``..`` are resolved
    (one of them may not exist yet), or two names of one existing file (a hard link)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def create_new(path: str | bytes, mode: int = 0o666) -> int:
    """A descriptor of a new file at ``path``, open for writing; FileExistsError when anything is
    there already (a link too: it is neither followed nor replaced)."""
    return os.open(path, _CREATE, mode)


def replace_file(path: str, data: bytes, mode: int = 0o666) -> None:
    """Put ``data`` at ``path`` atomically: written into a new file beside it, then renamed over
    it.  ``mode`` is filtered by the umask, as open() does, so a reader of another user
    (node_exporter's textfile collector) can read what it could read before.  What has appeared
    at ``path`` since the options were checked is refused unless it is a regular file
    (FileExistsError); a link put there in the last instant is replaced by the rename, never
    followed.  The temporary name is random and hidden (``.NAME.XXXX.tmp``): no collector reads
    it, and nobody can plant it in advance."""
    directory, name = os.path.split(os.path.abspath(path))
    while True:
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = create_new(temporary, mode)
            break
        except FileExistsError:
            continue
    try:
        with open(fd, "wb") as file:
            file.write(data)
        _refuse_non_regular(path)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _refuse_non_regular(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        kind = EntryType.from_mode(st.st_mode).value
        raise FileExistsError(errno.EEXIST, f"exists and is not a regular file (a {kind}); it is left as it is", path)


def describe(err: OSError) -> str:
    """One line for a failed write: the file and what went wrong, without Python's ``[Errno N]``."""
    if err.strerror and err.filename is not None:
        return f"{os.fsdecode(err.filename)!r}: {err.strerror}"
    return str(err)
