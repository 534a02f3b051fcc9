"""Logical names and annotation AVUs for source entries, computed exactly as the old tool does.

Sites already have catalogs populated by irods_capability_automated_ingest 0.7.0; a
replacement that named anything differently would duplicate every remapped object on the
first re-scan. So the two remapping schemes of the old tool are reproduced here byte for
byte (checked against vectors generated with the real 0.7.0 package):

* ``character_map`` (opt-in, from the event handler): every element of the whole logical
  path, zone and home included, is translated, and an element that changed gets a suffix
  encoding what changed (or its SHA-224), so distinct names stay distinct.
* names that are not UTF-8 (automatic): iRODS stores UTF-8 only, so such a name becomes
  ``irods_UnicodeEncodeError_<b64>``.

Where the old tool was broken this module deliberately differs, and says so:

* A non-UTF-8 name in a subdirectory: the old tool produced ``<target>/<reldir>`` (no file
  name) and failed. Here every path component that is not UTF-8 is replaced on its own,
  giving ``<target>/<reldir>/irods_UnicodeEncodeError_<b64>``; directories with such names
  are remapped the same way, so an entry's parent collection is always the logical path of
  its parent directory. ``<b64>`` encodes the **absolute source path up to and including that
  component** (``source_root/relpath``), as the old tool did for files in the root: it is
  unique (two entries never share an absolute path) and reversible on its own
  (:func:`decode_unicode_error_name` gives back the real bytes path), and for a file directly
  in the root it is the old name exactly.
* The base64 alphabet of the *name* uses ``_`` instead of ``/`` (``altchars=b"+_"``). The old
  name used standard base64, whose ``/`` split the "name" into extra collections; the two
  agree whenever the old name was a single path component. The AVU *value* stays standard
  base64, as the old tool (and its units string) define it.
* The old tool skipped ``character_map`` for a whole path once any part was not UTF-8, which
  put such entries in an unmapped copy of their parent collection. Here the UTF-8 elements
  are still translated and only the ``irods_UnicodeEncodeError_`` elements are left alone.
* The suffix alphabet is computed from the job's map, not cached per process from whichever
  map that process saw first (the same result for a one-job process, which is all we run).

Source-side paths are ``bytes`` (see ``records.py``); logical paths and AVUs are ``str``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import string
from dataclasses import dataclass
from typing import Any

UNICODE_ERROR_PREFIX = "irods_UnicodeEncodeError_"
UNICODE_ERROR_DIGEST_PREFIX = UNICODE_ERROR_PREFIX + "sha256-"
NAME_MAX = 255  # bytes in one path component on the server's filesystems (vault files)
# iRODS keeps a path (logical, or a registered file's) in a field of MAX_NAME_LEN (1088, rodsDef.h)
# bytes with its NUL: a longer logical path is refused (USER_PACKSTRUCT_INPUT_ERR), a longer
# physical path is cut without an error
MAX_PATH_BYTES = 1087
UNICODE_ERROR_ATTRIBUTE = "irods::automated_ingest::UnicodeEncodeError"
CHARACTER_MAP_ATTRIBUTE = "irods::automated_ingest::character_map"
B64_UNITS = "python3.base64.b64encode(full_path_of_source_file)"
SPECIAL_FILE_UNITS = "automated_ingest"
REASON_UNICODE = "UnicodeEncodeError"
REASON_CHARACTER_MAP = "character_map"

# Name-safe base64: "/" would split the name into collections; "_" is outside the standard
# alphabet, so the mapping stays reversible.
_NAME_ALTCHARS = b"+_"
# The old tool falls back to a digest once the encoded changes reach the digest's length.
_DIGEST = hashlib.sha224
_DIGEST_SIZE = _DIGEST().digest_size
_SEPARATORS = "-~_"
_RADIX_CHARS = string.digits + string.ascii_letters

# A rule key: a character, a tuple of characters, a compiled regex, or a predicate on one character.
Key = Any


@dataclass(frozen=True, slots=True)
class Avu:
    """One iRODS metadata triple, spelled as the old tool attaches it."""

    attribute: str
    value: str
    units: str


class CharacterMapError(ValueError):
    """The handler's ``character_map()`` cannot be applied; the message says which entry is wrong."""


