"""The token file and the credential checks."""

from __future__ import annotations

import os
import stat

import pytest

from hpcingest.serve.auth import Authenticator, TokenError, load_or_create_token


def test_a_missing_token_file_is_created_private_with_a_random_token(tmp_path):
    path = tmp_path / "home" / "serve.token"
    token, created = load_or_create_token(str(path))
    assert created and len(token) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    again, created_again = load_or_create_token(str(path))
    assert (again, created_again) == (token, False)
    other = tmp_path / "other.token"
    assert load_or_create_token(str(other))[0] != token


@pytest.mark.parametrize("mode, words", [(0o640, "can be read by other users"), (0o622, "can be written by other")])
def test_a_token_file_others_can_read_or_write_is_refused(tmp_path, mode, words):
    path = tmp_path / "serve.token"
    path.write_text("x" * 43 + "\n")
    os.chmod(path, mode)
    with pytest.raises(TokenError, match=words):
        load_or_create_token(str(path))


def test_a_short_or_empty_token_is_refused_and_a_link_is_not_followed(tmp_path):
    path = tmp_path / "serve.token"
    path.write_text("\n")
    os.chmod(path, 0o600)
    with pytest.raises(TokenError, match="holds no token"):
        load_or_create_token(str(path))
    link = tmp_path / "link.token"
    link.symlink_to(path)
    with pytest.raises(TokenError, match="symbolic link"):
        load_or_create_token(str(link))


def test_credentials():
    auth = Authenticator("s3cret-token-0123456789")
    assert auth.bearer("Bearer s3cret-token-0123456789") and auth.bearer("bearer  s3cret-token-0123456789 ")
    for header in (None, "", "Bearer", "Bearer s3cret-token-012345678", "Basic s3cret-token-0123456789",
                   "Bearer s3cret-token-0123456789x", "Bearer \udcff"):
        assert not auth.bearer(header)
    assert auth.session(auth.session_value) and not auth.session("s3cret-token-0123456789")
    assert "s3cret" not in auth.session_value  # the cookie is derived, never the token itself
