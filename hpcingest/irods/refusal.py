"""A server that starts no agent for a new connection, told apart from a dropped connection.

iRODS answers every connection with a RODS_VERSION message; when it cannot start an agent for
it, the message's status is an error code and the agent exits.  That is what iRODS 5.0.2 does
when PostgreSQL refuses the new agent its catalog connection (CAT_NOT_OPEN: the trail through
the server's source is in hpcingest/zone/server.py, ``_refuse_agent``), which happens as soon as
more agents run than the database allows (``max_connections``, 100 by default).
python-irodsclient ignores that status, sends its login on the closed socket and raises
"Could not receive server response", the same as for a network failure: a job with more
connected ranks than the catalog allows then retried logins in silence, and crawled.

:func:`install` wraps python-irodsclient's ``Connection._connect`` and ``recv`` (at runtime; the
library itself is left as it is, as hpcingest.irods.timing does) so that such a reply raises
:class:`~hpcingest.irods.errors.IrodsAgentRefused` with the server's code (still a PRC
``NetworkException``, as before, to any other code in the process).
"""

from __future__ import annotations

from .errors import IrodsAgentRefused


_installed = False


def install() -> None:
    """Wrap PRC's Connection once per process; idempotent."""
    global _installed
    if _installed:
        return
    from irods.connection import Connection
    from irods.exception import NetworkException
    from irods.message import VersionResponse

    class AgentRefused(IrodsAgentRefused, NetworkException):
        """Still a NetworkException to code that catches python-irodsclient's own errors."""

    original_connect, original_recv = Connection._connect, Connection.recv

    def _connect(self):
        self._hpcingest_starting = True  # the next RODS_VERSION answers this connection's startup
        try:
            return original_connect(self)
        finally:
            self._hpcingest_starting = False

    def recv(self, *args, **kwargs):
        message = original_recv(self, *args, **kwargs)
        if self.__dict__.get("_hpcingest_starting") and message.msg_type == "RODS_VERSION":
            status = message.get_main_message(VersionResponse).status
            if status is not None and int(status) < 0:
                _close(self)
                raise AgentRefused(int(status), f"{self.account.host}:{self.account.port}")
        return message

    Connection._connect, Connection.recv = _connect, recv
    _installed = True


def _close(connection) -> None:
    """The agent is gone: close our end without the RODS_DISCONNECT nobody would read."""
    connection._disconnected = True
    sock = connection.socket
    if sock is not None:
        sock.close()
