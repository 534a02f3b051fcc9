"""The profile's on-disk format: what write_rank saves, load_timeline gives back, and every
way a profile directory can be broken is a ProfileError that names the file."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from hpcingest.profile.timeline import SEGMENT_DTYPE, ProfileError, RankTimeline, Timeline, load_timeline, write_rank

T0 = 1_700_000_000.0


def make_rank(rank: int, kinds: list[str], pieces: list[tuple[float, float, str]], started: float = T0,
              ended: float | None = None, host: str | None = None) -> RankTimeline:
    """A RankTimeline from (start, end, kind name) with times relative to T0."""
    segments = np.empty(len(pieces), dtype=SEGMENT_DTYPE)
    for i, (start, end, kind) in enumerate(pieces):
        segments[i] = (T0 + start, T0 + end, kinds.index(kind))
    if ended is None:
        ended = T0 + (max(end for _, end, _ in pieces) if pieces else 0.0)
    return RankTimeline(rank=rank, host=host or f"node{rank // 2}", kinds=kinds, segments=segments,
                        started=started, ended=ended)


def _three_ranks() -> list[RankTimeline]:
    return [
        make_rank(2, ["idle", "list"], [(0.0, 1.0, "idle"), (1.0, 1.5, "list")], ended=T0 + 2),
        make_rank(0, ["irods:DATA_OBJ_PUT", "idle"], [(0.5, 1.0, "irods:DATA_OBJ_PUT")], started=T0 + 0.25),
        make_rank(1, ["idle"], [], started=T0 - 1, ended=T0 + 1),   # recorded nothing at all
    ]


def test_round_trip(tmp_path):
    directory = tmp_path / "profile" / "pass-1"      # created by write_rank
    ranks = _three_ranks()
    for rank in ranks:
        write_rank(directory, "job-a", 4, rank)
    loaded = load_timeline(directory)
    assert (loaded.job_name, loaded.pass_number) == ("job-a", 4)
    assert [r.rank for r in loaded.ranks] == [0, 1, 2]
    assert (loaded.started, loaded.ended) == (T0 - 1, T0 + 2)
    by_rank = {r.rank: r for r in ranks}
    for got in loaded.ranks:
        want = by_rank[got.rank]
        assert (got.host, got.kinds, got.started, got.ended) == (want.host, want.kinds, want.started, want.ended)
        assert got.segments.dtype == SEGMENT_DTYPE
        np.testing.assert_array_equal(got.segments, want.segments)
    names = sorted(os.listdir(directory))
    assert names == [f"rank-{r:05d}.{ext}" for r in range(3) for ext in ("json", "npy")]  # no temporary left
    for name in names:
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    meta = json.loads((directory / "rank-00002.json").read_text())
    assert set(meta) == {"job_name", "pass", "rank", "host", "kinds", "started", "ended"}


def test_rewrite_replaces(tmp_path):
    write_rank(tmp_path, "job", 1, make_rank(0, ["idle"], [(0, 1, "idle")]))
    write_rank(tmp_path, "job", 1, make_rank(0, ["list"], [(0, 2, "list"), (2, 3, "list")]))
    (rank,) = load_timeline(tmp_path).ranks
    assert rank.kinds == ["list"] and len(rank.segments) == 2


def test_timeline_from_ranks_sorts_and_spans():
    timeline = Timeline.from_ranks("job", 2, _three_ranks())
    assert [r.rank for r in timeline.ranks] == [0, 1, 2]
    assert (timeline.started, timeline.ended, timeline.wall_s) == (T0 - 1, T0 + 2, 3.0)
    with pytest.raises(ProfileError, match="no ranks"):
        Timeline.from_ranks("job", 2, [])


@pytest.mark.parametrize("pieces, problem", [
    ([(1.0, 2.0, "idle"), (0.0, 0.5, "idle")], "starts before the previous segment ends"),
    ([(0.0, 2.0, "idle"), (1.0, 3.0, "idle")], "starts before the previous segment ends"),
    ([(2.0, 1.0, "idle")], "ends before it starts"),
])
def test_write_rank_rejects_bad_segments(tmp_path, pieces, problem):
    with pytest.raises(ProfileError, match=f"rank 3: segment \\d+ {problem}"):
        write_rank(tmp_path, "job", 1, make_rank(3, ["idle"], pieces, ended=T0 + 5))
    assert os.listdir(tmp_path) == []


def test_write_rank_accepts_rounding_overlap(tmp_path):
    rank = make_rank(0, ["idle", "list"], [(0.0, 1.0, "idle"), (1.0, 2.0, "list")])
    rank.segments["start"][1] = np.nextafter(rank.segments["end"][0], 0)    # one float step early
    write_rank(tmp_path, "job", 1, rank)
    assert len(load_timeline(tmp_path).ranks[0].segments) == 2


def test_write_rank_rejects_unknown_kind_id(tmp_path):
    rank = make_rank(0, ["idle", "list"], [(0.0, 1.0, "list")])
    rank.kinds = ["idle"]
    with pytest.raises(ProfileError, match="kind id beyond the 1 kinds"):
        write_rank(tmp_path, "job", 1, rank)


def test_write_rank_rejects_wrong_dtype(tmp_path):
    rank = make_rank(0, ["idle"], [])
    rank.segments = np.zeros((2, 3))
    with pytest.raises(ProfileError, match="1-d array"):
        write_rank(tmp_path, "job", 1, rank)


# --- broken directories -----------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A good two-rank profile directory to break."""
    for rank in (make_rank(0, ["idle"], [(0, 1, "idle")]), make_rank(1, ["list"], [(0, 2, "list")])):
        write_rank(tmp_path, "job", 7, rank)
    return tmp_path


