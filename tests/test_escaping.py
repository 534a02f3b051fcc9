"""Hostile names: one printable line on any terminal, valid JSON text for any parser, exact bytes kept."""

from __future__ import annotations

import json
import os

import pytest

from hpcingest.escaping import exact_fields, json_safe, terminal_text

HOSTILE = {
    b"esc\x1b[31mred\x1b]0;title\x07": "esc\\u001b[31mred\\u001b]0;title\\u0007",
    b"two\nlines": "two\\nlines",
    b"caf\xe9 latin-1": "caf\\xe9 latin-1",
    b"back\\slash\\x41": "back\\\\slash\\\\x41",
    "bidi\u202eexe.txt".encode(): "bidi\\u202eexe.txt",
    "nbsp\u00a0 and \u0085nel".encode(): "nbsp\\u00a0 and \\u0085nel",
    "caf\u00e9 \U0001f600".encode(): "caf\u00e9 \U0001f600",
    b"plain name.txt": "plain name.txt",
}


def strictly_valid(text: str) -> bool:
    """What a parser other than Python's accepts: UTF-8 text without lone surrogates in any string."""
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
    try:
        text.encode("utf-8")
        for s in strings(json.loads(text)):
            s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("raw", list(HOSTILE))
def test_terminal_text_is_one_printable_line(raw):
    shown = terminal_text(os.fsdecode(raw))
    assert shown == HOSTILE[raw]
    assert shown.isprintable() and "\n" not in shown


def test_terminal_text_escapes_what_the_encoding_cannot_write():
    assert terminal_text("caf\u00e9 \U0001f600", "ascii") == "caf\\u00e9 \\U0001f600"
    assert terminal_text("caf\u00e9", "latin-1") == "caf\u00e9"


def test_json_fields_are_valid_text_with_the_exact_bytes_beside_them():
    record = {"path": os.fsdecode(b"dir/caf\xe9"), "message": os.fsdecode(b"cannot take caf\xe9"),
              "plain": "ok \u00e9", "count": 3, "nested": {"p": os.fsdecode(b"\xff")}, "lone": "\ud800"}
    assert not strictly_valid(json.dumps(record))  # what json.dumps alone writes
    safe = json_safe(record)
    assert strictly_valid(json.dumps(safe))
    assert safe["path"] == "dir/caf\\xe9" and safe["path_b64"] == "ZGlyL2NhZuk="
    assert (safe["plain"], safe["count"], safe["nested"], safe["lone"]) == ("ok \u00e9", 3, {"p": "\\xff"}, "\\ud800")
    assert "plain_b64" not in safe and "lone_b64" not in safe
    back = exact_fields(json.loads(json.dumps(safe)))
    assert os.fsencode(back["path"]) == b"dir/caf\xe9" and back["message"] == record["message"]


def test_old_lines_with_surrogate_escapes_still_read():
    old = json.loads(json.dumps({"path": os.fsdecode(b"caf\xe9")}))
    assert os.fsencode(exact_fields(old)["path"]) == b"caf\xe9"
