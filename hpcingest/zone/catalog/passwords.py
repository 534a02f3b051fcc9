"""How the catalog keeps passwords: obfuscated, as the real server keeps R_USER_PASSWORD.

Native authentication needs each password in clear on the server side (the client proves it
knows it by an MD5 digest over a fresh challenge), so it cannot be hashed.  The real server
scrambles it with icatScramble: ``.E_`` + obfEncodeByKey under a key from its environment
(IRODS_DATABASE_USER_PASSWORD_SALT).  The zone does the same with a random key of its own,
kept in ``catalog.key`` (0600) in its root (0700), so neither the catalog file nor a copy of
it shows a password.
"""

from __future__ import annotations

import os
import secrets

from irods.password_obfuscation import scramble, unscramble

KEY_FILE_NAME = "catalog.key"
SCRAMBLE_PREFIX = ".E_"  # PASSWORD_SCRAMBLE_PREFIX of the real database plugin


class PasswordKeeper:
    """Turns passwords into what the catalog stores and back, with the zone's key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "PasswordKeeper(<key hidden>)"

    def stored(self, password: str) -> str:
        return scramble(password, key=self._key, scramble_prefix=SCRAMBLE_PREFIX)

    def plain(self, stored: str) -> str:
        """The password in clear; a value from before passwords were obfuscated is returned as it is."""
        if not is_obfuscated(stored):
            return stored
        return unscramble(stored, key=self._key, scramble_prefix=SCRAMBLE_PREFIX)


def is_obfuscated(stored: str) -> bool:
    return stored.startswith(SCRAMBLE_PREFIX)


def load_or_create_key(root: str) -> PasswordKeeper:
    """The zone's key from ``root/catalog.key``, made (0600, never rewritten) on first start."""
    path = os.path.join(root, KEY_FILE_NAME)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="ascii") as source:
            key = source.read().strip()
        if not key:
            raise ValueError(f"{path} is empty: the catalog's passwords cannot be read without their key") from None
        return PasswordKeeper(key)
    key = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
        out.flush()
        os.fsync(out.fileno())
    return PasswordKeeper(key)
