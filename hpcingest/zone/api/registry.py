"""The API table: number -> handler, as the server's apiTable maps numbers to rs* functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..framing import Message

if TYPE_CHECKING:
    from ..session import Session


@dataclass
class Reply:
    """A successful API reply; ``int_info`` carries the return value (descriptor, byte count…)."""

    int_info: int = 0
    msg: bytes = b""
    bs: bytes = b""


Handler = Callable[["Session", Message], Reply]


@dataclass(frozen=True)
class ApiEntry:
    name: str
    handler: Handler
    needs_auth: bool


HANDLERS: dict[int, ApiEntry] = {}


def api(number: int, name: str, needs_auth: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler; ``needs_auth=False`` marks the NO_USER_AUTH APIs (login)."""

    def register(handler: Handler) -> Handler:
        HANDLERS[number] = ApiEntry(name, handler, needs_auth)
        return handler

    return register
