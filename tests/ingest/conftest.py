"""Ingest tests: one zone for the session (built-in, or the real one IRODS_ENVIRONMENT_FILE names)."""

from __future__ import annotations

import itertools
import os
import posixpath
from dataclasses import dataclass

import pytest
from irods.column import Like
from irods.models import Collection, DataObject

from hpcingest.irods.listing import exact_rows
from hpcingest.naming import catalog_physical_path, logical_path
from tests.launchers import Launcher, hpcingest_argv, run

HANDLERS = os.path.join(os.path.dirname(__file__), "handlers")
OLD_HANDLERS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "handlers")  # old-framework examples
_counter = itertools.count()


@pytest.fixture
def target(zone):
    """A fresh collection path for each test (created by the job itself)."""
    return f"{zone.home}/ingest{os.getpid()}_{next(_counter)}"


@dataclass
class Catalog:
    objects: dict[str, tuple]  # relative path -> (size, modify time, physical path, replica count)
    collections: set[str]  # relative paths ("" is the target itself)


def catalog(zone, target: str) -> Catalog:
    objects, replicas = {}, {}
    with zone.session() as session:
        columns = (Collection.name, DataObject.name, DataObject.size, DataObject.modify_time, DataObject.path,
                   DataObject.replica_number)  # names exact, control characters included
        rows = list(exact_rows(session.query(*columns).filter(Collection.name == target)))
        rows += list(exact_rows(session.query(*columns).filter(Like(Collection.name, target + "/%"))))
        for row in rows:
            rel = posixpath.relpath(posixpath.join(row[Collection.name], row[DataObject.name]), target)
            replicas[rel] = replicas.get(rel, 0) + 1
            objects[rel] = (int(row[DataObject.size]), int(row[DataObject.modify_time].timestamp()),
                            row[DataObject.path])
        colls = {target} if session.collections.exists(target) else set()
        colls |= {row[Collection.name] for row in exact_rows(session.query(Collection.name)
                                                             .filter(Like(Collection.name, target + "/%")))}
    return Catalog({k: (*v, replicas[k]) for k, v in objects.items()},
                   {posixpath.relpath(c, target) if c != target else "" for c in colls})


def source_view(root) -> Catalog:
    """What the catalog must hold after a REGISTER of ``root``: every non-directory, lstat facts.

    Names that are not UTF-8 map to the irods_UnicodeEncodeError_ scheme (tested on its own in
    tests/test_naming.py)."""
    root = os.path.realpath(os.fsencode(root))
    objects, collections = {}, {""}

    def logical(path: bytes) -> str:
        return logical_path("/t", root, os.path.relpath(path, root)).path[len("/t/"):]

    for top, dirs, files in os.walk(root):
        for name in dirs:
            path = os.path.join(top, name)
            if os.path.islink(path):
                files.append(name)
            else:
                collections.add(logical(path))
        for name in files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            objects[logical(path)] = (st.st_size, int(st.st_mtime), catalog_physical_path(path), 1)
    return Catalog(objects, collections)


def start(zone, src, target, *args, launcher=Launcher("mpiexec", 4), job_dir=None, env=None):
    argv = hpcingest_argv("start", str(src), target, "--synchronous", *args)
    if job_dir is not None:
        argv += ["--job_dir", str(job_dir)]
    return run(launcher, argv, env={**zone.environ(), **(env or {})})


def hooks(log_path) -> list[tuple[str, str]]:
    if not os.path.exists(log_path):
        return []
    with open(log_path) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]
