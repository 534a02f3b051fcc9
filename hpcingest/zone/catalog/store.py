"""The catalog store: one sqlite connection for the whole zone, behind a lock.

One shared connection (rather than one per client connection) makes every committed write visible
to all clients at once and lets the zone run a single writer without busy-waiting on sqlite's
file locks; the lock keeps it safe if a caller outside the server loop reads the catalog.  WAL with synchronous=NORMAL keeps a commit to a page write, which is what makes a
few thousand registers per second possible.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

from .. import errors
from ..errors import ZoneError
from .passwords import PasswordKeeper, is_obfuscated
from .records import Collection, Replica, Resource, User, as_row, column_names, insert_sql, now_ts
from .resources import ResourceTree
from .schema import ACCESS_TOKENS, SCHEMA

_ID_BLOCK = 1000
# r_data_main.data_name is varchar(1000) in iRODS's catalog schema (icatSysTables.sql.pp), which
# PostgreSQL counts in characters; the path buffers (MAX_NAME_LEN, 1,088 bytes) let longer names through
DATA_NAME_CHARACTERS = 1000
_REPLICA_COLUMNS = ", ".join(column_names(Replica))
_COLLECTION_COLUMNS = ", ".join(column_names(Collection))
_INSERT_REPLICA = insert_sql("r_data_main", Replica)
_INSERT_COLLECTION = insert_sql("r_coll_main", Collection)
_INSERT_RESOURCE = insert_sql("r_resc_main", Resource)
_INSERT_USER = insert_sql("r_user_main", User)


def parent_of(path: str) -> str:
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


class Catalog:
    """Transactions, id allocation and the lookups every API handler needs."""

    def __init__(self, db_path: str, zone: str, passwords: PasswordKeeper) -> None:
        self.zone = zone
        self.passwords = passwords
        self.lock = threading.RLock()
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))  # sqlite's -wal and -shm follow its mode
        os.chmod(db_path, 0o600)  # a catalog made before this was readable by everyone
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA case_sensitive_like=ON")
        self.db.create_function("resc_hier", 1, self._hierarchy_of, deterministic=True)
        self._depth = 0
        self._next_id = 0
        self._id_limit = 0
        self.db.executescript(SCHEMA)
        with self.transaction() as db:
            if db.execute("SELECT COUNT(*) FROM r_id_seq").fetchone()[0] == 0:
                db.execute("INSERT INTO r_id_seq VALUES (10000)")
            if db.execute("SELECT COUNT(*) FROM r_tokn_main").fetchone()[0] != len(ACCESS_TOKENS):
                db.execute("DELETE FROM r_tokn_main")
                db.executemany("INSERT INTO r_tokn_main VALUES ('access_type', ?, ?)",
                               [(token_id, name) for name, token_id in ACCESS_TOKENS.items()])
        self.resources = self._load_resources()

    # -----------------------------------------------------------------------------------------
    # transactions and ids

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                # the rollback may have undone this block's reservation in r_id_seq: ids handed out
                # from it would come again after a restart; the next id reserves a fresh block
                self._next_id = self._id_limit = 0
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    def next_id(self) -> int:
        """Object ids come from one sequence shared by all tables, reserved in blocks like a cached sequence."""
        with self.transaction() as db:
            if self._next_id >= self._id_limit:
                start = db.execute("SELECT next_id FROM r_id_seq").fetchone()[0]
                db.execute("UPDATE r_id_seq SET next_id = ?", (start + _ID_BLOCK,))
                self._next_id, self._id_limit = start, start + _ID_BLOCK
            self._next_id += 1
            return self._next_id - 1

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -----------------------------------------------------------------------------------------
    # users

    def user(self, name: str, zone: str = "") -> User | None:
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM r_user_main WHERE user_name = ? AND zone_name = ?", (name, zone or self.zone)
            ).fetchone()
        return User(*row) if row else None

    def password(self, user_id: int) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT rcat_password FROM r_user_password WHERE user_id = ?", (user_id,)).fetchone()
        return self.passwords.plain(row[0]) if row else None

    def group_ids(self, user_id: int) -> list[int]:
        with self.lock:
            rows = self.db.execute("SELECT group_user_id FROM r_user_group WHERE user_id = ?", (user_id,)).fetchall()
        return sorted({user_id, *(r[0] for r in rows)})

    def add_user(self, name: str, user_type: str, zone: str = "") -> User:
        with self.transaction() as db:
            user = User(self.next_id(), name, user_type, zone or self.zone, create_ts=now_ts(), modify_ts=now_ts())
            try:
                db.execute(_INSERT_USER, as_row(user))
            except sqlite3.IntegrityError:
                raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, f"user {name} exists") from None
            public = self.user("public") if user_type != "rodsgroup" else None
            for group_id in ([public.user_id] if public else []) + [user.user_id]:  # as chlRegUser: own group too
                db.execute("INSERT OR IGNORE INTO r_user_group VALUES (?, ?)", (group_id, user.user_id))
            if user_type != "rodsgroup":
                for base in (f"/{self.zone}/home", f"/{self.zone}/trash/home"):
                    coll = self.add_collection(f"{base}/{name}", user)
                    self.grant(coll.coll_id, user.user_id, "own")
            return user

    def set_password(self, user_id: int, password: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO r_user_password VALUES (?, ?)",
                       (user_id, self.passwords.stored(password)))

    # -----------------------------------------------------------------------------------------
    # access control

    def grant(self, object_id: int, user_id: int, level: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO r_objt_access VALUES (?, ?, ?)",
                       (object_id, user_id, ACCESS_TOKENS[level]))

    def grant_new_object(self, object_id: int, owner_id: int, parent: Collection) -> None:
        """Own for the creator, plus the parent's ACLs when the parent has inheritance on."""
        with self.transaction() as db:
            if parent.coll_inheritance == "1":
                db.execute("INSERT OR REPLACE INTO r_objt_access SELECT ?, user_id, access_type_id FROM r_objt_access "
                           "WHERE object_id = ?", (object_id, parent.coll_id))
            self.grant(object_id, owner_id, "own")

    def revoke(self, object_id: int, user_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM r_objt_access WHERE object_id = ? AND user_id = ?", (object_id, user_id))

    def access_level(self, object_id: int, user_ids: list[int]) -> int:
        marks = ",".join("?" * len(user_ids))
        with self.lock:
            row = self.db.execute(
                f"SELECT MAX(access_type_id) FROM r_objt_access WHERE object_id = ? AND user_id IN ({marks})",
                (object_id, *user_ids),
            ).fetchone()
        return row[0] or 0

    # -----------------------------------------------------------------------------------------
    # collections

    def collection(self, path: str) -> Collection | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_COLLECTION_COLUMNS} FROM r_coll_main WHERE coll_name = ?",
                                  (path,)).fetchone()
        return Collection(*row) if row else None

    def collection_name(self, coll_id: int) -> str:
        with self.lock:
            row = self.db.execute("SELECT coll_name FROM r_coll_main WHERE coll_id = ?", (coll_id,)).fetchone()
        return row[0] if row else ""

    def add_collection(self, path: str, owner: User, inheritance: str = "") -> Collection:
        ts = now_ts()
        coll = Collection(self.next_id(), parent_of(path), path, owner.user_name, owner.zone_name,
                          coll_inheritance=inheritance, create_ts=ts, modify_ts=ts)
        with self.transaction() as db:
            db.execute(_INSERT_COLLECTION, as_row(coll))
        return coll

    def rename_collection(self, old: str, new: str) -> None:
        """Move a collection and everything below it; data objects follow through their coll_id."""
        with self.transaction() as db:
            db.execute(
                "UPDATE r_coll_main SET coll_name = ? || substr(coll_name, ?), "
                "parent_coll_name = ? || substr(parent_coll_name, ?) WHERE substr(coll_name, 1, ?) = ?",
                (new, len(old) + 1, new, len(old) + 1, len(old) + 1, old + "/"))
            db.execute("UPDATE r_coll_main SET coll_name = ?, parent_coll_name = ?, modify_ts = ? "
                       "WHERE coll_name = ?", (new, parent_of(new), now_ts(), old))

    def move_data_object(self, data_id: int, coll_id: int, name: str) -> None:
        _check_data_name(name)
        with self.transaction() as db:
            db.execute("UPDATE r_data_main SET coll_id = ?, data_name = ? WHERE data_id = ?", (coll_id, name, data_id))

    def subcollection_names(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        with self.lock:
            rows = self.db.execute(
                "SELECT coll_name FROM r_coll_main WHERE coll_name LIKE ? ESCAPE '\\' OR coll_name = ? "
                "ORDER BY length(coll_name) DESC", (_like_prefix(prefix), path)).fetchall()
        return [r[0] for r in rows]

    # -----------------------------------------------------------------------------------------
    # data objects

    def replicas(self, coll_id: int, name: str) -> list[Replica]:
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_REPLICA_COLUMNS} FROM r_data_main WHERE coll_id = ? AND data_name = ? "
                "ORDER BY data_repl_num", (coll_id, name)).fetchall()
        return [Replica(*row) for row in rows]

    def replica(self, data_id: int, repl_num: int) -> Replica | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_REPLICA_COLUMNS} FROM r_data_main WHERE data_id = ? AND data_repl_num = ?",
                                  (data_id, repl_num)).fetchone()
        return Replica(*row) if row else None

    def replicas_in_collection(self, coll_id: int) -> list[Replica]:
        with self.lock:
            rows = self.db.execute(f"SELECT {_REPLICA_COLUMNS} FROM r_data_main WHERE coll_id = ?",
                                   (coll_id,)).fetchall()
        return [Replica(*row) for row in rows]

    def insert_replica(self, replica: Replica) -> None:
        _check_data_name(replica.data_name)
        with self.transaction() as db:
            try:
                db.execute(_INSERT_REPLICA, as_row(replica))
            except sqlite3.IntegrityError:
                raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, "replica already exists") from None

    def update_replica(self, data_id: int, repl_num: int, **columns: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.transaction() as db:
            db.execute(f"UPDATE r_data_main SET {assignments} WHERE data_id = ? AND data_repl_num = ?",
                       (*columns.values(), data_id, repl_num))

    def delete_data_object(self, data_id: int, repl_num: int | None = None) -> None:
        """Remove one replica, or the whole object with its ACLs and AVU links."""
        with self.transaction() as db:
            if repl_num is not None:
                db.execute("DELETE FROM r_data_main WHERE data_id = ? AND data_repl_num = ?", (data_id, repl_num))
                if db.execute("SELECT 1 FROM r_data_main WHERE data_id = ?", (data_id,)).fetchone():
                    return
            self.forget_object(data_id)
            db.execute("DELETE FROM r_data_main WHERE data_id = ?", (data_id,))

    def forget_object(self, object_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM r_objt_access WHERE object_id = ?", (object_id,))
            db.execute("DELETE FROM r_objt_metamap WHERE object_id = ?", (object_id,))

    # -----------------------------------------------------------------------------------------
    # resources

    def _load_resources(self) -> ResourceTree:
        with self.lock:
            rows = self.db.execute("SELECT * FROM r_resc_main").fetchall()
        return ResourceTree({row[1]: Resource(*row) for row in rows})

    def reload_resources(self) -> None:
        self.resources = self._load_resources()

    def _hierarchy_of(self, resc_id: object) -> str:
        try:
            return self.resources.hierarchy(int(resc_id))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return ""

    def add_resource(self, name: str, resc_type: str, host: str, vault: str, context: str = "") -> Resource:
        ts = now_ts()
        resc = Resource(self.next_id(), name, self.zone, resc_type, resc_net=host, resc_def_path=vault,
                        resc_context=context, create_ts=ts, modify_ts=ts)
        with self.transaction() as db:
            try:
                db.execute(_INSERT_RESOURCE, as_row(resc))
            except sqlite3.IntegrityError:
                raise ZoneError(errors.CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME, f"resource {name} exists") from None
        self.reload_resources()
        return resc

    def ensure_seeded(self, admin: str, password: str, default_resource: str, vault: str) -> None:
        """Create the zone's fixed objects on first start; later starts only reset the admin password."""
        with self.transaction() as db:
            if self.collection("/") is None:
                root = User(0, admin, "rodsadmin", self.zone)
                db.execute("INSERT INTO r_zone_main VALUES (?, ?, 'local')", (self.next_id(), self.zone))
                for path in ("/", f"/{self.zone}", f"/{self.zone}/home", f"/{self.zone}/trash",
                             f"/{self.zone}/trash/home"):
                    self.add_collection(path, root)
                self.add_user("public", "rodsgroup")
                self.add_collection(f"/{self.zone}/home/public", root)
                self.add_user(admin, "rodsadmin")
                os.makedirs(vault, exist_ok=True)
                self.add_resource(default_resource, "unixfilesystem", "localhost", vault)
            elif db.execute("SELECT 1 FROM r_zone_main WHERE zone_name = ?", (self.zone,)).fetchone() is None:
                raise ValueError(f"the catalog belongs to a different zone than {self.zone!r}")
            user = self.user(admin) or self.add_user(admin, "rodsadmin")
            self.set_password(user.user_id, password)
            self._obfuscate_plain_passwords()

    def _obfuscate_plain_passwords(self) -> None:
        """A catalog from before passwords were obfuscated keeps them in clear: obfuscate them."""
        with self.transaction() as db:
            for user_id, stored in db.execute("SELECT user_id, rcat_password FROM r_user_password").fetchall():
                if stored is not None and not is_obfuscated(stored):
                    self.set_password(user_id, stored)


def _check_data_name(name: str) -> None:
    """A name the real catalog's column cannot hold: PostgreSQL refuses the row (SQLSTATE 22001),
    and the server answers CAT_SQL_ERR (cmlExecuteNoAnswerSql turns every error of the database
    but a duplicate key into it).  Possible for S3 keys, whose names run to 1,024 bytes."""
    if len(name) > DATA_NAME_CHARACTERS:
        raise ZoneError(errors.CAT_SQL_ERR, f"data name of {len(name)} characters: value too long for type "
                                            f"character varying({DATA_NAME_CHARACTERS})")


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
