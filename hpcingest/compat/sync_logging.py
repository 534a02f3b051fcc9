"""``get_sync_logger(config)``: the old module's entry point, for handler files that call it.

The old framework built a structlog logger per ``filename + "/" + level``; hpcingest's own
logging (:mod:`hpcingest.logs`) is that logger, with ``rank`` and ``host`` added, so a
handler that fetches a logger itself writes to the same place as the hooks' logger.
"""

from __future__ import annotations

from typing import Any, Mapping

from hpcingest import logs


def get_sync_logger(config: Mapping[str, Any] | None):
    return logs.get_logger(config)
