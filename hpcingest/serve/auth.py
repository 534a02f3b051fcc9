"""Who may use the service: whoever holds the token in the token file.

The service runs Python code it receives (event handlers) as the user it runs as, so the
token is that user's key.  It lives in a file readable by that user only (created with a
random token on first use), is compared in constant time, and is never logged, echoed or
passed to another process.

Programs send ``Authorization: Bearer <token>``.  A browser cannot, so the status page asks
for the token once and keeps a session cookie derived from it (HttpOnly, SameSite=Strict,
Secure under TLS); the cookie is good for GET requests only, so no other site can make a
browser submit or stop a job (PUT and DELETE always need the header).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat

from hpcingest.jobdir import JobError, check_private

COOKIE = "hpcingest_session"


class TokenError(ValueError):
    """The token file cannot be used; the message says why."""


def default_token_file() -> str:
    home = os.environ.get("HPCINGEST_HOME")
    return os.path.join(home, "serve.token") if home else os.path.join(os.path.expanduser("~"), ".hpcingest",
                                                                       "serve.token")


def load_or_create_token(path: str) -> tuple[str, bool]:
    """The token in ``path`` and whether it was just created (a random one, mode 0600)."""
    path = os.path.abspath(path)
    created = False
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another service created it meanwhile: read theirs
        except OSError as err:
            raise TokenError(f"cannot create the token file {path}: {err.strerror}") from None
        else:
            with open(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
            created = True
    try:
        check_private(path, "token file", directory=False)
    except JobError as err:
        raise TokenError(str(err)) from None
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o077:
        raise TokenError(f"token file {path} can be read by other users (mode {mode:04o}): `chmod 600 {path}`")
    with open(path, encoding="utf-8", errors="replace") as f:
        token = f.readline().strip()
    if len(token) < 16:
        raise TokenError(f"token file {path} holds no token of at least 16 characters on its first line")
    return token, created


class Authenticator:
    """Checks a request's credentials in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        # the cookie is derived from the token, never the token itself
        self._session = hmac.new(self._token, b"hpcingest serve session", hashlib.sha256).hexdigest().encode()

    def bearer(self, header: str | None) -> bool:
        """Whether an Authorization header carries the token."""
        scheme, _, given = (header or "").strip().partition(" ")
        return scheme.lower() == "bearer" and _same(given, self._token)

    def token(self, given: str) -> bool:
        """Whether a token typed into the status page's form is the token."""
        return _same(given, self._token)

    def session(self, cookie: str | None) -> bool:
        return cookie is not None and _same(cookie, self._session)

    @property
    def session_value(self) -> str:
        return self._session.decode()


def _same(given: str, secret: bytes) -> bool:
    """Constant-time comparison (the time taken says nothing of how much of ``given`` matched)."""
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), secret)
