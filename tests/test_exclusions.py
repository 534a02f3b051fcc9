"""Exclusion rules: unit semantics, and end to end through `scan` on 2 real ranks."""

from __future__ import annotations

import os

import pytest

from hpcingest.exclusions import ExclusionError, Exclusions
from hpcingest.records import EntryType
from tests.launchers import Launcher
from tests.test_scan import scan


def test_regexes_match_from_the_start_of_the_absolute_path():
    rules = Exclusions.parse(None, [r"(\S+)\.tmp"], ["/data/skip"])
    assert rules.excludes(EntryType.REGULAR, b"/data/x.tmp")
    assert rules.excludes(EntryType.REGULAR, b"/data/x.tmpl")  # re.match: a prefix match is enough
    assert not rules.excludes(EntryType.REGULAR, b"/data/x.txt")
    assert rules.excludes(EntryType.DIRECTORY, b"/data/skip")
    assert rules.excludes(EntryType.DIRECTORY, b"/data/skipped")  # anchored at the start only
    assert not rules.excludes(EntryType.DIRECTORY, b"/other/data/skip")
    # file rules never apply to directories, directory rules never to files
    assert not rules.excludes(EntryType.DIRECTORY, b"/data/d.tmp")
    assert not rules.excludes(EntryType.REGULAR, b"/data/skip")


def test_regexes_see_undecodable_names_through_surrogateescape():
    rules = Exclusions.parse(None, [".*/caf\udce9$"], None)
    assert rules.excludes(EntryType.REGULAR, b"/d/caf\xe9")


def test_types_and_the_old_none_default():
    rules = Exclusions.parse(["regular,link"], "none", "none")
    assert rules.types == {EntryType.REGULAR, EntryType.LINK}
    assert not rules.needs_paths
    assert Exclusions.parse(None, None, None) == Exclusions()


@pytest.mark.parametrize("types, files, dirs, message", [
    (["regular,bogus"], None, None, "unknown type 'bogus'"),
    (None, ["[unclosed"], None, "--exclude_file_name: invalid regular expression"),
    (None, None, ["(?P<"], "--exclude_directory_name: invalid regular expression"),
])
def test_bad_rules_are_rejected_with_the_option_name(types, files, dirs, message):
    with pytest.raises(ExclusionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Exclusions.parse(types, files, dirs)


@pytest.fixture(scope="module")
def rule_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    for rel in ["keep/a.txt", "keep/b.tmp", "skipdir/x", "skipdir/deeper/y", "other/skipdir2/z", "top.tmp"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
    os.symlink("keep", root / "link")
    os.mkfifo(root / "fifo")
    return root


ALL = {"keep", "keep/a.txt", "keep/b.tmp", "skipdir", "skipdir/x", "skipdir/deeper", "skipdir/deeper/y",
       "other", "other/skipdir2", "other/skipdir2/z", "top.tmp", "link", "fifo"}


@pytest.mark.parametrize("args, removed", [
    ([], set()),
    (["--exclude_file_type", "link"], {"link"}),
    (["--exclude_file_type", "pipe,link"], {"link", "fifo"}),
    (["--exclude_file_type", "regular"], {"keep/a.txt", "keep/b.tmp", "skipdir/x", "skipdir/deeper/y",
                                          "other/skipdir2/z", "top.tmp"}),
    (["--exclude_file_type", "directory"], ALL - {"top.tmp", "link", "fifo"}),
    (["--exclude_file_name", r"(\S+)\.tmp"], {"keep/b.tmp", "top.tmp"}),
    (["--exclude_file_name", r".*/keep/", r".*fifo"], {"keep/a.txt", "keep/b.tmp", "fifo"}),
    (["--exclude_directory_name", r".*/skipdir$"], {"skipdir", "skipdir/x", "skipdir/deeper", "skipdir/deeper/y"}),
    (["--exclude_directory_name", r".*/skipdir"], {"skipdir", "skipdir/x", "skipdir/deeper", "skipdir/deeper/y",
                                                   "other/skipdir2", "other/skipdir2/z"}),
])
def test_scan_applies_rules_and_prunes_subtrees(rule_tree, tmp_path, args, removed):
    listing, summary, _ = scan(Launcher("mpiexec", 2), os.fsencode(rule_tree), tmp_path, "--files_per_task", "2",
                               *args)
    assert {os.fsdecode(p) for p in listing} == ALL - removed
    assert summary["errors"] == 0
    # pruned subtrees are never visited, so only the top of each counts as excluded
    assert summary["excluded"] > 0 or not removed
