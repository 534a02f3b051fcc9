"""The three ways an iRODS call can fail, told apart so the caller knows what to do next.

* a dropped connection (server restart, network blip): transient, the connection layer
  reconnects and re-runs the call;
* an authentication failure: permanent for the whole job, reported at once;
* an iRODS error code: a per-file failure, never retried, reported by the caller with the
  server's own error name and code.
"""

from __future__ import annotations

import errno
import functools

from .error_table import ERROR_NAMES

_NETWORK_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ENOTCONN,
                   errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
_NEGOTIATION_FAILURE = "Client-Server negotiation failure"


def _prc():
    """python-irodsclient's exceptions, imported on first need: a rank that never connects
    never loads python-irodsclient (see hpcingest.lazy), and only a call into it can fail
    with one of them.  (ssl too is imported where it is needed.)"""
    from irods import exception

    return exception


@functools.cache
def _auth_failures() -> tuple[type, ...]:
    import ssl

    prc = _prc()
    return (prc.CAT_INVALID_AUTHENTICATION, prc.CAT_INVALID_USER, prc.CAT_PASSWORD_EXPIRED,
            prc.SYS_PROXYUSER_NO_PRIV, prc.PAM_AUTH_PASSWORD_FAILED, prc.CAT_INVALID_CLIENT_USER,
            ssl.SSLCertVerificationError)


class IrodsError(Exception):
    """Base of everything this package raises about iRODS."""


class IrodsAuthError(IrodsError):
    """The zone refused our credentials or TLS setup; retrying cannot help."""


class IrodsConnectionError(IrodsError):
    """The zone stayed unreachable for the whole reconnect budget."""


class IrodsAgentRefused(IrodsError):
    """The server answered the connection but started no agent for it (its RODS_VERSION carried
    an error status: with CAT_NOT_OPEN, the agent got no catalog database connection, as past
    PostgreSQL's ``max_connections``).  Transient for the server, which frees an agent whenever a
    client leaves; see hpcingest.irods.refusal."""

    def __init__(self, code: int, where: str = "") -> None:
        self.code = code
        self.name = error_name(code)
        self.where = where
        super().__init__(f"the iRODS server{' at ' + where if where else ''} refused a new agent: "
                         f"{self.name} ({code}){_REFUSAL_CAUSES.get(self.name, '')}")

    def __reduce__(self):
        return (IrodsAgentRefused, (self.code, self.where))


_REFUSAL_CAUSES = {
    "CAT_NOT_OPEN": " -- its catalog database has no connection left for another agent (every agent holds "
                    "one; PostgreSQL allows max_connections, 100 by default): fewer connected ranks "
                    "(--irods_connections) or a larger max_connections",
    "CAT_CONNECT_ERR": " -- the agent could not connect to the catalog database",
    "SYS_EXCEED_CONNECT_CNT": " -- too many server-to-server hops",
}


class IrodsOperationError(IrodsError):
    """The server answered with an iRODS error code: a per-object failure for the caller to report.

    ``after_retry`` is True when the call had been re-sent after a dropped connection, so the first
    attempt may have taken effect (a re-sent register then reports the object as existing).
    """

    def __init__(self, name: str, code: int, message: str = "", after_retry: bool = False) -> None:
        super().__init__(f"{name} ({code}){': ' + message if message else ''}")
        self.name = name
        self.code = code
        self.message = message
        self.after_retry = after_retry

    def __reduce__(self):
        return (IrodsOperationError, (self.name, self.code, self.message, self.after_retry))


def _chain(exc: BaseException):
    """The exception and what caused it (PRC's parallel put wraps network errors in RuntimeError)."""
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        seen += 1
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def is_connection_lost(exc: BaseException) -> bool:
    """True when the failure is the transport's, not the server's verdict on the request."""
    import ssl

    prc_errors = _prc()
    if refusal_in(exc) is not None:
        return True  # no agent this time; one may be free on the next try
    if is_auth_failure(exc):
        return False
    for link in _chain(exc):
        if isinstance(link, prc_errors.iRODSException):
            return False
        if isinstance(link, prc_errors.NetworkException):
            return True
        if isinstance(link, (ConnectionError, TimeoutError, EOFError)):
            return True
        if isinstance(link, ssl.SSLError) and not isinstance(link, ssl.SSLCertVerificationError):
            return True
        if isinstance(link, OSError) and link.errno in _NETWORK_ERRNOS:
            return True
    return False


def refusal_in(exc: BaseException) -> IrodsAgentRefused | None:
    """The server's refusal of an agent behind a failure (PRC's parallel transfers wrap the
    errors of their extra connections), or None."""
    return next((link for link in _chain(exc) if isinstance(link, IrodsAgentRefused)), None)


