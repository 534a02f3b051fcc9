"""Server-wide state shared by all connections: configuration, catalog, replica tokens, stats."""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass

from .catalog import Catalog
from .catalog.passwords import load_or_create_key
from .stats import ApiStats

SUPPORTED_VERSIONS = ("4.3.4", "5.0.2")


@dataclass(frozen=True)
class ZoneConfig:
    """What a zone is started with; ``root`` holds the catalog, the vaults and the client files."""

    root: str
    zone: str = "tempZone"
    user: str = "rods"
    host: str = "127.0.0.1"
    port: int = 0
    version: str = "4.3.4"
    latency_ms: float = 0.0  # network: each reply reaches the client this much later
    service_ms: float = 0.0  # a busy agent: a connection's next request waits for the reply to leave
    # a busy server: at most this many requests are in service at once (its cores), the others
    # wait their turn; 0 serves every connection at once
    cores: int = 0
    # the catalog's database connections (PostgreSQL's max_connections 100 minus the 3 it keeps for
    # superusers): every agent holds one for its life, so this many agents at most (see server.py)
    max_db_connections: int = 97
    default_resource: str = "demoResc"
    # core.re's acSetChkFilePathPerm: False is the real default ("disallowPathReg": only a
    # rodsadmin registers in place); True is a site that set "noChkPathPerm"
    allow_path_registration: bool = False

    @property
    def catalog_path(self) -> str:
        return os.path.join(self.root, "catalog.sqlite")

    @property
    def vault_root(self) -> str:
        return os.path.join(self.root, "vault")

    @property
    def stats_path(self) -> str:
        return os.path.join(self.root, "api_stats.json")

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


@dataclass
class ReplicaToken:
    data_id: int
    repl_num: int


class ReplicaTokens:
    """Tokens that let other connections join a replica opened for a parallel transfer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, ReplicaToken] = {}

    def issue(self, data_id: int, repl_num: int) -> str:
        token = str(uuid.uuid4())
        with self._lock:
            self._tokens[token] = ReplicaToken(data_id, repl_num)
        return token

    def get(self, token: str) -> ReplicaToken | None:
        with self._lock:
            return self._tokens.get(token)

    def release(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)


class ZoneState:
    def __init__(self, config: ZoneConfig, password: str) -> None:
        self.config = config
        make_private_root(config.root)
        self.catalog = Catalog(config.catalog_path, config.zone, load_or_create_key(config.root))
        self.catalog.ensure_seeded(config.user, password, config.default_resource,
                                   os.path.join(config.vault_root, config.default_resource))
        self.tokens = ReplicaTokens()
        self.stats = ApiStats()

    @property
    def is_v5(self) -> bool:
        return self.config.version_tuple >= (5, 0, 0)


def make_private_root(root: str) -> None:
    """The zone's root holds the catalog, its key and the vault: only the zone's account may enter.

    An existing directory is made private only when it is new, empty or already a zone root,
    so that a mistaken ``--root`` (a home directory, /tmp) is refused instead of locked.
    """
    os.makedirs(root, mode=0o700, exist_ok=True)
    mode = os.stat(root).st_mode & 0o777
    if mode == 0o700:
        return
    entries = set(os.listdir(root))
    if entries and not entries & {"catalog.sqlite", "vault"}:
        raise ValueError(f"{root} is readable by others and is not a zone root: give a new or empty directory")
    os.chmod(root, 0o700)
