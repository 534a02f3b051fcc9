"""Delete modes: what the target holds that the source no longer has is unregistered or removed.

Deciding what is gone costs one listing of each directory's collection, compared with the
names the directory's *listing* returned (readdir, before any stat or exclusion), never a
query per file.  Comparing against the listing and not against what was ingested is what
keeps entries that were excluded, unreadable or vanished-then-failed in this pass from
being taken for deleted ones: they are still listed, so they stay.  A directory that could
not be listed at all is never swept.

Names are compared as logical names (after ``character_map`` and the UnicodeEncodeError
scheme), so remapped names are handled instead of switching the mode off as the old tool did.

A gone subdirectory is removed bottom-up: every object of its subtree (with the
pre/post_data_obj_delete hooks), then each collection once it is empty, deepest first
(pre/post_coll_delete).  The job's root target is never removed.  The sync state of every
removed path is reset, so a file restored later with its old mtime is ingested again.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Callable

from hpcingest.compat.utils import DeleteMode, compatible_delete_modes
from hpcingest.engine import WorkContext
from hpcingest.irods.errors import IrodsOperationError
from hpcingest.lazy import lazy_module
from hpcingest.naming import logical_path

ops = lazy_module("hpcingest.irods.operations")
listing = lazy_module("hpcingest.irods.listing")

#: Sync time recorded for a removed path: older than any mtime, so it is always looked at again.
FORGOTTEN = -1.0
_OBJECT_ACTIONS: dict[DeleteMode, Callable[[Any, str], None]] = {
    DeleteMode.UNREGISTER: lambda session, path: ops.unregister_object(session, path),
    DeleteMode.TRASH: lambda session, path: ops.remove_object(session, path, to_trash=True),
    DeleteMode.NO_TRASH: lambda session, path: ops.remove_object(session, path, to_trash=False),
}


class DeletionSweep:
    """Per rank: sweeps the directories this rank listed (or was sent, under a funnel)."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self._asked: dict[bytes, tuple[DeleteMode, dict[str, Any]]] = {}  # wants_listing's answer, for sweep
        # the built-in handler never deletes: no meta to build per directory
        self._never = sink.config.handler_text is None or not sink.handler.has("delete_mode")

    def wants_listing(self, directory: bytes) -> bool:
        """Asked by the lister before it reads ``directory``: keep the names only when needed."""
        if self._never:
            return False
        mode, meta = self._mode(directory)
        if mode is DeleteMode.DO_NOT_DELETE:
            return False
        self._asked[directory] = mode, meta
        return True

    def _mode(self, directory: bytes) -> tuple[DeleteMode, dict[str, Any]]:
        meta = self._meta(directory)
        return self.sink.handler.delete_mode(meta), meta

    def sweep(self, directory: bytes, names: list[bytes], ctx: WorkContext) -> None:
        """Remove what ``directory``'s collection holds beyond ``names`` (its complete listing)."""
        sink = self.sink
        # asked on this rank by the lister, or (under a funnel) on another: then ask here
        mode, meta = self._asked.pop(directory, None) or self._mode(directory)
        if mode is DeleteMode.DO_NOT_DELETE:
            return
        identity = sink.handler.as_user(meta)
        as_zone, as_user = identity if identity else (None, None)

        def call(action: Callable[[Any], Any]) -> Any:
            return sink.connection.call(action, as_user=as_user, as_zone=as_zone)

        try:
            operation = call(lambda session: sink.handler.operation(session, meta))
            if mode not in compatible_delete_modes(operation):
                raise IrodsOperationError(
                    "incompatible_delete_mode", None,
                    f"delete mode {mode.name} cannot be used with operation {operation.name} (compatible: "
                    f"{', '.join(sorted(m.name for m in compatible_delete_modes(operation)))})")
            contents = call(lambda session: _contents_if_any(session, meta["target"]))
        except Exception as err:  # noqa: BLE001 - reported, and nothing of this directory is removed
            self.sink.report_failure(meta["path"], meta["target"], f"delete:{mode.name}", err)
            return
        present = {posixpath.basename(self._logical(_join(directory, name))) for name in names}
        gone_objects = sorted(contents.objects - present)
        gone_collections = sorted(c for c in contents.subcollections if posixpath.basename(c) not in present)
        meta["operation"] = operation.name
        forgotten: dict[bytes, list[bytes]] = {}
        for name in gone_objects:
            if self._delete_object(call, meta, posixpath.join(meta["target"], name), mode):
                forgotten.setdefault(directory, []).append(os.fsencode(name))
        for collection in gone_collections:
            self._delete_tree(call, meta, collection, mode, directory, forgotten)
        for where, gone in forgotten.items():
            sink.state.record(ctx, where, [(name, FORGOTTEN, 0) for name in gone])

    # -- removal ----------------------------------------------------------------------------
    def _delete_object(self, call, meta: dict, path: str, mode: DeleteMode) -> bool:
        sink = self.sink
        event_meta = dict(meta, target=path, task="delete_data_object", data_objects_to_delete=[path])
        action = _OBJECT_ACTIONS[mode]
        try:
            call(lambda session: sink.handler.run_event(
                "data_obj_delete", lambda s, m, *a, **k: action(s, path), None, session, event_meta))
        except Exception as err:  # noqa: BLE001 - one object's failure never stops the sweep
            self.sink.report_failure(meta["path"], path, f"delete:{mode.name}", err)
            return False
        sink.counters.deleted_objects += 1
        sink.logger.info("deleted_data_object", target=path, mode=mode.name)
        return True

    def _delete_tree(self, call, meta: dict, collection: str, mode: DeleteMode, parent: bytes,
                     forgotten: dict[bytes, list[bytes]]) -> None:
        sink = self.sink
        if collection.rstrip("/") == sink.config.target.rstrip("/"):
            return  # never, whatever the catalog says
        try:
            objects, collections = call(lambda session: listing.subtree(session, collection))
        except Exception as err:  # noqa: BLE001
            self.sink.report_failure(meta["path"], collection, f"delete:{mode.name}", err)
            return
        kept: set[str] = set()  # collections that still hold something whose removal failed
        for path in objects:
            if not self._delete_object(call, meta, path, mode):
                kept.update(_ancestors(path, collection))
        for path in collections:  # deepest first: each is empty once its children are gone
            if path in kept:
                continue  # its failure is already reported, once, for what it still holds
            event_meta = dict(meta, target=path, task="delete_collection", target_collection=path,
                              only_delete_collection=True)
            try:
                call(lambda session: sink.handler.run_event(
                    "coll_delete", lambda s, m, *a, **k: ops.remove_empty_collection(s, path), None, session,
                    event_meta))
            except Exception as err:  # noqa: BLE001
                self.sink.report_failure(meta["path"], path, f"delete:{mode.name}", err)
                kept.update(_ancestors(path, collection))
                continue
            sink.counters.deleted_collections += 1
            sink.logger.info("deleted_collection", target=path, mode=mode.name)
        # the directory entry in its parent and everything below it start from scratch if they return
        forgotten.setdefault(parent, []).append(os.fsencode(posixpath.basename(collection)))
        for path in objects + [c for c in collections if c != collection]:
            where, _, name = posixpath.relpath(path, sink.config.target).rpartition("/")
            forgotten.setdefault(os.fsencode(where), []).append(os.fsencode(name))

    # -- helpers ----------------------------------------------------------------------------
    def _logical(self, relpath: bytes) -> str:
        sink = self.sink
        return logical_path(sink.config.target, sink.config.root, relpath, sink.char_map).path

    def _meta(self, directory: bytes) -> dict[str, Any]:
        sink = self.sink
        path = os.fsdecode(os.path.join(sink.config.root, directory) if directory else sink.config.root)
        target = self._logical(directory) if directory else sink.config.target
        return dict(sink.base_meta, path=path, target=target, target_collection=target, task="sync_dir",
                    entry_type="dir", is_link=False, is_socket=False)


def _contents_if_any(session, collection: str) -> listing.CollectionContents:
    if not session.collections.exists(collection):
        return listing.CollectionContents(frozenset(), frozenset())
    return listing.collection_contents(session, collection)


def _ancestors(path: str, top: str) -> list[str]:
    """The collections from ``path``'s parent up to ``top`` (inclusive)."""
    found = []
    while path != top and len(path) > len(top):
        path = posixpath.dirname(path)
        found.append(path)
    return found


def _join(directory: bytes, name: bytes) -> bytes:
    return directory + b"/" + name if directory else name
