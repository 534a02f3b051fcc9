"""The old framework's import name, answered by hpcingest.

irods_capability_automated_ingest 0.7.0 is run as ``python -m
irods_capability_automated_ingest.irods_sync ...`` (and its handler files import ``.core`` and
``.utils``); cron lines and wrapper scripts say so and should not have to change.  Importing
this package makes the name an alias of :mod:`hpcingest.compat`, so ``irods_sync``, ``core``,
``utils``, ``sync_logging`` and ``redis_utils`` are hpcingest's own modules (one class per
name, whichever way it was imported).  The old package and hpcingest both claim this name: install
them in different virtual environments (README, "Migrating from the Automated Ingest Framework").
"""

from hpcingest.compat import serve_old_package_name

serve_old_package_name()