def test_missing_directory(tmp_path):
    with pytest.raises(ProfileError, match="no profile directory .*nowhere"):
        load_timeline(tmp_path / "nowhere")


def test_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("not a rank file")
    with pytest.raises(ProfileError, match="no rank-\\*.json/.npy files"):
        load_timeline(tmp_path)


def test_json_without_npy(saved):
    os.unlink(saved / "rank-00001.npy")
    with pytest.raises(ProfileError, match="rank-00001.npy: missing"):
        load_timeline(saved)


def test_npy_without_json(saved):
    os.unlink(saved / "rank-00000.json")
    with pytest.raises(ProfileError, match="rank-00000.json: missing"):
        load_timeline(saved)


@pytest.mark.parametrize("content", [b"", b"garbage, not numpy", b"\x93NUMPY\x01\x00truncated"])
def test_corrupt_npy(saved, content):
    (saved / "rank-00001.npy").write_bytes(content)
    with pytest.raises(ProfileError, match="rank-00001.npy: unreadable or not a segment array"):
        load_timeline(saved)


def test_pickled_npy_is_refused(saved):
    np.save(saved / "rank-00001.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProfileError, match="rank-00001.npy: unreadable"):
        load_timeline(saved)


def test_npy_of_wrong_dtype(saved):
    np.save(saved / "rank-00001.npy", np.zeros(4))
    with pytest.raises(ProfileError, match="rank-00001.npy: expected a 1-d array of"):
        load_timeline(saved)


@pytest.mark.parametrize("text, problem", [
    ("{not json", "unreadable or not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"job_name": "job"}', "missing key 'pass'"),
])
def test_corrupt_json(saved, text, problem):
    (saved / "rank-00000.json").write_text(text)
    with pytest.raises(ProfileError, match=f"rank-00000.json: {problem}"):
        load_timeline(saved)


def _edit_json(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("changes, problem", [
    ({"rank": 5}, "says rank 5 but the file name says rank 1"),
    ({"pass": 8}, "is job 'job' pass 8, but other ranks are job 'job' pass 7"),
    ({"job_name": "other"}, "is job 'other' pass 7"),
    ({"kinds": "list"}, "'kinds' has the wrong type"),
    ({"started": True}, "'started' has the wrong type"),
    ({"kinds": []}, "kind id beyond the 0 kinds"),
    ({"started": 2e9, "ended": 1e9}, "bad recording interval"),
])
def test_inconsistent_json(saved, changes, problem):
    _edit_json(saved / "rank-00001.json", **changes)
    with pytest.raises(ProfileError, match="rank-00001") as error:
        load_timeline(saved)
    assert problem in str(error.value)


def test_profile_error_is_a_value_error():
    assert issubclass(ProfileError, ValueError)
