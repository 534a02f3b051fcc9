"""The iRODS side of an ingest: connection settings, a self-healing per-rank connection, and the calls."""

from .connection import ConnectionStats, IrodsConnection, RetryPolicy
from .errors import IrodsAgentRefused, IrodsAuthError, IrodsConnectionError, IrodsError, IrodsOperationError
from .settings import IrodsSettings, IrodsSettingsError, TlsSettings, resolve_settings

__all__ = ["ConnectionStats", "IrodsAgentRefused", "IrodsAuthError", "IrodsConnection", "IrodsConnectionError", "IrodsError",
           "IrodsOperationError", "IrodsSettings", "IrodsSettingsError", "RetryPolicy", "TlsSettings",
           "resolve_settings"]
