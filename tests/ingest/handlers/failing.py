"""Every data object fails: pre_data_obj_create raises, naming the source path in its message."""

from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        raise RuntimeError(f"cannot take {meta['path']}")
