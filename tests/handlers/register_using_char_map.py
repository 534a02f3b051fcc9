import re

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    re_non_alphanum = re.compile("[^a-zA-Z0-9]")

    @staticmethod
    def character_map():
        # any character that is not an ASCII letter or digit becomes '_'
        return {event_handler.re_non_alphanum: "_"}

    @staticmethod
    def operation(session, meta, **options):
        return Operation.REGISTER_SYNC
