"""Where the iRODS connection comes from, resolved the way the old ingest framework does it.

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

VARIABLES = ("IRODS_HOST", "IRODS_PORT", "IRODS_USER_NAME", "IRODS_ZONE_NAME", "IRODS_PASSWORD")
PASSWORD_VARIABLE = "IRODS_PASSWORD"
DEFAULT_ENV_FILE = "~/.irods/irods_environment.json"
DEFAULT_AUTH_FILE = "~/.irods/.irodsA"
_REQUIRED_KEYS = ("irods_host", "irods_port", "irods_user_name", "irods_zone_name")
_CLIENT_POLICIES = ("CS_NEG_REQUIRE", "CS_NEG_REFUSE")
_VERIFY_MODES = ("hostname", "cert", "none")


class IrodsSettingsError(Exception):
    """The connection settings are missing or unusable; the message says which file or variable."""


@dataclass(frozen=True)
class TlsSettings:
    """The env file's TLS keys, kept as plain values so they pickle; the context is built per rank."""

    negotiation: str
    client_server_policy: str
    verify_server: str = "hostname"
    ca_certificate_file: str | None = None
    ca_certificate_path: str | None = None
    encryption_algorithm: str = "AES-256-CBC"
    encryption_key_size: int = 32
    encryption_salt_size: int = 8
    encryption_num_hash_rounds: int = 16

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting the configured CA, or None to let PRC build its default one."""
        if self.verify_server == "none":
            return None
        import ssl  # here: only a rank that connects with TLS needs it

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_certificate_file,
                                             capath=self.ca_certificate_path)
        context.check_hostname = self.verify_server == "hostname"
        return context

    def session_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "irods_client_server_negotiation": self.negotiation,
            "irods_client_server_policy": self.client_server_policy,
            "irods_ssl_verify_server": self.verify_server,
            "irods_encryption_algorithm": self.encryption_algorithm,
            "irods_encryption_key_size": self.encryption_key_size,
            "irods_encryption_salt_size": self.encryption_salt_size,
            "irods_encryption_num_hash_rounds": self.encryption_num_hash_rounds,
        }
        if self.ca_certificate_file:
            options["irods_ssl_ca_certificate_file"] = self.ca_certificate_file
        if self.ca_certificate_path:
            options["irods_ssl_ca_certificate_path"] = self.ca_certificate_path
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
    authentication_scheme: str = "native"
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

    def session_options(self) -> dict[str, Any]:
        """iRODSSession keywords except the password and the proxied identity."""
        options: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.user, "zone": self.zone,
                                   "authentication_scheme": self.authentication_scheme}
        if self.tls is not None:
            options.update(self.tls.session_options())
        return options

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
    return settings_from_env_file(env_file, env.get("IRODS_AUTHENTICATION_FILE")
                                  or _expand(DEFAULT_AUTH_FILE, env))


def settings_from_env_file(env_file: str, auth_file: str) -> IrodsSettings:
    data = _load_json(env_file)
    missing = [key for key in _REQUIRED_KEYS if data.get(key) in (None, "")]
    if missing:
        raise IrodsSettingsError(f"{env_file} lacks {', '.join(missing)}")
    scheme = str(data.get("irods_authentication_scheme") or "native").lower()
    from irods import PAM_AUTH_SCHEMES

    if scheme in PAM_AUTH_SCHEMES:
        scheme = "native"  # .irodsA then holds the PAM-derived native password, as PRC does it
    if scheme != "native":
        raise IrodsSettingsError(f"{env_file}: authentication scheme {scheme!r} is not supported "
                                 "(native, or pam_password with a password from iinit)")
    if not os.access(auth_file, os.R_OK):
        raise IrodsSettingsError(f"cannot read the iRODS authentication file {auth_file} (run iinit?)")
    read_auth_file(auth_file)  # a garbage file is said to be one here, not a "wrong password" later
    return IrodsSettings(host=str(data["irods_host"]), port=_port(data["irods_port"], f"{env_file}: irods_port"),
                         user=str(data["irods_user_name"]), zone=str(data["irods_zone_name"]), source="env_file",
                         env_file=env_file, auth_file=auth_file, authentication_scheme=scheme,
                         default_resource=data.get("irods_default_resource") or None,
                         tls=_tls(data, env_file))


def _tls(data: Mapping[str, Any], env_file: str) -> TlsSettings | None:
    negotiation = data.get("irods_client_server_negotiation") or ""
    if negotiation != "request_server_negotiation":
        return None
    policy = data.get("irods_client_server_policy") or "CS_NEG_REFUSE"
    if policy not in _CLIENT_POLICIES:
        raise IrodsSettingsError(f"{env_file}: irods_client_server_policy {policy!r} is not usable with "
                                 f"python-irodsclient; use one of {', '.join(_CLIENT_POLICIES)}")
    verify = data.get("irods_ssl_verify_server") or "hostname"
    if verify not in _VERIFY_MODES:
        raise IrodsSettingsError(f"{env_file}: irods_ssl_verify_server must be one of {', '.join(_VERIFY_MODES)}")
    numbers = {}
    for key, default in (("key_size", 32), ("salt_size", 8), ("num_hash_rounds", 16)):
        value = data.get(f"irods_encryption_{key}", default)
        numbers[f"encryption_{key}"] = _integer(value, f"{env_file}: irods_encryption_{key}")
    return TlsSettings(negotiation=negotiation, client_server_policy=policy, verify_server=verify,
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
