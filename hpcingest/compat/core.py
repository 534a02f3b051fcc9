"""``Core``: the base class old event-handler files inherit, so their pre/post hooks fire.

The old framework only runs ``pre_<event>``/``post_<event>`` through the ``on_<event>``
classmethods; a handler class that does not inherit them gets the bare operation. Handlers
may override an ``on_<event>`` to wrap or change the operation (the only way to change the
options the operation sees), so the sink must always go through these wrappers.
"""

from __future__ import annotations

from typing import Any, Callable

#: Every event a handler can hook, in the old framework's naming.
EVENTS: tuple[str, ...] = (
    "data_obj_create",
    "data_obj_modify",
    "data_obj_delete",
    "coll_create",
    "coll_modify",
    "coll_delete",
)

#: Delete events are called without a logger: ``(hdlr_mod, session, meta, *args, **options)``.
DELETE_EVENTS: frozenset[str] = frozenset({"data_obj_delete", "coll_delete"})


def _hooked(event: str) -> classmethod:
    """Build ``on_<event>``: pre hook, operation, post hook, all with the same arguments.

    The post hook runs only if the operation returns; an exception in the pre hook stops
    the operation. Each call gets its own copy of ``options`` (Python's ``**`` semantics),
    so a hook cannot change what the operation receives, exactly as in the old framework.
    """
    pre, post = "pre_" + event, "post_" + event

    def on_event(cls, func: Callable[..., Any], *args: Any, **options: Any) -> None:
        hook = getattr(cls, pre, None)
        if hook is not None:
            hook(*args, **options)
        func(*args, **options)
        hook = getattr(cls, post, None)
        if hook is not None:
            hook(*args, **options)

    on_event.__name__ = on_event.__qualname__ = "on_" + event
    return classmethod(on_event)


class Core:
    """Base class of ``event_handler``; importable as ``irods_capability_automated_ingest.core.Core``."""

    on_data_obj_create = _hooked("data_obj_create")
    on_data_obj_modify = _hooked("data_obj_modify")
    on_data_obj_delete = _hooked("data_obj_delete")
    on_coll_create = _hooked("coll_create")
    on_coll_modify = _hooked("coll_modify")
    on_coll_delete = _hooked("coll_delete")