def is_auth_failure(exc: BaseException) -> bool:
    prc_errors = _prc()
    if isinstance(exc, _auth_failures()):
        return True
    if type(exc).__name__ == "NonAnonymousLoginWithoutPassword":
        return True
    return isinstance(exc, prc_errors.NetworkException) and str(exc).startswith(_NEGOTIATION_FAILURE)


def auth_error(exc: BaseException, where: str) -> IrodsAuthError:
    """A message naming the cause in words, without any secret."""
    import ssl

    prc_errors = _prc()
    if isinstance(exc, prc_errors.CAT_INVALID_AUTHENTICATION):
        reason = "wrong password (CAT_INVALID_AUTHENTICATION)"
    elif isinstance(exc, prc_errors.CAT_INVALID_USER):
        reason = "unknown user (CAT_INVALID_USER)"
    elif isinstance(exc, prc_errors.CAT_PASSWORD_EXPIRED):
        reason = "password expired (CAT_PASSWORD_EXPIRED), run iinit again"
    elif isinstance(exc, prc_errors.SYS_PROXYUSER_NO_PRIV):
        reason = "this user may not act for another user (SYS_PROXYUSER_NO_PRIV); as_user needs a rodsadmin"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"TLS certificate verification failed: {exc.verify_message}"
    elif isinstance(exc, prc_errors.NetworkException):
        reason = negotiation_failure(str(exc))
    elif isinstance(exc, prc_errors.iRODSException):
        reason = f"{type(exc).__name__} ({getattr(exc, 'code', '?')})"
    else:
        reason = "no password available"
    return IrodsAuthError(f"iRODS authentication failed for {where}: {reason}")


def negotiation_failure(text: str) -> str:
    """What a failed client-server negotiation means, from PRC's "...: CLIENT,SERVER" text."""
    client, _, server = text.rpartition(": ")[2].partition(",")
    if client == "CS_NEG_REQUIRE":
        return (f"the environment file requires TLS (irods_client_server_policy CS_NEG_REQUIRE) and the server "
                f"refuses it ({server})")
    if server == "CS_NEG_REQUIRE":
        return ("the server requires TLS (CS_NEG_REQUIRE); set irods_client_server_policy to CS_NEG_REQUIRE with "
                "the irods_ssl_* settings in the environment file (iRODS's own clients take a missing policy as "
                "CS_NEG_DONT_CARE, which python-irodsclient does not support)")
    return f"TLS negotiation failed: {text}"


def operation_error(exc: BaseException, after_retry: bool = False) -> IrodsOperationError | None:
    """The iRODS error name and code behind a PRC exception, or None if it carries no code."""
    prc_errors = _prc()
    if isinstance(exc, IrodsOperationError):
        return exc
    if isinstance(exc, prc_errors.iRODSException):
        code = int(getattr(exc, "code", 0) or 0)
        name = error_name(code, default=type(exc).__name__) if code else type(exc).__name__
        return IrodsOperationError(name, code, _server_text(exc), after_retry)
    # PRC raises KeyError(code) for a code it has no class for, after reading the whole reply
    # (so the connection itself is fine)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], int) and exc.args[0] <= -1000:
        code = exc.args[0]
        return IrodsOperationError(error_name(code), code, "", after_retry)
    return None


def error_name(code: int, default: str = "UNKNOWN_IRODS_ERROR") -> str:
    """The server's name for an error code (``default`` for a code its table lacks, such as one
    retired before 5.0).  Most codes carry an errno in their last three digits (-510013 is
    UNIX_FILE_OPEN_ERR with errno 13), so a code not in the table is looked up without them."""
    name = ERROR_NAMES.get(code)
    if name is None and code <= -1000:
        name = ERROR_NAMES.get(-(-code // 1000 * 1000))
    return name or default


# Refusals of a registration that no file of the job can get past: a rodsuser's path
# registration under the server's default policy, and an operation that needs a rodsadmin.
_PRIVILEGE_REFUSALS = frozenset({"PATH_REG_NOT_ALLOWED", "CAT_INSUFFICIENT_PRIVILEGE_LEVEL", "SYS_NO_API_PRIV"})


def is_privilege_refusal(error: BaseException) -> bool:
    """Whether an operation failed because this user may not do it at all (not because of one file)."""
    return isinstance(error, IrodsOperationError) and error.name in _PRIVILEGE_REFUSALS


def _server_text(exc: BaseException) -> str:
    text = " ".join(str(arg) for arg in exc.args if arg not in (None, ""))
    return text.strip()
