"""API handlers, one module per area; importing this package registers all of them."""

from . import (access, admin, collections, dataobj_io, login, metadata, modify, namespace,  # noqa: F401
               query, register, replication, touch)
from .registry import HANDLERS, Reply, api

__all__ = ["HANDLERS", "Reply", "api"]
