"""Deterministic sample trees for the quick start, the demo and the benchmarks.

Two layouts: ``balanced`` (directories of ~100 files, a few levels deep, sizes spread over
several orders of magnitude, a symlink and a non-UTF-8 name), and ``skewed`` (one huge flat
directory, a 500-deep chain and a wide fan-out: the shape that pins naive walkers).

A tree is only ever made in a new or empty directory, and every directory and file in it is
created, never opened: ``sample-tree DIR`` run as root in a shared directory overwrote the
files already there and wrote through symlinks planted in it (a link named like a sample file
had its target overwritten).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from hpcingest.outputs import create_new


@dataclass
class SampleTree:
    root: bytes
    files: int
    directories: int
    bytes: int


class SampleTreeError(ValueError):
    """The tree cannot be made as asked (a negative count, a directory with something in it)."""


def generate(root: str | bytes, files: int = 10_000, seed: int = 0, layout: str = "balanced",
             max_file_size: int = 64 * 1024) -> SampleTree:
    """Make a sample tree of ``files`` files in ``root``, which must not exist or be empty
    (SampleTreeError otherwise: nothing there is ever overwritten); OSError when the
    filesystem refuses, or something appeared in ``root`` while the tree was being made."""
    if files < 0:
        raise SampleTreeError(f"--files {files}: the number of files cannot be negative")
    if layout not in ("balanced", "skewed"):
        raise SampleTreeError(f"unknown layout {layout!r} (balanced or skewed)")
    root = os.fsencode(root)
    _empty_directory(root)
    rng = random.Random(seed)
    if layout == "balanced":
        return _balanced(root, files, rng, max_file_size)
    return _skewed(root, files, rng)


def _empty_directory(root: bytes) -> None:
    """Make ``root``, or find it empty: a tree is never generated among files already there."""
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    try:
        os.mkdir(root)
        return
    except FileExistsError:
        pass
    shown = os.fsdecode(root)
    if not os.path.isdir(root):
        raise SampleTreeError(f"{shown!r} exists and is not a directory")
    if os.listdir(root):
        raise SampleTreeError(f"{shown!r} is not empty: a sample tree is made in a new or empty directory, "
                              "so nothing already there is overwritten")


def _file_size(rng: random.Random, limit: int) -> int:
    return min(limit, int(2 ** rng.uniform(0, 17)) - 1)


def _write(path: bytes, size: int) -> None:
    with open(create_new(path), "wb") as f:
        if size:
            f.write(os.urandom(min(size, 64)) * (size // 64) + os.urandom(size % 64))


def _balanced(root: bytes, files: int, rng: random.Random, max_file_size: int) -> SampleTree:
    tree = SampleTree(root, 0, 0, 0)
    per_dir = 100
    n_dirs = max(1, files // per_dir)
    dirs = []
    for i in range(n_dirs):
        group = os.path.join(root, b"group%02d" % (i % 10))
        if i < 10:
            os.mkdir(group)
        path = os.path.join(group, b"run%04d" % i)
        os.mkdir(path)
        dirs.append(path)
    tree.directories = len({os.path.dirname(d) for d in dirs}) + len(dirs)
    for i in range(files):
        size = _file_size(rng, max_file_size)
        _write(os.path.join(dirs[i % n_dirs], b"data%06d.bin" % i), size)
        tree.files += 1
        tree.bytes += size
    if files:
        os.symlink(b"../run%04d" % 0, os.path.join(dirs[0], b"link-to-self-dir"))
        _write(os.path.join(dirs[0], b"caf\xe9-not-utf8.txt"), 5)
        tree.files += 1
        tree.bytes += 5
    return tree


def _skewed(root: bytes, files: int, rng: random.Random) -> SampleTree:
    """Half the files in one flat directory, the rest over a wide fan-out, plus a deep chain."""
    tree = SampleTree(root, 0, 0, 0)
    flat = os.path.join(root, b"flat")
    os.mkdir(flat)
    tree.directories += 1
    for i in range(files // 2):
        _write(os.path.join(flat, b"f%07d" % i), 0)
        tree.files += 1
    chain = root
    for i in range(500):
        chain = os.path.join(chain, b"c")
        os.mkdir(chain)
        _write(os.path.join(chain, b"leaf"), 0)
        tree.directories += 1
        tree.files += 1
    remaining = files - tree.files
    fan = max(1, remaining // 20)
    os.mkdir(os.path.join(root, b"wide"))
    for i in range(fan):
        path = os.path.join(root, b"wide", b"d%05d" % i)
        os.mkdir(path)
        tree.directories += 1
        for j in range(rng.randrange(1, 40) if i < fan - 1 else max(0, files - tree.files)):
            if tree.files >= files:
                break
            _write(os.path.join(path, b"g%03d" % j), 0)
            tree.files += 1
    tree.directories += 1  # wide/
    return tree
