"""Native authentication: challenges, the MD5 digest check, and password descrambling.

The digest is iRODS's: MD5 over the 64-byte challenge and the password padded to 50 bytes, with
NUL bytes of the result replaced by 1.  Passwords are compared only inside this module and are
never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from irods.password_obfuscation import unscramble

_CHALLENGE_LEN = 64
_PASSWORD_LEN = 50
_V2_PADDING = "1gCBizHWbwIYyWLoysGzTe6SyzqFKMniZX05faZHWAwQKXf6Fs"


def new_challenge() -> str:
    """64 lowercase hex characters: printable and free of whitespace, as PRC's legacy path needs."""
    return secrets.token_hex(_CHALLENGE_LEN // 2)


def digest(challenge: str, password: str) -> bytes:
    buf = challenge.encode()[:_CHALLENGE_LEN].ljust(_CHALLENGE_LEN, b"\0")
    buf += password.encode().strip()[:_PASSWORD_LEN].ljust(_PASSWORD_LEN, b"\0")
    return bytes(1 if b == 0 else b for b in hashlib.md5(buf).digest())


def digest_matches(challenge: str, password: str, received: bytes) -> bool:
    return hmac.compare_digest(digest(challenge, password), received)


def descramble_password(scrambled: str, admin_password: str, signature: str) -> str:
    """Undo PRC's scramble_v2 of a new password (``user.modify('password', …)``)."""
    key = hashlib.md5((admin_password[:90] + signature[:100]).ljust(100, "\0").encode()).hexdigest()
    return _strip_padding(unscramble(scrambled, key=key, scramble_prefix="", block_chaining=True)[7:])


def descramble_with_key(scrambled: str, key: str) -> str:
    """Undo ``obfuscate_new_password_with_key`` (the password given when a user is created)."""
    return _strip_padding(unscramble(scrambled, key=key, scramble_prefix=""))


def _strip_padding(plain: str) -> str:
    if len(plain) == 40:
        for k in range(len(_V2_PADDING), 15, -1):
            if plain.endswith(_V2_PADDING[:k]):
                return plain[:-k]
    return plain
