"""A handler that changes the source file between the walk's stat and the upload, the way a busy
or hostile user can: $OPERATION is the operation; before the create or modify of the file named
$SWAP_NAME, $SWAP_ACTION happens to it: "fifo" (replaced by a FIFO), "grow" ($SWAP_BYTES more
bytes appended), "other" (replaced by another file of the same size).  With $SWAP_UNDER the
change is made to the file of that name in that directory: the source behind a read-only mirror."""

import os

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


def _change(meta):
    path = meta["path"]
    if os.path.basename(path) != os.environ["SWAP_NAME"]:
        return
    path = os.path.join(os.environ.get("SWAP_UNDER") or os.path.dirname(path), os.path.basename(path))
    action = os.environ["SWAP_ACTION"]
    if action == "fifo":
        os.unlink(path)
        os.mkfifo(path)
    elif action == "grow":
        with open(path, "ab") as f:
            f.write(b"+" * int(os.environ["SWAP_BYTES"]))
    elif action == "other":  # made before the old one goes, so it cannot reuse its inode
        with open(path + ".new", "wb") as f:
            f.write(b"!" * os.path.getsize(path))
        os.replace(path + ".new", path)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return getattr(Operation, os.environ["OPERATION"])

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        _change(meta)

    @staticmethod
    def pre_data_obj_modify(hdlr_mod, logger, session, meta, *args, **options):
        _change(meta)
