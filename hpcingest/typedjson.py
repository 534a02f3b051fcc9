"""Records read back from JSON files, checked against their dataclass's field types.

A job record, a failure-report line or a chain file can be damaged (a crash, a full disk, a
hand edit): valid JSON whose ``counters`` is a string or whose ``start_time`` is "yesterday"
got as far as `watch` or `stop` and failed there with a traceback.  Checking every field once,
where the file is read, turns any such file into one error naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class RecordTypeError(ValueError):
    """A JSON value does not fit the record; the message names the field."""


def record_from_json(record_type: type[T], data: Any) -> T:
    """``record_type(**data)`` once every field of ``data`` has its annotated type; numbers
    must be finite, and ``float`` fields take integers as JSON writes them."""
    if not isinstance(data, dict):
        raise RecordTypeError(f"a JSON object was expected, not {_kind(data)}")
    hints = typing.get_type_hints(record_type)
    names = {f.name for f in dataclasses.fields(record_type)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecordTypeError(f"unknown field {unknown[0]!r}")
    missing = sorted(f.name for f in dataclasses.fields(record_type) if f.name not in data
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise RecordTypeError(f"field {missing[0]!r} is missing")
    for name, value in data.items():
        if not fits(value, hints[name]):
            raise RecordTypeError(f"field {name!r} holds {_kind(value)}, not {_shown(hints[name])}")
    return record_type(**data)


def fits(value: Any, hint: Any) -> bool:
    """Whether the JSON ``value`` has the type ``hint`` (str, int, float, bool, None, Any, and
    unions, dicts and lists of them)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(hint))
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        return isinstance(value, dict) and all(fits(k, key_type) and fits(v, value_type) for k, v in value.items())
    if origin is list:
        (item_type,) = typing.get_args(hint)
        return isinstance(value, list) and all(fits(item, item_type) for item in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, hint)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _shown(hint: Any) -> str:
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")
