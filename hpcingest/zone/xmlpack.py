"""The XML protocol's packing: a tolerant request parser and a reply builder.

Requests are scanned tag by tag rather than parsed as XML, because PRC sends user strings with
raw control characters and unescaped quotes that strict parsers reject; like the real server's
scanner, only the five named entities are decoded.  Replies are escaped the way the real server
escapes them (``'`` becomes ``&apos;``), so PRC's default ElementTree parser accepts them.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from . import errors
from .errors import ZoneError
from .framing import ProtocolError

MAX_NAME_LEN = 1088  # rodsDef.h: MAX_PATH_ALLOWED (1024) + 64, the size of a path field with its NUL

_SPLIT = re.compile(r"<(/?[A-Za-z_][A-Za-z0-9_]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_MAX_DEPTH = 32


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    return _ENTITY.sub(lambda m: _ENTITY_CHARS[m.group(1)], text)


class Node:
    """One element of a request: either a leaf with ``text`` or a struct with ``children``."""

    __slots__ = ("tag", "text", "children")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.text = ""
        self.children: list[Node] = []

    def get(self, tag: str) -> "Node | None":
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def all(self, tag: str) -> list["Node"]:
        return [child for child in self.children if child.tag == tag]

    def str(self, tag: str, default: str = "") -> str:
        child = self.get(tag)
        return default if child is None else child.text

    def path(self, tag: str) -> str:
        """A logical path field (``str objPath[MAX_NAME_LEN]``, ``collName``): the real server's
        unpacking refuses a string that does not fit with its NUL (packStruct.cpp
        unpackXmlString), and the request is never run."""
        text = self.str(tag)
        if len(text.encode("utf-8", "surrogateescape")) >= MAX_NAME_LEN:
            raise ZoneError(errors.USER_PACKSTRUCT_INPUT_ERR,
                            f"<{tag}> is longer than {MAX_NAME_LEN - 1} bytes (MAX_NAME_LEN)")
        return text

    def int(self, tag: str, default: int = 0) -> int:
        child = self.get(tag)
        if child is None or not child.text.strip():
            return default
        try:
            return int(child.text.strip())
        except ValueError:
            raise ProtocolError(f"<{tag}> is not an integer") from None

    def kvp(self, tag: str = "KeyValPair_PI") -> dict[str, str]:
        """A KeyValPair_PI as a dict (all keyWords come first, then all svalues)."""
        pair = self.get(tag)
        if pair is None:
            return {}
        keys = [n.text for n in pair.children if n.tag == "keyWord"]
        values = [n.text for n in pair.children if n.tag == "svalue"]
        values += [""] * (len(keys) - len(values))
        return dict(zip(keys, values))


def parse(data: bytes) -> Node:
    """Parse a request body into its top-level struct node."""
    pieces = _SPLIT.split(data.decode("utf-8", "surrogateescape"))
    root = Node("#root")
    stack = [root]
    for index in range(1, len(pieces), 2):
        tag = pieces[index]
        if tag[0] != "/":
            node = Node(tag)
            stack[-1].children.append(node)
            stack.append(node)
            if len(stack) > _MAX_DEPTH:
                raise ProtocolError("request nested too deeply")
            continue
        if len(stack) == 1:
            raise ProtocolError(f"unexpected <{tag}>")
        node = stack.pop()
        if node.tag != tag[1:]:
            raise ProtocolError(f"<{tag}> closes <{node.tag}>")
        if not node.children:
            node.text = _unescape(pieces[index - 1])
    if len(stack) != 1 or not root.children:
        raise ProtocolError("truncated or empty request body")
    return root.children[0]


def parse_json_buf(data: bytes) -> Any:
    """Decode the JSON a client sends in a BinBytesBuf_PI (base64) or BytesBuf_PI (plain)."""
    node = parse(data)
    raw = node.str("buf")
    try:
        text = base64.b64decode(raw).decode("utf-8") if node.tag == "BinBytesBuf_PI" else raw
        return json.loads(text.rstrip("\0"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad JSON buffer: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Reply building


def escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


class Xml(str):
    """An already-packed fragment that must be inserted without escaping."""


def struct(name: str, *fields: tuple[str, Any]) -> Xml:
    """Pack ``<name><tag>value</tag>…</name>``; list values repeat the tag, Xml values nest."""
    parts = [f"<{name}>"]
    for tag, value in fields:
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, Xml):
                parts.append(item)
            else:
                text = item if isinstance(item, str) else str(item)
                parts.append(f"<{tag}>{escape(text)}</{tag}>")
    parts.append(f"</{name}>")
    return Xml("".join(parts))


def kvp(pairs: dict[str, str]) -> Xml:
    return struct("KeyValPair_PI", ("ssLen", len(pairs)), ("keyWord", list(pairs)), ("svalue", list(pairs.values())))


def json_buf(obj: Any) -> bytes:
    """A BinBytesBuf_PI carrying JSON, as the server's JSON APIs reply."""
    raw = json.dumps(obj).encode("utf-8")
    return struct("BinBytesBuf_PI", ("buflen", len(raw)), ("buf", base64.b64encode(raw).decode("ascii"))).encode()


def str_pi(text: str) -> bytes:
    return struct("STR_PI", ("myStr", text)).encode("utf-8", "surrogateescape")


def error_struct(entries: list[tuple[int, str]]) -> bytes:
    """An RError_PI; callers pass at least one entry (PRC indexes entry 0, so never send count 0)."""
    packed = [struct("RErrMsg_PI", ("status", code), ("msg", message)) for code, message in entries]
    return struct("RError_PI", ("count", len(packed)), ("RErrMsg_PI", packed)).encode("utf-8", "surrogateescape")

