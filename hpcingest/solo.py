"""A world of one process for a machine without an MPI library.

``pip install hpcingest`` brings mpi4py but no MPI (an MPI is an extra, or the site's), and
``hpcingest scan SRC`` started plainly is one process that needs nobody to talk to.  So when
no launcher started the process and no MPI library loads, the commands run on this module
instead of ``mpi4py.MPI``: the few calls hpcingest makes (hpcingest.collectives, the engine's
messages, the scan's shared listing file), done for a world of one rank.  A collective of one
rank copies its input to its output; a message can only be to oneself, so it waits in a
mailbox until probed.  Every call completes at once.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from typing import Any

# datatypes and the reduction operation are only passed through
BYTE, INT, INT64_T, DOUBLE = "BYTE", "INT", "INT64_T", "DOUBLE"
SUM = "SUM"
ANY_SOURCE = ANY_TAG = -1
MODE_WRONLY, MODE_CREATE = os.O_WRONLY, os.O_CREAT


class Request:
    """A request that completed when it was made."""

    def Test(self) -> bool:  # noqa: N802 - mpi4py's names
        return True

    def Wait(self) -> None:  # noqa: N802
        return None


_DONE = Request()


def _bytes(spec: Any) -> memoryview:
    """The buffer of an mpi4py buffer spec (``[buffer, datatype]``)."""
    return memoryview(spec[0]).cast("B")


def _copy(send: Any, recv: Any) -> Request:
    source = _bytes(send)
    _bytes(recv)[:len(source)] = source
    return _DONE


class Status:
    def __init__(self) -> None:
        self.source = self.tag = self.count = 0

    def Get_source(self) -> int:  # noqa: N802
        return self.source

    def Get_tag(self) -> int:  # noqa: N802
        return self.tag

    def Get_count(self, datatype: Any = BYTE) -> int:  # noqa: N802
        return self.count


class Message:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def Recv(self, buf: Any) -> None:  # noqa: N802
        _bytes(buf)[:len(self.payload)] = self.payload


class Comm:
    """A communicator whose only rank is this process."""

    def __init__(self) -> None:
        self._mailbox: deque[tuple[int, bytes]] = deque()

    def Get_rank(self) -> int:  # noqa: N802
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def Idup(self) -> tuple["Comm", Request]:  # noqa: N802
        return Comm(), _DONE

    def Free(self) -> None:  # noqa: N802
        self._mailbox.clear()

    def Abort(self, errorcode: int = 1) -> None:  # noqa: N802
        os._exit(errorcode)

    def Ibarrier(self) -> Request:  # noqa: N802
        return _DONE

    def Ibcast(self, buf: Any, root: int = 0) -> Request:  # noqa: N802
        return _DONE  # the root's buffer is everybody's

    def Iallgather(self, sendbuf: Any, recvbuf: Any) -> Request:  # noqa: N802
        return _copy(sendbuf, recvbuf)

    def Iexscan(self, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> Request:  # noqa: N802
        return _DONE  # rank 0's result is undefined in MPI too

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Request:  # noqa: N802
        self._mailbox.append((tag, bytes(_bytes(buf))))
        return _DONE

    def Improbe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: Status | None = None) -> Message | None:  # noqa: N802
        if not self._mailbox:
            return None
        found_tag, payload = self._mailbox.popleft()
        if status is not None:
            status.source, status.tag, status.count = 0, found_tag, len(payload)
        return Message(payload)


COMM_WORLD = Comm()


class File:
    """MPI-IO's shared file, written by its one rank at explicit offsets."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def Open(cls, comm: Comm, filename: str, amode: int = MODE_WRONLY | MODE_CREATE) -> "File":  # noqa: N802
        return cls(os.open(filename, amode, 0o666))

    def Write_at(self, offset: int, buf: Any) -> None:  # noqa: N802
        data = bytes(buf)
        while data:
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written

    def Close(self) -> None:  # noqa: N802
        os.close(self._fd)


def Get_processor_name() -> str:  # noqa: N802
    return socket.gethostname()


def Get_library_version() -> str:  # noqa: N802
    return "no MPI library: hpcingest runs as one process (hpcingest.solo)"
