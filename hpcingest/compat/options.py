"""Options of the old framework that mean nothing to hpcingest: accepted so that old command
lines still parse, and each named once, in one line, so nobody believes they took effect.

Why not refuse them: cron lines and wrapper scripts pass them on every call (``--redis_host``
came from the broker URL by default), and refusing would break exactly what the migration must
keep working.  Why not stay silent: a site that tuned queues or a profile file would wait for an
effect that never comes.
"""

from __future__ import annotations

from typing import Any

_CELERY_REDIS = ("redis_host", "redis_port", "redis_db", "file_queue", "path_queue", "restart_queue")
_OLD_PROFILE = ("profile_filename", "profile_when", "profile_interval", "profile_level")


def _given(args: Any, names: tuple[str, ...]) -> list[str]:
    return ["--" + name for name in names if getattr(args, name, None) is not None]


def ignored_option_warnings(args: Any) -> list[str]:
    """One line per kind of old option given on this command line that hpcingest ignores."""
    warnings = []
    given = _given(args, _CELERY_REDIS)
    if given:
        warnings.append(f"{', '.join(given)}: Celery/Redis options of the old framework; hpcingest needs "
                        "neither and ignores them")
    given = _given(args, _OLD_PROFILE)
    if given:
        warnings.append(f"{', '.join(given)}: the old framework's profile events (for its vis.js page) are not "
                        "written and these options are ignored; `start --profile` records every rank's timeline "
                        "and `hpcingest profile JOB` draws it")
    if getattr(args, "log_interval", None) is not None and getattr(args, "log_when", None) is None:
        warnings.append("--log_interval has no effect without --log_when (the log is not rotated), "
                        "as in the old framework")
    return warnings
