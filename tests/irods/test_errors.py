"""How failures are told apart: lost connection (retry), login refused (stop), iRODS error (report)."""

from __future__ import annotations

import errno
import pickle

from irods import exception as prc

from hpcingest.irods.errors import (IrodsOperationError, auth_error, is_auth_failure, is_connection_lost,
                                    operation_error)


def wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


def test_transport_failures_are_retryable():
    assert is_connection_lost(prc.NetworkException("Could not receive server response"))
    assert is_connection_lost(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert is_connection_lost(OSError(errno.EPIPE, "broken pipe"))
    assert is_connection_lost(TimeoutError("timed out"))
    # PRC's parallel put wraps whatever a transfer thread raised in RuntimeError("parallel put failed")
    assert is_connection_lost(wrapped(RuntimeError("parallel put failed"), prc.NetworkException("gone")))


def test_server_verdicts_and_local_errors_are_not():
    assert not is_connection_lost(prc.CAT_NO_ROWS_FOUND("none"))
    assert not is_connection_lost(FileNotFoundError(errno.ENOENT, "local file"))
    assert not is_connection_lost(PermissionError(errno.EACCES, "local file"))
    assert not is_connection_lost(prc.CAT_INVALID_AUTHENTICATION())
    assert not is_connection_lost(prc.NetworkException("Client-Server negotiation failure: CS_NEG_REQUIRE,CS_NEG_REFUSE"))


def test_auth_failures():
    for exc in (prc.CAT_INVALID_AUTHENTICATION(), prc.CAT_INVALID_USER(), prc.SYS_PROXYUSER_NO_PRIV(),
                prc.NetworkException("Client-Server negotiation failure: CS_NEG_REQUIRE,CS_NEG_REFUSE")):
        assert is_auth_failure(exc)
    assert "TLS negotiation failed" in str(auth_error(prc.NetworkException(
        "Client-Server negotiation failure: CS_NEG_REQUIRE,CS_NEG_REFUSE"), "u#z@h:1"))
    assert not is_auth_failure(prc.CAT_NO_ACCESS_PERMISSION())


def test_operation_errors_keep_the_server_name_and_code():
    error = operation_error(prc.get_exception_by_code(-510002, "cannot open"))
    assert (error.name, error.code, error.message) == ("UNIX_FILE_OPEN_ERR", -510002, "cannot open")
    unknown = operation_error(KeyError(-405000))  # PRC has no class for INTERMEDIATE_REPLICA_ACCESS
    assert (unknown.name, unknown.code) == ("INTERMEDIATE_REPLICA_ACCESS", -405000)
    assert operation_error(KeyError("not a code")) is None
    assert operation_error(ValueError("x")) is None
    again = pickle.loads(pickle.dumps(IrodsOperationError("CAT_NO_ROWS_FOUND", -808000, "m", True)))
    assert (again.name, again.code, again.message, again.after_retry) == ("CAT_NO_ROWS_FOUND", -808000, "m", True)
