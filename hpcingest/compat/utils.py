"""``Operation`` and ``DeleteMode`` with the old member names and values, and their compatibility.

Handler files compare and return these members, and sites may have stored their values, so
the names and numbers must stay exactly those of irods_capability_automated_ingest 0.7.0.
"""

from __future__ import annotations

from enum import Enum

from hpcingest.naming import is_utf8


class Operation(Enum):
    REGISTER_SYNC = 0
    REGISTER_AS_REPLICA_SYNC = 1
    PUT = 2
    PUT_SYNC = 3
    PUT_APPEND = 4
    NO_OP = 5


class DeleteMode(Enum):
    DO_NOT_DELETE = 0
    UNREGISTER = 1
    TRASH = 2
    NO_TRASH = 3


# Deleting is only allowed where it cannot destroy data the job did not put there: a
# registering job may only unregister, a putting job may trash what it uploaded, and a job
# that never overwrites (PUT) or never writes (NO_OP) must not delete at all.
_COMPATIBLE: dict[Operation, frozenset[DeleteMode]] = {
    Operation.NO_OP: frozenset({DeleteMode.DO_NOT_DELETE}),
    Operation.REGISTER_SYNC: frozenset({DeleteMode.DO_NOT_DELETE, DeleteMode.UNREGISTER}),
    Operation.REGISTER_AS_REPLICA_SYNC: frozenset({DeleteMode.DO_NOT_DELETE, DeleteMode.UNREGISTER}),
    Operation.PUT: frozenset({DeleteMode.DO_NOT_DELETE}),
    Operation.PUT_SYNC: frozenset({DeleteMode.DO_NOT_DELETE, DeleteMode.TRASH, DeleteMode.NO_TRASH}),
    Operation.PUT_APPEND: frozenset({DeleteMode.DO_NOT_DELETE, DeleteMode.TRASH, DeleteMode.NO_TRASH}),
}


def compatible_delete_modes(operation: Operation) -> frozenset[DeleteMode]:
    """Delete modes a job running ``operation`` may use (empty for anything that is not an Operation)."""
    return _COMPATIBLE.get(operation, frozenset())


def delete_mode_is_compatible_with_operation(delete_mode: DeleteMode, operation: Operation) -> bool:
    """The old function, same name and argument order, for handlers that call it."""
    return delete_mode in compatible_delete_modes(operation)


def is_unicode_encode_error_path(path: str) -> bool:
    """True when ``path`` (an ``os.fsdecode`` str) came from bytes that are not UTF-8."""
    return not is_utf8(path.encode("utf-8", "surrogatepass"))
