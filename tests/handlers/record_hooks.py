# Records how every hook and job-level override is called, into meta["calls"].
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation

EVENTS = ["data_obj_create", "data_obj_modify", "data_obj_delete", "coll_create", "coll_modify", "coll_delete"]


def recorder(name):
    def record(hdlr_mod, *args, **options):
        meta = args[1] if name.endswith("_delete") else args[2]
        meta["calls"].append((name, hdlr_mod, args, options))
    return staticmethod(record)


def job_recorder(name, result=None):
    def record(hdlr_mod, logger, meta, *args):
        meta["calls"].append((name, hdlr_mod, logger, args))
        return result
    return staticmethod(record)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.PUT_SYNC

    pre_job = job_recorder("pre_job")
    post_job = job_recorder("post_job")
    max_retries = job_recorder("max_retries", 7)
    timeout = job_recorder("timeout", 60)
    delay = job_recorder("delay", 5)


for _event in EVENTS:
    for _when in ("pre", "post"):
        setattr(event_handler, _when + "_" + _event, recorder(_when + "_" + _event))
