"""Deterministic sample trees for the quick start, the demo and the benchmarks.

Two layouts: ``balanced`` (directories of ~100 files, a few levels deep, sizes spread over
several orders of magnitude, a symlink and a non-UTF-8 name), and ``skewed`` (one huge flat
directory, a 500-deep chain and a wide fan-out: the shape that pins naive walkers).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass


@dataclass
class SampleTree:
    root: bytes
    files: int
    directories: int
    bytes: int


def generate(root: str | bytes, files: int = 10_000, seed: int = 0, layout: str = "balanced",
             max_file_size: int = 64 * 1024) -> SampleTree:
    root = os.fsencode(root)
    os.makedirs(root, exist_ok=True)
    rng = random.Random(seed)
    if layout == "balanced":
        return _balanced(root, files, rng, max_file_size)
    if layout == "skewed":
        return _skewed(root, files, rng)
    raise ValueError(f"unknown layout {layout!r} (balanced or skewed)")


def _file_size(rng: random.Random, limit: int) -> int:
    return min(limit, int(2 ** rng.uniform(0, 17)) - 1)


def _write(path: bytes, size: int) -> None:
    with open(path, "wb") as f:
        if size:
            f.write(os.urandom(min(size, 64)) * (size // 64) + os.urandom(size % 64))


def _balanced(root: bytes, files: int, rng: random.Random, max_file_size: int) -> SampleTree:
    tree = SampleTree(root, 0, 0, 0)
    per_dir = 100
    n_dirs = max(1, files // per_dir)
    dirs = []
    for i in range(n_dirs):
        path = os.path.join(root, b"group%02d" % (i % 10), b"run%04d" % i)
        os.makedirs(path, exist_ok=True)
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
    os.makedirs(flat, exist_ok=True)
    tree.directories += 1
    for i in range(files // 2):
        open(os.path.join(flat, b"f%07d" % i), "wb").close()
        tree.files += 1
    chain = root
    for i in range(500):
        chain = os.path.join(chain, b"c")
        os.mkdir(chain)
        open(os.path.join(chain, b"leaf"), "wb").close()
        tree.directories += 1
        tree.files += 1
    remaining = files - tree.files
    fan = max(1, remaining // 20)
    for i in range(fan):
        path = os.path.join(root, b"wide", b"d%05d" % i)
        os.makedirs(path, exist_ok=True)
        tree.directories += 1
        for j in range(rng.randrange(1, 40) if i < fan - 1 else max(0, files - tree.files)):
            if tree.files >= files:
                break
            open(os.path.join(path, b"g%03d" % j), "wb").close()
            tree.files += 1
    tree.directories += 1  # wide/
    return tree
