"""timeout() of 1 s while the pre hook sleeps 2 s: every data object times out."""

import time

from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def timeout(hdlr_mod, logger, meta):
        return 1

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        time.sleep(2)