class CharacterMap:
    """A validated ``character_map()`` result, ready to translate logical paths.

    Accepts what the old tool accepts: a dict, or an iterable of (key, value) pairs whose
    order is the order of application. Keys are one character, a tuple of characters, a
    compiled regex (``sub`` over the whole element) or a predicate on one character. Values
    are at most one character (a regex key may also take a ``sub`` callable).
    """

    def __init__(self, spec: Any) -> None:
        try:
            items = list((spec if isinstance(spec, dict) else dict(spec)).items())
        except (TypeError, ValueError) as err:
            raise CharacterMapError(
                f"character_map() must return a dict or an iterable of (key, value) pairs, "
                f"not {type(spec).__name__} ({err})") from None
        for key, value in items:
            _check_rule(key, value)
        self.rules: list[tuple[Key, Any]] = items
        self.separator = self._unchanged(_SEPARATORS)[:1]
        self.radix = self._unchanged(_RADIX_CHARS)
        if len(self.radix) < 2:
            raise CharacterMapError(
                "character_map() leaves fewer than two of [0-9A-Za-z] unchanged, "
                "so no collision-avoiding suffix can be written")

    def _unchanged(self, chars: str) -> str:
        """The characters the map leaves alone (position by position, as the old tool compares)."""
        return "".join(a for a, b in zip(chars, self.translate_string(chars)) if a == b)

    def translate_string(self, s: str) -> str:
        """Apply every rule in order, without a suffix."""
        for key, value in self.rules:
            if isinstance(key, tuple):
                s = s.translate({ord(k): value for k in key})
            elif isinstance(key, re.Pattern):
                s = key.sub(value, s)
            elif isinstance(key, str):
                s = s.translate({ord(key): value})
            else:
                s = "".join(value if key(c) else c for c in s)
        return s

    def _changes(self, element: str, translated: str) -> bytes:
        """UTF-8 of chr(position) + original character for each changed position, or the digest."""
        encoded = bytearray()
        for (index, before), after in zip(enumerate(element), translated):
            if before != after:
                encoded += chr(index).encode("utf8") + before.encode("utf8")
                if len(encoded) >= _DIGEST_SIZE:
                    return _DIGEST(element.encode("utf8")).digest()
        return bytes(encoded)

    def _suffix(self, changes: bytes) -> str:
        """The changes as one big number in the unchanged alphanumerics, least significant first."""
        if not changes:
            return ""
        number = int.from_bytes(changes, "big")
        digits = [self.separator]
        while number:
            number, digit = divmod(number, len(self.radix))
            digits.append(self.radix[digit])
        return "".join(digits)

    def translate_element(self, element: str) -> str:
        """One path element, translated and suffixed if anything changed."""
        translated = self.translate_string(element)
        return translated + self._suffix(self._changes(element, translated))

    def translate_path(self, path: str) -> str:
        """A whole logical path, element by element (empty elements dropped, leading "/" kept)."""
        elements = [self.translate_element(e) for e in path.split("/") if e]
        return ("/" if path.startswith("/") else "") + "/".join(elements)


def _check_rule(key: Any, value: Any) -> None:
    """The old start-time check (single-character keys and values), made strict about types.

    Stricter than 0.7.0 where 0.7.0 would accept a rule and then fail on every entry (an
    empty key) or silently ignore it (a key of another type).
    """
    def single(k: Any) -> bool:
        return isinstance(k, str) and len(k) == 1

    if isinstance(key, tuple):
        if not key or not all(single(k) for k in key):
            raise CharacterMapError(f"character_map() key {key!r} must be a tuple of single characters")
    elif isinstance(key, str):
        if not single(key):
            raise CharacterMapError(f"character_map() key {key!r} is not a single character")
    elif not isinstance(key, re.Pattern) and not callable(key):
        raise CharacterMapError(
            f"character_map() key {key!r} is not a character, a tuple of characters, "
            f"a compiled regex or a callable")
    if isinstance(value, str):
        if len(value) > 1:
            raise CharacterMapError(
                f"character_map() value {value!r} for key {key!r} is not a single character")
    elif not (isinstance(key, re.Pattern) and callable(value)):
        raise CharacterMapError(f"character_map() value {value!r} for key {key!r} is not a string")


