"""Registers as the user named in $AS_USER (proxy login: the job's user must be a rodsadmin)."""

import os

from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def as_user(meta, **options):
        return os.environ["AS_ZONE"], os.environ["AS_USER"]
