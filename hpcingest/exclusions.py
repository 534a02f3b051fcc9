"""Exclusion rules with the old framework's semantics (peer.md §3.2).

Regexes are applied with ``re.match`` (anchored at the start) to the *absolute* source path,
decoded with surrogateescape; an excluded directory prunes its whole subtree.  Unlike the
old tool, an omitted option means "no rule" rather than the regexes ``n``, ``o``, ``n``, ``e``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from hpcingest.records import EntryType


class ExclusionError(ValueError):
    """A rule that cannot be used; raised before any rank starts work."""


@dataclass(frozen=True)
class Exclusions:
    file_patterns: tuple[re.Pattern[str], ...] = ()
    directory_patterns: tuple[re.Pattern[str], ...] = ()
    types: frozenset[EntryType] = field(default_factory=frozenset)

    @classmethod
    def parse(
        cls,
        file_types: Iterable[str] | None = None,
        file_names: Iterable[str] | None = None,
        directory_names: Iterable[str] | None = None,
    ) -> "Exclusions":
        return cls(
            file_patterns=_compile(file_names, "--exclude_file_name"),
            directory_patterns=_compile(directory_names, "--exclude_directory_name"),
            types=_parse_types(file_types),
        )

    @property
    def needs_paths(self) -> bool:
        """Whether matching needs the decoded absolute path (skip the decode when not)."""
        return bool(self.file_patterns or self.directory_patterns)

    def excludes(self, entry_type: EntryType, abspath: bytes) -> bool:
        if entry_type in self.types:
            return True
        patterns = self.directory_patterns if entry_type is EntryType.DIRECTORY else self.file_patterns
        if not patterns:
            return False
        text = os.fsdecode(abspath)
        return any(p.match(text) for p in patterns)


def _compile(patterns: Iterable[str] | None, option: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in _flatten(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ExclusionError(f"{option}: invalid regular expression {pattern!r}: {err}") from None
    return tuple(compiled)


def _parse_types(values: Iterable[str] | None) -> frozenset[EntryType]:
    types = set()
    for value in _flatten(values):
        for name in filter(None, (v.strip() for v in value.split(","))):
            try:
                types.add(EntryType(name))
            except ValueError:
                valid = ", ".join(t.value for t in EntryType)
                raise ExclusionError(f"--exclude_file_type: unknown type {name!r} (valid: {valid})") from None
    return frozenset(types)


def _flatten(values: Iterable[str] | None) -> list[str]:
    """argparse gives lists (nargs='+' or nargs=1); the old default is the string "none"."""
    if values is None or values == "none":
        return []
    if isinstance(values, str):
        values = [values]
    return [v for v in values if v != "none"]
