"""How failures are told apart: lost connection (retry), login refused (stop), iRODS error (report)."""

from __future__ import annotations

import errno
import pickle

from irods import exception as prc

from hpcingest.irods.errors import (IrodsOperationError, auth_error, is_auth_failure, is_connection_lost,
                                    is_privilege_refusal, operation_error)


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
    assert "requires TLS (irods_client_server_policy CS_NEG_REQUIRE) and the server refuses it (CS_NEG_REFUSE)" in \
        str(auth_error(prc.NetworkException("Client-Server negotiation failure: CS_NEG_REQUIRE,CS_NEG_REFUSE"), "u#z@h:1"))
    assert "the server requires TLS" in str(auth_error(prc.NetworkException(
        "Client-Server negotiation failure: CS_NEG_REFUSE,CS_NEG_REQUIRE"), "u#z@h:1"))
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


def test_every_code_of_the_servers_table_is_named_with_or_without_an_errno():
    # codes python-irodsclient 3.3.0 has no class for: it raises KeyError(code) for them
    refused = operation_error(KeyError(-129000))
    assert (refused.name, refused.code) == ("PATH_REG_NOT_ALLOWED", -129000)
    assert operation_error(KeyError(-154000)).name == "SYS_INTERNAL_ERR"
    assert operation_error(KeyError(-1811000)).name == "INVALID_OPERATION"
    # a rounded code with an errno part keeps its full code and gets the base name
    unreadable = operation_error(KeyError(-510013))
    assert (unreadable.name, unreadable.code) == ("UNIX_FILE_OPEN_ERR", -510013)
    assert operation_error(prc.get_exception_by_code(-526013, "statfs")).name == "UNIX_FILE_GET_FS_FREESPACE_ERR"
    # codes that are not multiples of 1000 are looked up as they are
    assert operation_error(KeyError(-1100)).name == "SYS_SOCK_LISTEN_ERR"
    assert operation_error(KeyError(-99999996)).name == "SYS_NULL_INPUT"
    # the server's spelling wins over a client class's (PRC has SYS_HEADER_TPYE_LEN_ERR)
    assert operation_error(prc.get_exception_by_code(-6000)).name == "SYS_HEADER_TYPE_LEN_ERR"
    # a code the 5.0 table retired keeps the client's name; one nobody knows is still reported
    assert operation_error(prc.get_exception_by_code(-880000)).name == "RDA_NOT_COMPILED_IN"
    assert operation_error(KeyError(-987654000)).name == "UNKNOWN_IRODS_ERROR"


def test_the_table_is_the_servers_whole_table():
    from hpcingest.irods.error_table import ERROR_NAMES

    assert len(ERROR_NAMES) == 698 and len(set(ERROR_NAMES.values())) == 698
    assert ERROR_NAMES[-129000] == "PATH_REG_NOT_ALLOWED" and ERROR_NAMES[-354000] == "CANT_RM_NON_EMPTY_HOME_COLL"
    assert all(code < 0 for code in ERROR_NAMES)


def test_privilege_refusals_are_told_from_per_file_failures():
    assert is_privilege_refusal(operation_error(KeyError(-129000)))
    assert is_privilege_refusal(operation_error(prc.CAT_INSUFFICIENT_PRIVILEGE_LEVEL()))
    assert is_privilege_refusal(operation_error(prc.SYS_NO_API_PRIV()))
    assert not is_privilege_refusal(operation_error(prc.CAT_NO_ACCESS_PERMISSION()))
    assert not is_privilege_refusal(operation_error(KeyError(-510013)))
    assert not is_privilege_refusal(ValueError("x"))
