"""Where the iRODS connection comes from, resolved the way the old ingest framework does it.

Two sources, as in the old framework: all five ``IRODS_*`` variables, or an
``irods_environment.json`` with its ``.irodsA``.  An environment file is python-irodsclient's
to read: each rank hands PRC the file itself, so every setting PRC knows (TLS, encryption,
authentication schemes, refresh times, ...) reaches it exactly as ``iinit`` wrote it.  hpcingest
checks the file first (so a bad one is one clear line on rank 0, naming the setting, and not a
traceback on every rank) and adds only what iRODS's own clients do and PRC does not: they
always ask for the client-server negotiation (iRODS 5 no longer reads
``irods_client_server_negotiation``; PRC skips negotiating without it, and would then talk in
the clear to a server whose file says TLS is required), and they verify the server's
certificate against the system's CAs when the file names none (PRC then verifies nothing).

Rank 0 resolves the settings once and ships them to every rank, so :class:`IrodsSettings` is a
picklable record that deliberately holds no password: each rank re-reads the secret itself (the
``IRODS_PASSWORD`` variable its launcher passed down, or the obfuscated ``.irodsA`` file) right
before it authenticates, so the secret never travels over MPI, never lands in a pickle and never
shows up in a repr, a log line or an exception.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from hpcingest import logs

if TYPE_CHECKING:
    import ssl

    from irods.session import iRODSSession

VARIABLES = ("IRODS_HOST", "IRODS_PORT", "IRODS_USER_NAME", "IRODS_ZONE_NAME", "IRODS_PASSWORD")
PASSWORD_VARIABLE = "IRODS_PASSWORD"
DEFAULT_ENV_FILE = "~/.irods/irods_environment.json"
DEFAULT_AUTH_FILE = "~/.irods/.irodsA"
_REQUIRED_KEYS = ("irods_host", "irods_port", "irods_user_name", "irods_zone_name")
REQUEST_NEGOTIATION = "request_server_negotiation"
_REQUIRE_TLS, _REFUSE_TLS, _DONT_CARE = "CS_NEG_REQUIRE", "CS_NEG_REFUSE", "CS_NEG_DONT_CARE"
_VERIFY_MODES = ("hostname", "cert", "none")


class IrodsSettingsError(Exception):
    """The connection settings are missing or unusable; the message says which file or variable."""


@dataclass(frozen=True)
class TlsSettings:
    """What a file that requires TLS says about checking the server, kept as plain values so it
    pickles; the context is built per rank.  Encryption settings the file lacks get iRODS's
    defaults (PRC would fail on them half-way through the TLS handshake)."""

    verify_server: str = "hostname"
    ca_certificate_file: str | None = None
    ca_certificate_path: str | None = None
    encryption_algorithm: str = "AES-256-CBC"
    encryption_key_size: int = 32
    encryption_salt_size: int = 8
    encryption_num_hash_rounds: int = 16

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context verifying as iRODS's clients do: against the configured CA, else the
        system's CAs (PRC alone verifies nothing without a CA file); None when verification is off."""
        if self.verify_server == "none":
            return None
        import ssl  # here: only a rank that connects with TLS needs it

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_certificate_file,
                                             capath=self.ca_certificate_path)
        context.check_hostname = self.verify_server == "hostname"
        return context

    def session_options(self) -> dict[str, Any]:
        """Keywords for a session from the environment file: only what the file leaves out
        reaches PRC this way (the file's own keys win), so these are defaults and the context."""
        options: dict[str, Any] = {
            "irods_encryption_algorithm": self.encryption_algorithm,
            "irods_encryption_key_size": self.encryption_key_size,
            "irods_encryption_salt_size": self.encryption_salt_size,
            "irods_encryption_num_hash_rounds": self.encryption_num_hash_rounds,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options


@dataclass(frozen=True)
class IrodsSettings:
    """Address, identity and TLS of the zone; where the password is, never the password itself."""

    host: str
    port: int
    user: str
    zone: str
    source: str
    env_file: str | None = None
    auth_file: str | None = None
    authentication_scheme: str = "native"  # as the file names it; PAM schemes log in natively with the .irodsA
    default_resource: str | None = None
    tls: TlsSettings | None = None

    def read_password(self) -> str:
        """Fetch the secret at the last moment, from the same place rank 0 found it; the
        logs learn it too, so that no line can ever show it."""
        password = self._read_password()
        logs.register_secret(password)
        return password

    def _read_password(self) -> str:
        if self.auth_file is None:
            password = os.environ.get(PASSWORD_VARIABLE)
            if not password:
                raise IrodsSettingsError(f"${PASSWORD_VARIABLE} is not set in this process")
            return password
        return read_auth_file(self.auth_file)

    def new_session(self, **options: Any) -> iRODSSession:
        """A python-irodsclient session for this zone (not yet connected); ``options`` are
        further iRODSSession keywords (timeouts, application name, the proxied ``client_user``)."""
        from irods.session import iRODSSession

        password = self.read_password()
        if self.env_file is None:
            return iRODSSession(host=self.host, port=self.port, user=self.user, zone=self.zone, password=password,
                                **options)
        extra: dict[str, Any] = {"irods_authentication_file": self.auth_file,
                                 "irods_client_server_negotiation": REQUEST_NEGOTIATION}
        if self.tls is not None:
            extra.update(self.tls.session_options())
        return iRODSSession(irods_env_file=self.env_file, **extra, **options)

    def describe(self) -> str:
        """One line for logs and error messages (no secret in it)."""
        origin = self.env_file if self.source == "env_file" else "$IRODS_* variables"
        return f"{self.user}#{self.zone}@{self.host}:{self.port} (from {origin})"


def read_auth_file(path: str) -> str:
    """The password in an ``.irodsA`` file written by iinit (or PRC) for this user.

    python-irodsclient decodes any text without complaint (garbage gives a garbage password,
    which the server then refuses as a *wrong password*), so the file's header is checked
    first, as iRODS's own client does (obf.cpp, obfiDecode): a leading ``.``, the key
    character, and a header that decodes to the check character and four time digits.  A
    file of another uid fails that check too (the uid is part of the key)."""
    try:
        with open(path, "rb") as source:
            data = source.read(1 << 12)
    except OSError as exc:
        raise IrodsSettingsError(f"cannot read the iRODS authentication file {path}: "
                                 f"{exc.strerror or exc} (run iinit?)") from None
    password = decode_obfuscated(data.decode("latin-1").split("\0", 1)[0].rstrip("\n"), os.getuid())
    if not password:
        raise IrodsSettingsError(f"the .irodsA file at {path} could not be decoded (it was not written by "
                                 f"iinit for this user, uid {os.getuid()}); run iinit again")
    return password


def decode_obfuscated(text: str, uid: int) -> str | None:
    """The password obfuscated in ``text`` (the .irodsA format), or None when ``text`` is not one."""
    from irods.password_obfuscation import decode, seq_list, wheel

    key = ord(text[6]) - ord("e") if len(text) > 7 else -1
    if text[:1] != "." or not 0 <= key <= 15:
        return None
    header, shift = [], 0
    for char in text[1:6]:
        offset = ((seq_list[key] >> shift) & 0x1F) + (uid & 0xF5F)
        shift = 0 if shift + 3 > 28 else shift + 3
        header.append(wheel[(wheel.index(char) - offset) % len(wheel)] if char in wheel else char)
    if header[0] != chr(ord("S") - (key & 0x7) * 2) or not all("a" <= c <= "p" for c in header[1:]):
        return None
    return decode(text, uid) or None


def resolve_settings(environ: Mapping[str, str] | None = None) -> IrodsSettings:
    """Variables if all five are set, else the env file (+ .irodsA), like the old framework."""
    env = os.environ if environ is None else environ
    present = [name for name in VARIABLES if env.get(name)]
    if len(present) == len(VARIABLES):
        return IrodsSettings(host=env["IRODS_HOST"], port=_port(env["IRODS_PORT"], "$IRODS_PORT"),
                             user=env["IRODS_USER_NAME"], zone=env["IRODS_ZONE_NAME"], source="variables")
    env_file = env.get("IRODS_ENVIRONMENT_FILE") or _expand(DEFAULT_ENV_FILE, env)
    if not os.path.exists(env_file):
        missing = [name for name in VARIABLES if name not in present]
        partial = f" (set: {', '.join(present)}; missing: {', '.join(missing)})" if present else ""
        raise IrodsSettingsError(
            f"no iRODS connection settings: set all of {', '.join(VARIABLES)}{partial}, "
            f"or point $IRODS_ENVIRONMENT_FILE at an irods_environment.json (looked for {env_file})")
    return settings_from_env_file(env_file, env.get("IRODS_AUTHENTICATION_FILE") or _expand(DEFAULT_AUTH_FILE, env))


def client_schemes() -> frozenset[str]:
    """The authentication schemes this python-irodsclient has a client plugin for (irods.auth.*):
    native and the PAM family in 3.x.  With the password iinit stored in .irodsA, the PAM
    schemes go straight to a native login, over TLS only (as iRODS's own plugin does)."""
    import pkgutil

    import irods.auth

    return frozenset(module.name for module in pkgutil.iter_modules(irods.auth.__path__))


def _prc_version() -> str:
    from irods.version import __version__

    return __version__


def settings_from_env_file(env_file: str, auth_file: str | None = None) -> IrodsSettings:
    """Check an environment file (and its .irodsA) as iRODS's clients read it, then let
    python-irodsclient parse it.  ``auth_file``: $IRODS_AUTHENTICATION_FILE, if set."""
    data = _load_json(env_file)
    missing = [key for key in _REQUIRED_KEYS if data.get(key) in (None, "")]
    if missing:
        raise IrodsSettingsError(f"{env_file} lacks {', '.join(missing)}")
    _port(data["irods_port"], f"{env_file}: irods_port")
    scheme = str(data.get("irods_authentication_scheme") or "native")
    if scheme.lower() not in client_schemes():
        raise IrodsSettingsError(
            f"{env_file}: irods_authentication_scheme {scheme!r} is not supported by python-irodsclient "
            f"{_prc_version()} (it has {', '.join(sorted(client_schemes()))}); use native, or pam_password "
            "with the password iinit stores in .irodsA")
    # PRC reads the .irodsA the file names, else $IRODS_AUTHENTICATION_FILE, else the default
    auth_file = data.get("irods_authentication_file") or auth_file or os.path.expanduser(DEFAULT_AUTH_FILE)
    if not os.access(auth_file, os.R_OK):
        raise IrodsSettingsError(f"cannot read the iRODS authentication file {auth_file} (run iinit?)")
    read_auth_file(auth_file)  # a garbage file is said to be one here, not a "wrong password" later
    tls = _tls(data, env_file)
    if scheme.lower() != "native" and tls is None:
        raise IrodsSettingsError(
            f"{env_file}: irods_authentication_scheme {scheme} needs TLS, as with iRODS's own clients: set "
            f"irods_client_server_policy to {_REQUIRE_TLS} with the irods_ssl_* settings (iinit --with-ssl)")
    account = _parsed_by_client(env_file, auth_file)
    return IrodsSettings(host=str(account.host), port=int(account.port), user=str(account.proxy_user),
                         zone=str(account.proxy_zone), source="env_file", env_file=env_file, auth_file=auth_file,
                         authentication_scheme=scheme.lower(),
                         default_resource=getattr(account, "default_resource", None) or None, tls=tls)


def _parsed_by_client(env_file: str, auth_file: str) -> Any:
    """The account python-irodsclient makes of the file (nothing is connected)."""
    from irods.session import iRODSSession

    try:
        session = iRODSSession(irods_env_file=env_file, irods_authentication_file=auth_file)
    except Exception as exc:  # noqa: BLE001 - whatever PRC cannot take, said in one line
        raise IrodsSettingsError(f"python-irodsclient {_prc_version()} cannot use {env_file}: "
                                 f"{type(exc).__name__}: {exc}") from None
    try:
        return session.pool.account
    finally:
        session.cleanup()


def _tls(data: Mapping[str, Any], env_file: str) -> TlsSettings | None:
    """The TLS a file asks for, as iRODS's clients take it: a missing policy means
    CS_NEG_DONT_CARE to them (PRC: refuse TLS), and negotiating is always requested."""
    policy = data.get("irods_client_server_policy") or None
    if policy == _DONT_CARE:
        raise IrodsSettingsError(
            f"{env_file}: irods_client_server_policy CS_NEG_DONT_CARE is accepted by iRODS's own clients but not "
            f"by python-irodsclient {_prc_version()}; set it to {_REQUIRE_TLS} (TLS) or {_REFUSE_TLS}")
    if policy not in (None, _REQUIRE_TLS, _REFUSE_TLS):
        raise IrodsSettingsError(f"{env_file}: irods_client_server_policy {policy!r} is not one of "
                                 f"{_REQUIRE_TLS}, {_REFUSE_TLS}, {_DONT_CARE}")
    if policy != _REQUIRE_TLS:
        return None
    negotiation = data.get("irods_client_server_negotiation")
    if negotiation not in (None, "", REQUEST_NEGOTIATION):
        raise IrodsSettingsError(
            f"{env_file}: irods_client_server_policy {_REQUIRE_TLS} needs irods_client_server_negotiation "
            f"{REQUEST_NEGOTIATION!r} (iRODS 5 clients always negotiate), not {negotiation!r}: without it the "
            "connection would not be encrypted")
    verify = data.get("irods_ssl_verify_server") or "hostname"
    if verify not in _VERIFY_MODES:
        raise IrodsSettingsError(f"{env_file}: irods_ssl_verify_server must be one of {', '.join(_VERIFY_MODES)}")
    for key in ("irods_ssl_ca_certificate_file", "irods_ssl_ca_certificate_path"):
        if data.get(key) and verify != "none" and not os.access(data[key], os.R_OK):
            raise IrodsSettingsError(f"{env_file}: {key} {data[key]!r} cannot be read")
    numbers = {}
    for key, default in (("key_size", 32), ("salt_size", 8), ("num_hash_rounds", 16)):
        value = data.get(f"irods_encryption_{key}", default)
        numbers[f"encryption_{key}"] = _integer(value, f"{env_file}: irods_encryption_{key}")
    return TlsSettings(verify_server=verify,
                       ca_certificate_file=data.get("irods_ssl_ca_certificate_file") or None,
                       ca_certificate_path=data.get("irods_ssl_ca_certificate_path") or None,
                       encryption_algorithm=data.get("irods_encryption_algorithm") or "AES-256-CBC", **numbers)


def _load_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
    except OSError as exc:
        raise IrodsSettingsError(f"cannot read the iRODS environment file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IrodsSettingsError(f"the iRODS environment file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IrodsSettingsError(f"the iRODS environment file {path} must hold a JSON object")
    return data


def _port(value: Any, where: str) -> int:
    port = _integer(value, where)
    if not 0 < port < 65536:
        raise IrodsSettingsError(f"{where}: {port} is not a TCP port")
    return port


def _integer(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IrodsSettingsError(f"{where}: {value!r} is not an integer") from None


def _expand(path: str, env: Mapping[str, str]) -> str:
    home = env.get("HOME")
    if home and path.startswith("~/"):
        return os.path.join(home, path[2:])
    return os.path.expanduser(path)