def translate_path(path: str, char_map: CharacterMap) -> str:
    """The old ``char_map_util.translate_path(path, map)``."""
    return char_map.translate_path(path)


def b64_source_path(source_path: bytes) -> bytes:
    """Standard base64 of the absolute source path: the old AVU value and ``meta["b64_path_str"]``."""
    return base64.b64encode(source_path)


def unicode_error_name(source_path: bytes) -> str:
    """``irods_UnicodeEncodeError_<b64>`` for the entry at ``source_path`` (absolute bytes), or,
    when that would not fit in one path component (a deep path: b64 of more than ~172 bytes),
    ``irods_UnicodeEncodeError_sha256-<hex>``.

    A vault file name, like any name on the server's filesystem, is at most NAME_MAX (255)
    bytes: a longer name registers (no file is made) but every PUT of it fails with
    UNIX_FILE_CREATE_ERR.  The digest form is as unique (SHA-256 of the absolute path) and
    bounded; it is reversed through the ``irods::automated_ingest::UnicodeEncodeError`` AVU
    (base64 of the full source path), which such objects and collections carry.  ``-`` is
    outside both base64 alphabets, so the two forms are never confused."""
    name = UNICODE_ERROR_PREFIX + base64.b64encode(source_path, altchars=_NAME_ALTCHARS).decode("ascii")
    if len(name) <= NAME_MAX:
        return name
    return UNICODE_ERROR_DIGEST_PREFIX + hashlib.sha256(source_path).hexdigest()


def is_digest_name(name: str) -> bool:
    return name.startswith(UNICODE_ERROR_DIGEST_PREFIX)


def decode_unicode_error_name(name: str) -> bytes:
    """The absolute source path an ``irods_UnicodeEncodeError_`` name stands for.

    Accepts old-style (standard alphabet) names as well as ours; a digest name holds no path
    (its object's or collection's UnicodeEncodeError AVU does).
    """
    if is_digest_name(name):
        raise ValueError(f"{name!r} is a digest: the source path is in its {UNICODE_ERROR_ATTRIBUTE} AVU")
    if not name.startswith(UNICODE_ERROR_PREFIX):
        raise ValueError(f"{name!r} is not an {UNICODE_ERROR_PREFIX} name")
    return base64.b64decode(name[len(UNICODE_ERROR_PREFIX):].replace("/", "_"), altchars=_NAME_ALTCHARS)


def is_utf8(name: bytes) -> bool:
    """What the old tool tests with ``path.encode("utf8")`` on the surrogate-escaped str."""
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _join(base: bytes, relpath: bytes) -> bytes:
    if not relpath:
        return base
    return base.rstrip(b"/") + b"/" + relpath


def _remapped_components(base: bytes, relpath: bytes) -> list[tuple[str, bool]]:
    """Each component of ``relpath`` as (iRODS-safe str, was-remapped)."""
    out: list[tuple[str, bool]] = []
    prefix = base
    for component in (c for c in relpath.split(b"/") if c):
        prefix = _join(prefix, component)
        if is_utf8(component):
            out.append((component.decode("utf-8"), False))
        else:
            out.append((unicode_error_name(prefix), True))
    return out


@dataclass(frozen=True, slots=True)
class LogicalName:
    """Where one source entry goes in iRODS, and how to annotate it if its name was remapped.

    ``avus`` are attached to data objects when the name was remapped; the old tool never
    annotates collections, and neither does this one, except a collection whose own name is a
    digest (:func:`unicode_error_name`), which nothing else could map back to its directory
    (``collection_avus``). ``b64_path`` is the standard base64 of the absolute source path
    when remapped, else None.
    """

    path: str
    source_path: bytes
    avus: tuple[Avu, ...] = ()
    reason: str | None = None
    b64_path: bytes | None = None
    unicode_error_filename: str | None = None

    @property
    def collection_avus(self) -> tuple[Avu, ...]:
        named_by_digest = self.unicode_error_filename is not None and is_digest_name(self.unicode_error_filename)
        return self.avus if named_by_digest else ()

    def meta_fields(self) -> dict[str, Any]:
        """The ``meta`` keys the old tool sets for remapped names, for handlers that read them."""
        if self.reason is None:
            return {}
        if self.reason == REASON_CHARACTER_MAP:
            return {"b64_reason": self.reason, "b64_path_str_charmap": self.b64_path}
        fields: dict[str, Any] = {"b64_reason": self.reason, "b64_path_str": self.b64_path}
        if self.unicode_error_filename is not None:
            fields["unicode_error_filename"] = self.unicode_error_filename
        return fields


