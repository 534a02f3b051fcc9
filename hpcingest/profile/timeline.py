"""Per-rank activity timelines: the data model and its files.

Each rank writes its own pair of files at the end of a pass, so no collective step (and no
rank holding everyone's segments) is needed to save a profile; ``hpcingest profile`` reads
them all back later, possibly on another machine:

* ``rank-<rank:05d>.npy``  -- the segments, ``np.save`` of a ``SEGMENT_DTYPE`` array (loaded
  with ``allow_pickle=False``, so a profile file can never run code);
* ``rank-<rank:05d>.json`` -- ``{"job_name", "pass", "rank", "host", "kinds", "started",
  "ended"}``; written after the ``.npy``, so a rank that died half-way leaves an ``.npy``
  without its ``.json`` and the loader says so instead of showing half a picture.

Both files are written under a temporary name and renamed into place (mode 0600): a reader
never sees a partly written file.  Times are seconds since the epoch (``time.time()``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: One activity of one rank: [start, end) in seconds since the epoch, ``kind`` indexes ``kinds``.
SEGMENT_DTYPE = np.dtype([("start", "<f8"), ("end", "<f8"), ("kind", "<u2")])

#: Overlap between consecutive segments accepted as rounding (an epoch time's float step is
#: about 0.24 us); renderers work at microsecond resolution anyway.
OVERLAP_TOLERANCE_S = 1e-6

_RANK_FILE = re.compile(r"^rank-(\d+)\.(json|npy)$")


class ProfileError(ValueError):
    """A profile cannot be written or read; the message names the file and the problem."""


@dataclass
class RankTimeline:
    """What one rank did: exclusive segments, each of one kind, inside [started, ended].

    Time inside [started, ended] that no segment covers is "other" (interpreter and engine
    bookkeeping the recorder does not attribute).
    """

    rank: int
    host: str
    kinds: list[str]        # kind id -> kind name, e.g. ["idle", "steal", "list", "irods:DATA_OBJ_PUT"]
    segments: np.ndarray    # SEGMENT_DTYPE, non-overlapping, sorted by start
    started: float          # when this rank started recording
    ended: float            # when it stopped

    @property
    def wall_s(self) -> float:
        return self.ended - self.started

    def check(self, where: str = "") -> None:
        """Raise ProfileError unless the segments keep the promises renderers rely on.

        Renderers use cumulative sums and binary searches, which silently give nonsense on
        unsorted or overlapping segments; failing here names the rank and the segment.
        Rounding-size overlaps (OVERLAP_TOLERANCE_S) and segments slightly outside
        [started, ended] are tolerated (the recorder's two clocks can disagree by a rounding
        error); renderers clip to [started, ended].
        """
        where = where or f"rank {self.rank}"
        segments = self.segments
        if not isinstance(segments, np.ndarray) or segments.dtype != SEGMENT_DTYPE or segments.ndim != 1:
            got = getattr(segments, "dtype", type(segments).__name__)
            raise ProfileError(f"{where}: segments must be a 1-d array of {SEGMENT_DTYPE}, got {got}")
        if not all(isinstance(kind, str) for kind in self.kinds):
            raise ProfileError(f"{where}: kinds must be strings, got {self.kinds!r}")
        if not np.isfinite(self.started) or not np.isfinite(self.ended) or self.ended < self.started:
            raise ProfileError(f"{where}: bad recording interval started={self.started} ended={self.ended}")
        if not len(segments):
            return
        starts, ends = segments["start"], segments["end"]
        _first_bad(~(np.isfinite(starts) & np.isfinite(ends)), where, "has a non-finite time")
        _first_bad(ends < starts, where, "ends before it starts")
        _first_bad(segments["kind"] >= len(self.kinds), where,
                   f"has a kind id beyond the {len(self.kinds)} kinds listed")
        _first_bad(np.concatenate(([False], starts[1:] < ends[:-1] - OVERLAP_TOLERANCE_S)), where,
                   "starts before the previous segment ends (segments must be sorted and not overlap)")


def _first_bad(bad: np.ndarray, where: str, problem: str) -> None:
    if bad.any():
        index = int(np.argmax(bad))
        raise ProfileError(f"{where}: segment {index} {problem}")


@dataclass
class Timeline:
    """All ranks of one pass of one job."""

    job_name: str
    pass_number: int
    ranks: list[RankTimeline]   # sorted by rank
    started: float              # min of ranks' started
    ended: float                # max of ranks' ended

    @classmethod
    def from_ranks(cls, job_name: str, pass_number: int, ranks: list[RankTimeline]) -> "Timeline":
        """Build a Timeline with ranks sorted and the overall interval derived from them."""
        if not ranks:
            raise ProfileError(f"job {job_name!r} pass {pass_number}: no ranks")
        ranks = sorted(ranks, key=lambda r: r.rank)
        return cls(job_name=job_name, pass_number=pass_number, ranks=ranks,
                   started=min(r.started for r in ranks), ended=max(r.ended for r in ranks))

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


def _stem(rank: int) -> str:
    return f"rank-{rank:05d}"


def _write_atomically(path: Path, write: Any) -> None:
    """Write through ``write(binary_file)`` to a 0600 temporary file, then rename it over path."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_rank(directory: str | os.PathLike, job_name: str, pass_number: int, rank: RankTimeline) -> None:
    """Save one rank's recording as rank-NNNNN.npy + rank-NNNNN.json in directory (created 0700).

    The segments are checked first, so a recorder bug fails on the rank that has it rather
    than when someone later tries to look at the profile.
    """
    rank.check()
    directory = Path(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = _stem(rank.rank)
        _write_atomically(directory / f"{stem}.npy",
                          lambda file: np.save(file, rank.segments, allow_pickle=False))
        meta = {"job_name": job_name, "pass": pass_number, "rank": rank.rank, "host": rank.host,
                "kinds": list(rank.kinds), "started": rank.started, "ended": rank.ended}
        _write_atomically(directory / f"{stem}.json",
                          lambda file: file.write(json.dumps(meta, indent=1).encode("utf-8")))
    except OSError as error:
        raise ProfileError(f"cannot write the profile of rank {rank.rank} to {directory}: {error}") from error


_META_TYPES: dict[str, tuple[type, ...]] = {
    "job_name": (str,), "pass": (int,), "rank": (int,), "host": (str,), "kinds": (list,),
    "started": (int, float), "ended": (int, float),
}


def _read_meta(path: Path, rank: int) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: unreadable or not JSON: {error}") from error
    if not isinstance(meta, dict):
        raise ProfileError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    for key, types in _META_TYPES.items():
        if key not in meta:
            raise ProfileError(f"{path}: missing key {key!r}")
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ProfileError(f"{path}: {key!r} has the wrong type ({type(value).__name__})")
    if meta["rank"] != rank:
        raise ProfileError(f"{path}: says rank {meta['rank']} but the file name says rank {rank}")
    return meta


def _read_segments(path: Path) -> np.ndarray:
    try:
        segments = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise ProfileError(f"{path}: missing (its .json exists; did the rank die while saving?)") from error
    except (OSError, ValueError, EOFError) as error:
        raise ProfileError(f"{path}: unreadable or not a segment array: {error}") from error
    if not isinstance(segments, np.ndarray) or segments.dtype != SEGMENT_DTYPE or segments.ndim != 1:
        raise ProfileError(f"{path}: expected a 1-d array of {SEGMENT_DTYPE}, "
                           f"got {getattr(segments, 'dtype', type(segments).__name__)}")
    return segments


def load_timeline(directory: str | os.PathLike) -> Timeline:
    """Read every rank-*.json/.npy pair in directory into one Timeline (ranks sorted).

    Every problem (no directory, no rank files, a pair incomplete, a file corrupt, ranks
    from different jobs or passes) is a ProfileError naming the file, so ``hpcingest
    profile`` can print it as is.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ProfileError(f"no profile directory {directory}")
    found: dict[int, dict[str, Path]] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise ProfileError(f"cannot list the profile directory {directory}: {error}") from error
    for name in names:
        match = _RANK_FILE.match(name)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = directory / name
    if not found:
        raise ProfileError(f"no rank-*.json/.npy files in the profile directory {directory}")
    ranks: list[RankTimeline] = []
    job: tuple[str, int] | None = None
    for rank in sorted(found):
        files = found[rank]
        if "json" not in files:
            raise ProfileError(f"{files['npy'].with_suffix('.json')}: missing "
                               "(its .npy exists; did the rank die while saving?)")
        json_path = files["json"]
        meta = _read_meta(json_path, rank)
        if job is None:
            job = (meta["job_name"], meta["pass"])
        elif (meta["job_name"], meta["pass"]) != job:
            raise ProfileError(f"{json_path}: is job {meta['job_name']!r} pass {meta['pass']}, but other ranks "
                               f"are job {job[0]!r} pass {job[1]}: one profile directory per pass")
        timeline = RankTimeline(rank=rank, host=meta["host"], kinds=list(meta["kinds"]),
                                segments=_read_segments(files.get("npy", json_path.with_suffix(".npy"))),
                                started=float(meta["started"]), ended=float(meta["ended"]))
        timeline.check(where=str(json_path.with_suffix("")))
        ranks.append(timeline)
    assert job is not None
    return Timeline.from_ranks(job[0], job[1], ranks)
