"""Per-connection state: who is talking (proxy and client user), open descriptors, query cursors.

The real server runs one agent process per connection, so everything here dies with the
connection; ``release`` is what the agent's exit does (closing descriptors, dropping cursors).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .catalog import User
from .catalog.schema import ACCESS_TOKENS
from .errors import ZoneError
from .genquery import QueryCursors
from .state import ZoneState


@dataclass
class Identity:
    proxy_user: str = ""
    proxy_zone: str = ""
    client_user: str = ""
    client_zone: str = ""


@dataclass
class Session:
    zone: ZoneState
    identity: Identity = field(default_factory=Identity)
    user: User | None = None
    user_ids: list[int] = field(default_factory=list)
    challenge: str = ""
    descriptors: dict = field(default_factory=dict)
    cursors: QueryCursors = field(default_factory=QueryCursors)

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def client(self) -> User:
        assert self.user is not None
        return self.user

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.user_type_name == "rodsadmin"

    @property
    def signature(self) -> str:
        """The client signature PRC scrambles passwords with: hex of the first 16 challenge bytes."""
        return self.challenge[:16].encode().hex()

    def require_access(self, object_id: int, level: str, what: str) -> None:
        """Owner/ACL check as the real server does it for the client user; admins pass."""
        if self.is_admin:
            return
        if self.zone.catalog.access_level(object_id, self.user_ids) < ACCESS_TOKENS[level]:
            raise ZoneError(errors.CAT_NO_ACCESS_PERMISSION, f"no {level} access to {what}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise ZoneError(errors.CAT_INSUFFICIENT_PRIVILEGE_LEVEL, "rodsadmin required")
