"""iRODS error codes the zone returns, and the exception that carries one to the reply.

Each code is the real server's for the same condition (lib/core/include/irods/rodsErrorTable.h).
python-irodsclient 3.3.0 lacks a class for some of them (PATH_REG_NOT_ALLOWED): it raises
``KeyError(code)`` for those after reading the whole reply, exactly as with a real server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SYS_HEADER_READ_LEN_ERR = -4000
SYS_UNMATCHED_API_NUM = -12000
SYS_NO_API_PRIV = -13000
SYS_FILE_DESC_OUT_OF_RANGE = -19000
SYS_INVALID_FILE_PATH = -31000
SYS_PROXYUSER_NO_PRIV = -39000
SYS_COPY_ALREADY_IN_RESC = -46000
SYS_NOT_SUPPORTED = -66000
SYS_RESC_DOES_NOT_EXIST = -78000
PATH_REG_NOT_ALLOWED = -129000
SYS_INVALID_INPUT_PARAM = -130000
SYS_BAD_INPUT = -158000
SYS_REPLICA_DOES_NOT_EXIST = -164000
USER_PACKSTRUCT_INPUT_ERR = -308000
USER_CHKSUM_MISMATCH = -314000
OVERWRITE_WITHOUT_FORCE_FLAG = -312000
USER_INPUT_PATH_ERR = -317000
CANT_RM_NON_EMPTY_HOME_COLL = -354000
BAD_INPUT_DESC_INDEX = -345000
OBJ_PATH_DOES_NOT_EXIST = -358000
USER_INCOMPATIBLE_PARAMS = -402000
LOCKED_DATA_OBJECT_ACCESS = -406000
CHECK_VERIFICATION_RESULTS = -407000
UNIX_FILE_OPEN_ERR = -510000
UNIX_FILE_CREATE_ERR = -511000
UNIX_FILE_READ_ERR = -512000
UNIX_FILE_WRITE_ERR = -513000
UNIX_FILE_UNLINK_ERR = -515000
UNIX_FILE_STAT_ERR = -516000
UNIX_FILE_LSEEK_ERR = -518000
UNIX_FILE_MKDIR_ERR = -520000
UNIX_FILE_GET_FS_FREESPACE_ERR = -526000
CAT_SQL_ERR = -806000
CAT_NO_ROWS_FOUND = -808000
CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME = -809000
CAT_INVALID_RESOURCE_TYPE = -810000
CAT_UNKNOWN_COLLECTION = -814000
CAT_INVALID_ARGUMENT = -816000
CAT_UNKNOWN_FILE = -817000
CAT_NO_ACCESS_PERMISSION = -818000
CAT_SUCCESS_BUT_WITH_NO_INFO = -819000
CAT_COLLECTION_NOT_EMPTY = -821000
CAT_NOT_OPEN = -824000
CAT_INVALID_AUTHENTICATION = -826000
CAT_INVALID_USER = -827000
CAT_INSUFFICIENT_PRIVILEGE_LEVEL = -830000
CAT_INVALID_RESOURCE = -831000
CAT_NAME_EXISTS_AS_COLLECTION = -833000
CAT_NAME_EXISTS_AS_DATAOBJ = -834000
CAT_RESOURCE_NOT_EMPTY = -835000
CAT_NO_CHECKSUM_FOR_REPLICA = -862000
HIERARCHY_ERROR = -1803000
DIRECT_CHILD_ACCESS = -1816000


@dataclass
class ZoneError(Exception):
    """An iRODS status to send back as a negative ``intInfo``.

    ``body`` is an optional reply body: a JSON-serialisable value for the JSON APIs (atomic
    metadata answers errors with one, and PRC reads it from the exception), or already packed
    bytes.  ``stack`` lists (code, message) entries for the RError stack when there are several.
    """

    code: int
    message: str = ""
    body: Any = None
    stack: list[tuple[int, str]] | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def errno_code(base: int, err: OSError) -> int:
    """iRODS folds errno into the code (base - errno); PRC recovers it from ``abs(code) % 1000``."""
    return base - (err.errno or 0)
