# Each hook adds an AVU (hook name, job name, operation) to the modified collection itself.
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation

OPERATION = Operation.REGISTER_SYNC


def annotate(session, hook, meta):
    session.collections.get(meta["target"]).metadata.add(hook, meta["job_name"], OPERATION.name)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return OPERATION

    @staticmethod
    def pre_coll_modify(hdlr_mod, logger, session, meta, *args, **options):
        annotate(session, "pre_coll_modify", meta)

    @staticmethod
    def post_coll_modify(hdlr_mod, logger, session, meta, *args, **options):
        annotate(session, "post_coll_modify", meta)
