# Records the source file's mode as an AVU, like the old examples/metadata.py.
import os

from irods.meta import iRODSMeta
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation

filesystem_mode = "filesystem::mode"


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.REGISTER_SYNC

    @staticmethod
    def post_data_obj_create(hdlr_mod, logger, session, meta, **options):
        mode = os.stat(meta["path"]).st_mode
        session.data_objects.get(meta["target"]).metadata.add(filesystem_mode, str(mode), "")

    @staticmethod
    def post_data_obj_modify(hdlr_mod, logger, session, meta, **options):
        mode = os.stat(meta["path"]).st_mode
        obj = session.data_objects.get(meta["target"])
        obj.metadata[filesystem_mode] = iRODSMeta(filesystem_mode, str(mode))
