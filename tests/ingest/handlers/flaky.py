"""Fails the first attempt of every data object (marker files in $FLAKY_DIR); $MAX_RETRIES retries."""

import os

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.REGISTER_SYNC

    @staticmethod
    def max_retries(hdlr_mod, logger, meta):
        return int(os.environ.get("MAX_RETRIES", "0"))

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        marker = os.path.join(os.environ["FLAKY_DIR"], meta["target"].replace("/", "_"))
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("injected first-attempt failure")
