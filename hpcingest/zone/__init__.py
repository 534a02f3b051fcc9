"""The built-in iRODS test zone: an iRODS server in Python that the unmodified python-irodsclient
talks to over TCP, with an sqlite catalog and vault directories under one root directory.

Start one from tests with :func:`hpcingest.zone.testing.start_zone` or
:func:`hpcingest.zone.testing.zone_from_environment_or_start`; from the shell with
``hpcingest zone --root DIR --port 0``.
"""
