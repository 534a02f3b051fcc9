"""DATA_OBJ_PUT (API 606) with the file's bytes inline: a whole small-file upload in one request.

PRC uploads through open + seek + write + seek + close (five requests, plus two existence
queries before them).  The icommands instead send files up to ``irodsMaxSizeForSingleBuffer``
(32 MiB by default) as one DATA_OBJ_PUT whose byte stream carries the data and whose
``dataIncluded`` keyword tells the server not to set up a parallel portal (rcDataObjPut.cpp,
rsDataObjPut.cpp ``single_buffer_put`` in irods/irods).  PRC has every message class needed to
send exactly that request, so no PRC change is required.
"""

from __future__ import annotations

import os

from irods.api_number import api_number
from irods.message import FileOpenRequest, StringStringMap, iRODSMessage
from irods.session import iRODSSession

SINGLE_BUFFER_LIMIT = 32 * 1024 * 1024  # irodsMaxSizeForSingleBuffer default, in bytes
PUT_OPR = 1
_CREATE_TRUNCATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def put_bytes(session: iRODSSession, data: bytes, logical_path: str, mode: int = 0o644,
              options: dict[str, str] | None = None) -> None:
    """Create or (with ``forceFlag`` in options) overwrite ``logical_path`` with ``data``, in one call.

    Without ``destRescName`` the environment's ``irods_default_resource`` goes along, as
    python-irodsclient's own open and put send it: otherwise files up to 32 MiB would land on
    the server's default resource and larger ones (PRC's put) on the environment's."""
    if len(data) > SINGLE_BUFFER_LIMIT:
        raise ValueError(f"{len(data)} bytes is over the single-buffer limit of {SINGLE_BUFFER_LIMIT}")
    keywords = {"dataSize": str(len(data)), "dataIncluded": "", "dataType": "generic", **(options or {})}
    default_resource = getattr(session, "default_resource", None)  # absent without an environment file
    if default_resource and "destRescName" not in keywords:
        keywords["destRescName"] = default_resource
    request = FileOpenRequest(objPath=logical_path, createMode=mode, openFlags=_CREATE_TRUNCATE, offset=0,
                              dataSize=len(data), numThreads=0, oprType=PUT_OPR,
                              KeyValPair_PI=StringStringMap(keywords))
    message = iRODSMessage("RODS_API_REQ", msg=request, bs=data, int_info=api_number["DATA_OBJ_PUT_AN"])
    with session.pool.get_connection() as conn:
        conn.send(message)
        conn.recv()
