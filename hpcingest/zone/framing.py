"""Encoding and decoding iRODS protocol messages: a 4-byte length, an XML header, three sections.

Decoding works on a connection's receive buffer and only returns whole messages, so a peer that
stops mid-message simply never completes one.  Sizes are capped so that a hostile or broken peer
(an over-long length prefix, a huge section) costs one connection, never the server's memory.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

MAX_HEADER_LEN = 4096
MAX_MSG_LEN = 16 * 1024 * 1024
MAX_ERROR_LEN = 1024 * 1024
MAX_BS_LEN = 64 * 1024 * 1024

_HEADER_FIELD = re.compile(rb"<(type|msgLen|errorLen|bsLen|intInfo)>([^<]*)</\1>")
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not an iRODS message; the connection must be dropped."""


@dataclass
class Message:
    """One protocol message; ``msg`` is the packed struct (XML text), ``bs`` the raw byte stream."""

    type: str
    int_info: int = 0
    msg: bytes = b""
    error: bytes = b""
    bs: bytes = b""


@dataclass(frozen=True)
class Header:
    type: str
    msg_len: int
    error_len: int
    bs_len: int
    int_info: int

    @property
    def body_len(self) -> int:
        return self.msg_len + self.error_len + self.bs_len


def parse_header(raw: bytes) -> Header:
    fields = dict(_HEADER_FIELD.findall(raw))
    try:
        header = Header(fields[b"type"].decode("ascii"), int(fields.get(b"msgLen") or 0),
                        int(fields.get(b"errorLen") or 0), int(fields.get(b"bsLen") or 0),
                        int(fields.get(b"intInfo") or 0))
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed message header: {exc!r}") from None
    for name, value, limit in (("msgLen", header.msg_len, MAX_MSG_LEN), ("errorLen", header.error_len, MAX_ERROR_LEN),
                               ("bsLen", header.bs_len, MAX_BS_LEN)):
        if not 0 <= value <= limit:
            raise ProtocolError(f"{name} {value} out of range")
    return header


def take_message(buffer: bytearray) -> Message | None:
    """Remove and return the first whole message in ``buffer``; None if it is not all there yet."""
    if len(buffer) < 4:
        return None
    (header_len,) = _LENGTH.unpack_from(buffer)
    if header_len == 0 or header_len > MAX_HEADER_LEN:
        raise ProtocolError(f"header length {header_len} out of range")
    if len(buffer) < 4 + header_len:
        return None
    header = parse_header(bytes(buffer[4:4 + header_len]))
    start = 4 + header_len
    end = start + header.body_len
    if len(buffer) < end:
        return None
    view = memoryview(buffer)
    msg_end = start + header.msg_len
    error_end = msg_end + header.error_len
    message = Message(header.type, header.int_info, bytes(view[start:msg_end]), bytes(view[msg_end:error_end]),
                      bytes(view[error_end:end]))
    view.release()
    del buffer[:end]
    return message


def pending_message_size(buffer: bytearray) -> int:
    """How many bytes the message at the front of ``buffer`` will need (0 if not yet known)."""
    if len(buffer) < 4:
        return 0
    (header_len,) = _LENGTH.unpack_from(buffer)
    if len(buffer) < 4 + header_len or header_len > MAX_HEADER_LEN:
        return 0
    return 4 + header_len + parse_header(bytes(buffer[4:4 + header_len])).body_len


def encode_message(message: Message) -> list[bytes]:
    """The wire form as a list of buffers, so large byte streams are sent without being copied."""
    header = (
        f"<MsgHeader_PI><type>{message.type}</type><msgLen>{len(message.msg)}</msgLen>"
        f"<errorLen>{len(message.error)}</errorLen><bsLen>{len(message.bs)}</bsLen>"
        f"<intInfo>{message.int_info}</intInfo></MsgHeader_PI>"
    ).encode("ascii")
    head = _LENGTH.pack(len(header)) + header + message.msg + message.error
    return [head, message.bs] if message.bs else [head]
