# The old example wrote to /tmp/a; the tests pass the file to write in meta["job_marker"].
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.NO_OP

    @staticmethod
    def pre_job(hdlr_mod, logger, meta):
        with open(meta["job_marker"], "w") as f:
            f.write("pre_job")
