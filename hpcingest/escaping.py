"""Names are hostile: how they are shown on a terminal, and written as JSON for other tools.

Paths are bytes; in Python they travel as ``str`` decoded with ``surrogateescape``, so a byte
that is not UTF-8 is a lone surrogate U+DC80..U+DCFF.  Two places must never get them raw:

* a terminal: a name can hold escape sequences (colours, cursor moves, window titles), a
  newline that forges a report row, bidi overrides that reorder what is shown, and characters
  the output encoding (``LANG=C``, ``PYTHONIOENCODING=ascii``) cannot write at all;
* JSON text: ``json.dumps`` writes a lone surrogate as a ``\\udcXX`` escape, which Python
  reads back but other parsers reject or replace (RFC 8259: the text is not valid Unicode).
  So a JSON field carries a valid-UTF-8 display form, and ``<field>_b64`` (standard base64)
  carries the exact bytes whenever they are not UTF-8.

Display forms: ``\\xNN`` is a byte that is not UTF-8; ``\\uNNNN``/``\\UNNNNNNNN`` a character
that is not printable (or not writable in the output encoding); ``\\\\``, ``\\n``, ``\\r``,
``\\t`` as usual.  So a shown name is one line of printable text, and distinct names look
distinct.
"""

from __future__ import annotations

import base64
import codecs
from typing import Any

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
B64_SUFFIX = "_b64"


def terminal_text(text: str, encoding: str | None = "utf-8") -> str:
    """``text`` as one line of printable characters that ``encoding`` can write."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    encoder = codecs.getincrementalencoder(encoding or "utf-8")()
    shown = []
    for char in text:
        code = ord(char)
        if char in _NAMED:
            shown.append(_NAMED[char])
        elif 0xDC80 <= code <= 0xDCFF:
            shown.append(f"\\x{code - 0xDC00:02x}")  # a byte of the name that is not UTF-8
        elif not char.isprintable() or not _writable(encoder, char):
            shown.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            shown.append(char)
    return "".join(shown)


def _writable(encoder: codecs.IncrementalEncoder, char: str) -> bool:
    try:
        encoder.encode(char)
        return True
    except UnicodeEncodeError:
        return False


def not_utf8_bytes(text: str) -> bytes | None:
    """The exact bytes of a surrogate-escaped ``text`` when they are not UTF-8, else None."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None  # surrogates that no byte decodes to: there are no exact bytes to keep


def json_display(text: str) -> str:
    """Valid UTF-8 text for a JSON field: bytes that are not UTF-8 shown as ``\\xNN``."""
    raw = not_utf8_bytes(text)
    if raw is not None:
        return raw.decode("utf-8", "backslashreplace")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every string valid UTF-8, so any JSON parser reads it; a top-level
    string that was not gets its exact bytes beside it in ``<key>_b64``."""
    safe: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str):
            raw = not_utf8_bytes(value)
            safe[key] = json_display(value)
            if raw is not None:
                safe[key + B64_SUFFIX] = base64.b64encode(raw).decode("ascii")
        else:
            safe[key] = _displayed(value)
    return safe


def _displayed(value: Any) -> Any:
    if isinstance(value, str):
        return json_display(value)
    if isinstance(value, dict):
        return {_displayed(k): _displayed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_displayed(v) for v in value]
    return value


def exact_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`json_safe`: fields with a ``_b64`` twin get their exact bytes
    back (as surrogate-escaped str), and the twins go.  Lines written before the twins
    existed (lone surrogates as ``\\udcXX``) come through unchanged."""
    exact = dict(record)
    for key, value in record.items():
        if key.endswith(B64_SUFFIX) and key[:-len(B64_SUFFIX)] in record and isinstance(value, str):
            exact[key[:-len(B64_SUFFIX)]] = base64.b64decode(value).decode("utf-8", "surrogateescape")
            del exact[key]
    return exact
