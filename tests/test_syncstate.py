"""Sync state shards: found by whichever rank asks, whatever the rank count."""

from __future__ import annotations

import json
import os
import sys

import pytest

from hpcingest.syncstate import RowCache, ShardFile, StateError, SyncState, check_state, shard_count
from tests.launchers import Launcher, run


def roundtrip(ranks: int, state_dir, mode: str) -> list:
    result = run(Launcher("mpiexec", ranks), [sys.executable, "-m", "tests.mpi_scripts.syncstate_roundtrip",
                                              str(state_dir), mode, "300", "40"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout.decode().splitlines()[-1])["problems"]


@pytest.mark.parametrize("write_ranks, read_ranks", [(3, 2), (4, 4), (1, 5)])
def test_records_are_found_with_another_rank_count(tmp_path, write_ranks, read_ranks):
    state_dir = tmp_path / "state"
    assert roundtrip(write_ranks, state_dir, "write") == []
    assert roundtrip(read_ranks, state_dir, "check") == []
    files = os.listdir(state_dir)
    assert "shards" in files and all(f.startswith("shard-") or f == "shards" for f in files)
    for name in files:
        assert os.stat(state_dir / name).st_mode & 0o077 == 0, f"{name} is readable by others"


def test_single_rank_lookup_and_ignore_cache(tmp_path):
    state = SyncState(str(tmp_path), rank=0, size=1)
    state.record(None, b"d", [(b"a", 5.0, 1), (b"b\xff", 6.0, 2)])
    found = state.lookup(None, b"d", [b"a", b"b\xff", b"c"])
    assert found == {b"a": 5.0, b"b\xff": 6.0}  # last sync times (the operation stays on disk)
    state.close()
    assert SyncState(str(tmp_path), 0, 1, ignore_cache=True).lookup(None, b"d", [b"a"]) == {}
    assert shard_count(str(tmp_path)) == 64
    assert shard_count(str(tmp_path), 300) == 64  # fixed once written, whatever the next run's size
    assert shard_count(str(tmp_path / "big"), 300) == 512 and shard_count(str(tmp_path / "big")) == 512


def test_bytes_per_file_on_disk(tmp_path):
    shard = ShardFile(str(tmp_path / "s.sqlite"))
    for d in range(100):
        shard.record(b"project/run%04d/output" % d, [(b"data%06d.bin" % i, 1.7e9 + i, 0) for i in range(1000)])
    shard.close()
    size = os.path.getsize(tmp_path / "s.sqlite")
    assert size / 100_000 < 200, f"{size / 100_000:.0f} bytes per file"


def test_many_small_segments_are_compacted_keeping_the_last_record(tmp_path):
    import sqlite3

    path = str(tmp_path / "shard.sqlite")
    shard = ShardFile(path)
    for round_number in range(200):  # 200 passes, each re-recording two names of a directory
        shard.record(b"d", [(b"a", float(round_number), 1), (b"b%d" % (round_number % 3), float(round_number), 2)])
    shard.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM segs").fetchone()[0] == 200
    shard = ShardFile(path)
    assert shard.lookup(b"d", [b"a", b"b0", b"b1", b"b2"]) == {b"a": 199.0, b"b0": 198.0, b"b1": 199.0,
                                                             b"b2": 197.0}
    shard.close()
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT count(*) FROM segs").fetchone()[0] == 1
    names, ops = connection.execute("SELECT names, ops FROM segs").fetchone()
    assert dict(zip(names.split(b"\0"), ops)) == {b"a": 1, b"b0": 2, b"b1": 2, b"b2": 2}


def test_state_written_one_row_per_name_is_migrated(tmp_path):
    import sqlite3

    path = str(tmp_path / "old.sqlite")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE dirs (id INTEGER PRIMARY KEY, path BLOB UNIQUE NOT NULL)")
    old.execute("CREATE TABLE sync (dir INTEGER NOT NULL, name BLOB NOT NULL, time REAL NOT NULL, "
                "op INTEGER NOT NULL, PRIMARY KEY (dir, name)) WITHOUT ROWID")
    old.execute("INSERT INTO dirs VALUES (1, ?)", (b"x/y",))
    old.executemany("INSERT INTO sync VALUES (1, ?, ?, 1)", [(b"f%d" % i, float(i)) for i in range(10)])
    old.commit()
    old.close()
    shard = ShardFile(path)
    assert shard.lookup(b"x/y", [b"f3", b"f9", b"nope"]) == {b"f3": 3.0, b"f9": 9.0}
    shard.close()
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "sync" not in tables and "segs" in tables


def test_completion_marks_commit_as_they_go_and_a_finished_pass_drops_the_unwritten(tmp_path, monkeypatch):
    from hpcingest import syncstate

    monkeypatch.setattr(syncstate, "_COMMIT_EVERY_ROWS", 3)
    path = str(tmp_path / "shard.sqlite")
    shard = ShardFile(path)
    for name in (b"a", b"b", b"c"):  # a pass that records nothing: the marks alone make the commit due
        shard.mark_complete(name, "pass-1")
    shard.mark_complete(b"late", "pass-1")
    shard.close(keep_marks=False)  # the pass is over: its last marks could serve no resume
    again = ShardFile(path)
    assert [again.is_complete(name, "pass-1") for name in (b"a", b"b", b"c", b"late")] == [True, True, True, False]
    again.mark_complete(b"stopped", "pass-2")
    again.close()  # a stopped pass keeps them: its resume skips those directories
    assert ShardFile(path).is_complete(b"stopped", "pass-2")


def test_a_directory_is_at_home_with_its_shard_owner_unless_some_ranks_own_none(tmp_path):
    shard_count(str(tmp_path), 4)  # the state of a first run with 4 ranks: 64 shards
    at_four, at_hundred = SyncState(str(tmp_path), 1, 4), SyncState(str(tmp_path), 1, 100)
    homes = {at_four.home_rank(b"dir%d" % i) for i in range(200)}
    assert homes == {0, 1, 2, 3} and all(at_four.home_rank(d) == at_four.owner(d)[1] for d in (b"a", b"b/c"))
    assert at_hundred.home_rank(b"a") is None  # 36 of the 100 ranks own no shard: spread by hash instead


@pytest.mark.parametrize("write_ranks, read_ranks", [(2, 4), (4, 3)])
def test_asynchronous_lookups_small_directories_whole_a_large_one_batch_by_batch(tmp_path, write_ranks, read_ranks):
    state_dir = tmp_path / "state"

    def run_script(ranks: int, mode: str) -> dict:
        result = run(Launcher("mpiexec", ranks), [sys.executable, "-m", "tests.mpi_scripts.syncstate_async",
                                                  str(state_dir), mode])
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return json.loads(result.stdout.decode().splitlines()[-1])

    assert run_script(write_ranks, "write")["problems"] == []
    report = run_script(read_ranks, "check")
    assert report["problems"] == []
    # every rank that statted a stolen batch of the large directory got only the names it asked for
    assert report["ranks_answered_batch_by_batch"] >= 1


def test_row_cache_evicts_the_least_recently_used_directory_past_its_row_budget():
    cache = RowCache(budget_rows=5)
    cache.put(b"a", {b"1": 1.0, b"2": 2.0})
    cache.put(b"b", {b"1": 1.0, b"2": 2.0})
    assert cache.get(b"a") is not None  # a is now the most recently used
    cache.put(b"c", {b"1": 1.0, b"2": 2.0})  # 6 rows: b goes, not a
    assert cache.get(b"b") is None and cache.get(b"a") is not None and cache.rows == 4
    cache.update(b"a", [(b"2", 5.0), (b"3", 3.0)])  # one new name, one new time
    assert cache.get(b"a") == {b"1": 1.0, b"2": 5.0, b"3": 3.0} and cache.rows == 5
    cache.update(b"gone", [(b"x", 1.0)])  # not held: nothing to update
    assert cache.get(b"gone") is None and cache.rows == 5
    cache.put(b"a", {b"1": 1.0})  # replaced, not counted twice
    assert cache.rows == 3
    cache.put(b"huge", {bytes([i]): 0.0 for i in range(50)})  # the newest stays however large
    assert len(cache) == 1 and cache.rows == 50 and cache.get(b"huge") is not None


def corrupt_middle_page(path: str) -> None:
    """Overwrite one page in the middle of a sqlite file: damage its header cannot show."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(bytes(range(256)) * 16)


def damaged_state(tmp_path, damage: str) -> tuple[str, str]:
    """A state directory with one shard of records, then ``damage`` done to it; returns the
    directory and the damaged file."""
    state_dir = str(tmp_path / "state")
    shard_count(state_dir)
    path = os.path.join(state_dir, "shard-0000.sqlite")
    shard = ShardFile(path)
    for i in range(100):
        shard.record(b"dir%d" % i, [(b"name%05d" % j, 1.0, 1) for j in range(100)])
    shard.close()
    if damage == "truncated":
        os.truncate(path, 1000)
    elif damage == "random":
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * 20)
    elif damage == "shards":
        path = os.path.join(state_dir, "shards")
        with open(path, "w") as f:
            f.write("abc\n")
    elif damage == "middle":
        corrupt_middle_page(path)
    return state_dir, path


@pytest.mark.parametrize("damage, why", [("truncated", "database disk image is malformed"),
                                         ("random", "file is not a database"), ("shards", "not a shard count")])
def test_check_state_names_a_damaged_shard_and_the_way_out(tmp_path, damage, why):
    """A shard cut short, one that is not a database and a shard count that is not a number
    were a sqlite3.DatabaseError or ValueError traceback from whichever rank opened them."""
    state_dir, path = damaged_state(tmp_path, damage)
    with pytest.raises(StateError) as raised:
        check_state(state_dir)
    message = str(raised.value)
    assert f"sync state {path} is damaged (" in message and why in message
    assert f"mv {state_dir} {state_dir}.damaged" in message
    with pytest.raises(StateError):  # the rank that opens it says the same (b"" is in shard 0)
        SyncState(state_dir, 0, 1).lookup(None, b"", [b"name00001"])


def test_damage_inside_a_shard_is_a_state_error_for_its_rank(tmp_path):
    """A damaged page in the middle passes the check (it reads only the header and schema);
    the rank that reads it gets the same StateError, which ends the job in one line."""
    state_dir, path = damaged_state(tmp_path, "middle")
    check_state(state_dir)
    shard = ShardFile(path)
    with pytest.raises(StateError, match="is damaged"):
        for i in range(100):
            shard.lookup(b"dir%d" % i, [b"name00001"])
