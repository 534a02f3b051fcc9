"""Generators of test trees, each built to break a walker in a different way."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from dataclasses import dataclass

TRICKY_NAMES = [
    b"caf\xe9-latin1",  # not UTF-8
    b"\xff\xfe\x80 raw bytes",
    b"line\nbreak",
    b"tab\there",
    b"double\"quote",
    b"single'quote",
    b"back`tick`",
    b"-leading-dash",
    b"--option-like",
    b" leading space",
    b"trailing space ",
    b"*star?[glob]",
    b"$dollar",
    b"\\backslash",
    b"x" * 255,
    "日本語-名前".encode(),
    b"emoji-\xf0\x9f\x93\x81",
]


def write_file(path: bytes, size: int) -> None:
    with open(path, "wb") as f:
        if size:
            f.write(b"x" * size)


def random_tree(root: bytes, seed: int = 1, entries: int = 3000, max_depth: int = 8) -> None:
    """Deep and wide at random: directories of very different sizes, files of many sizes."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    dirs = [(root, 0)]
    for i in range(entries):
        parent, depth = rng.choice(dirs)
        if depth < max_depth and rng.random() < 0.15:
            path = os.path.join(parent, b"d%d" % i)
            os.mkdir(path)
            dirs.append((path, depth + 1))
        else:
            write_file(os.path.join(parent, b"f%d" % i), rng.choice([0, 1, 7, 100, 4096, 70000]))


def flat_tree(root: bytes, files: int = 100_000) -> None:
    os.makedirs(os.path.join(root, b"flat"), exist_ok=True)
    for i in range(files):
        open(os.path.join(root, b"flat", b"file%06d" % i), "wb").close()


def chain_tree(root: bytes, depth: int = 500, name: bytes = b"level") -> None:
    """A deep chain; with long names its paths pass PATH_MAX, so only *at() calls work."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY) if os.path.isdir(root) else None
    if fd is None:
        os.makedirs(root)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(depth):
        component = name + b"%03d" % i
        os.mkdir(component, dir_fd=fd)
        with open(os.open(b"file", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"%d" % i)
        nfd = os.open(component, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)


def tricky_tree(root: bytes) -> None:
    os.makedirs(root, exist_ok=True)
    for name in TRICKY_NAMES:
        write_file(os.path.join(root, name), len(name))
    sub = os.path.join(root, b"dir\xe9\nwith-newline")
    os.mkdir(sub)
    for name in TRICKY_NAMES[:5]:
        write_file(os.path.join(sub, name), 3)


def links_tree(root: bytes) -> None:
    """Loops, dangling links and links to directories: none may be followed."""
    os.makedirs(os.path.join(root, b"real", b"inner"), exist_ok=True)
    write_file(os.path.join(root, b"real", b"inner", b"data"), 10)
    os.symlink(b"..", os.path.join(root, b"real", b"loop-up"))
    os.symlink(b".", os.path.join(root, b"real", b"loop-self"))
    os.symlink(b"real", os.path.join(root, b"dirlink"))
    os.symlink(b"does/not/exist", os.path.join(root, b"dangling"))
    os.symlink(b"b-link", os.path.join(root, b"a-link"))
    os.symlink(b"a-link", os.path.join(root, b"b-link"))


def special_tree(root: bytes) -> list[socket.socket]:
    """FIFOs and a socket: typed, never opened.  Returns the bound sockets to keep alive."""
    os.makedirs(root, exist_ok=True)
    os.mkfifo(os.path.join(root, b"fifo"))
    os.makedirs(os.path.join(root, b"sub"), exist_ok=True)
    os.mkfifo(os.path.join(root, b"sub", b"fifo2"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(root, b"sock"))
    write_file(os.path.join(root, b"sub", b"plain"), 5)
    return [sock]


def unreadable_tree(root: bytes) -> None:
    """Permission errors; only meaningful for a user without CAP_DAC_OVERRIDE."""
    os.makedirs(root, exist_ok=True)
    for name, mode in ((b"closed", 0o000), (b"list-only", 0o444), (b"search-only", 0o111)):
        path = os.path.join(root, name)
        os.mkdir(path)
        write_file(os.path.join(path, b"inside"), 4)
        os.mkdir(os.path.join(path, b"subdir"))
        os.chmod(path, mode)
    write_file(os.path.join(root, b"secret"), 6)
    os.chmod(os.path.join(root, b"secret"), 0o000)
    write_file(os.path.join(root, b"public"), 6)


@dataclass
class FindView:
    """What find(1) sees of a tree, with %s forcing it to lstat every entry as we do."""

    paths: set[bytes]
    counts: dict[str, int]
    bytes: int
    errors: int


def find_view(root: bytes, prefix: list[str] | None = None) -> FindView:
    out = subprocess.run([*(prefix or []), "find", root, "-mindepth", "1", "-printf", r"%y %s %P\0"],
                         capture_output=True)
    view = FindView(set(), {"files": 0, "directories": 0, "symlinks": 0, "other": 0}, 0, 0)
    key = {b"f": "files", b"d": "directories", b"l": "symlinks"}
    for record in filter(None, out.stdout.split(b"\0")):
        kind, size, path = record.split(b" ", 2)
        view.paths.add(path)
        view.counts[key.get(kind, "other")] += 1
        if kind == b"f":
            view.bytes += int(size)
    view.errors = sum(1 for line in out.stderr.splitlines() if line.startswith(b"find:"))
    return view