def logical_path(target: str, source_root: bytes, relpath: bytes,
                 char_map: CharacterMap | None = None) -> LogicalName:
    """The logical path of the entry at ``source_root/relpath`` under the root target collection.

    ``source_root`` is the realpath of the job's source (absolute bytes); ``relpath`` is
    relative to it, ``b""`` for the root itself (whose logical path is ``target``).
    """
    source_path = _join(source_root, relpath)
    components = _remapped_components(source_root, relpath)
    target_elements = [e for e in target.split("/") if e]
    plain = target_elements + [name for name, _ in components]
    unicode_error = any(remapped for _, remapped in components)
    avus: list[Avu] = []
    reason = None
    b64 = b64_source_path(source_path)
    if unicode_error:
        reason = REASON_UNICODE
        avus.append(Avu(UNICODE_ERROR_ATTRIBUTE, b64.decode("ascii"), B64_UNITS))
    elements = plain
    if char_map is not None:
        protected = [False] * len(target_elements) + [remapped for _, remapped in components]
        elements = [e if keep else char_map.translate_element(e) for e, keep in zip(plain, protected)]
        if elements != plain:
            reason = reason or REASON_CHARACTER_MAP
            avus.append(Avu(CHARACTER_MAP_ATTRIBUTE, b64.decode("ascii"), B64_UNITS))
    last_remapped = bool(components) and components[-1][1]
    return LogicalName(
        path="/" + "/".join(elements),
        source_path=source_path,
        avus=tuple(avus),
        reason=reason,
        b64_path=b64 if reason else None,
        unicode_error_filename=components[-1][0] if last_remapped else None,
    )


def path_bytes(path: str) -> int:
    """The length iRODS counts: bytes, the original ones for a name kept by surrogateescape."""
    return len(path.encode("utf-8", "surrogateescape"))


def catalog_physical_path(source_path: bytes) -> str:
    """The physical path to record when registering ``source_path`` (absolute bytes).

    iRODS stores UTF-8 only, so a path that is not UTF-8 is recorded with each offending
    component replaced by its ``irods_UnicodeEncodeError_`` name, which is what the old tool
    registered for files in the root (``<dir>/irods_UnicodeEncodeError_<b64>``, a file that
    does not exist: the catalog entry is unreadable until the file is renamed to match).
    """
    return "/" + "/".join(name for name, _ in _remapped_components(b"/", source_path))


def _avu_text(raw: bytes) -> str:
    """AVU values must be UTF-8; undecodable bytes are written as ``\\xNN`` rather than failing."""
    return raw.decode("utf-8", errors="backslashreplace")


SOCKET_AVU = Avu("socket_target", "socket", SPECIAL_FILE_UNITS)


def link_target_avu(source_path: bytes, link_text: bytes) -> Avu:
    """``link_target`` = ``join(dirname(link), readlink(link))``, unnormalised, as the old tool writes it."""
    return Avu("link_target", _avu_text(os.path.join(os.path.dirname(source_path), link_text)),
               SPECIAL_FILE_UNITS)


def special_file_avu(entry_type: str, source_path: bytes, link_text: bytes | None = None) -> Avu | None:
    """The AVU the old tool adds (if absent) to a data object made from a socket or a symlink.

    ``entry_type`` is an ``EntryType`` (or its string value); ``link_text`` is
    ``os.readlink(source_path)`` for links.
    """
    if entry_type == "socket":
        return SOCKET_AVU
    if entry_type == "link":
        if link_text is None:
            raise ValueError("link_text (os.readlink of the link) is required for a link")
        return link_target_avu(source_path, link_text)
    return None
