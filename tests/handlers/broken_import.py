from irods_capability_automated_ingest.core import Core
import hpcingest_no_such_module_for_tests


class event_handler(Core):
    pass
