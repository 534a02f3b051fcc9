from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.NO_OP

    @staticmethod
    def post_job(hdlr_mod, logger, meta):
        # appends, so a test can tell it ran exactly once
        with open(meta["job_marker"], "a") as f:
            f.write("post_job")
