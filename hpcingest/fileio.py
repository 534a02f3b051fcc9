"""Exact reads of open source files, and the error that says the source changed under us.

A transfer copies exactly the bytes it decided on when the entry was statted: a file that
grows meanwhile contributes no more (a PUT_APPEND of a log growing at 100 MB/s must end), and
one that shrank makes the transfer fail instead of storing fewer bytes than were counted.
"""

from __future__ import annotations

import errno
import os


class SourceChanged(OSError):
    """The entry on disk is no longer what the walk statted (swapped, truncated, rewritten):
    nothing was read from it, or what was read is not one consistent version of it."""

    def __init__(self, message: str, relpath: bytes = b"") -> None:
        super().__init__(errno.ESTALE, message)
        self.relpath = relpath
        self.name = "SOURCE_CHANGED"  # the failure report's error name
        self.code = None

    def __str__(self) -> str:
        return self.strerror


def read_exactly(fd: int, offset: int, count: int) -> bytes:
    """``count`` bytes of an open file from ``offset`` (pread: the descriptor's position is
    left alone); SourceChanged when the file ends first."""
    parts, done = [], 0
    while done < count:
        chunk = os.pread(fd, count - done, offset + done)
        if not chunk:
            raise SourceChanged(f"the file ended after {offset + done} bytes, {offset + count} were to be read "
                                "(it shrank since it was listed)")
        parts.append(chunk)
        done += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)
