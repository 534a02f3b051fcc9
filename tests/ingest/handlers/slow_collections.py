"""Every new collection takes a while to make (pre_coll_create sleeps 0.3 s), so whatever is
ingested meanwhile on another rank sees the collection missing unless it waits for it."""

import time

from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def pre_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        time.sleep(0.3)
