"""The client-side files a zone hands out: ``irods_environment.json`` and the obfuscated ``.irodsA``.

With these two files, ``IRODS_ENVIRONMENT_FILE`` and ``IRODS_AUTHENTICATION_FILE`` are all a
client (PRC, icommands) needs.  ``irods_host`` is ``localhost`` because PRC's own tests only run
their server-side-file cases against a host of that name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from irods.password_obfuscation import decode, encode

ENV_FILE_NAME = "irods_environment.json"
AUTH_FILE_NAME = ".irodsA"


@dataclass(frozen=True)
class ClientEnvironment:
    host: str
    port: int
    zone: str
    user: str
    default_resource: str = "demoResc"

    def as_json(self) -> dict:
        return {"irods_host": self.host, "irods_port": self.port, "irods_zone_name": self.zone,
                "irods_user_name": self.user, "irods_default_resource": self.default_resource,
                "irods_authentication_scheme": "native"}


def write_client_files(directory: str, env: ClientEnvironment, password: str) -> tuple[str, str]:
    """Write both files (the auth file private to the user) and return their paths."""
    env_path = os.path.join(directory, ENV_FILE_NAME)
    auth_path = os.path.join(directory, AUTH_FILE_NAME)
    with open(env_path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(env.as_json(), out, indent=2)
    os.replace(env_path + ".tmp", env_path)
    fd = os.open(auth_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(encode(password))
    return env_path, auth_path


def read_client_files(env_path: str, auth_path: str) -> tuple[ClientEnvironment, str]:
    """Read a (possibly real) zone's client files back: its address, user and password."""
    with open(env_path, encoding="utf-8") as source:
        data = json.load(source)
    with open(auth_path, encoding="utf-8") as source:
        password = decode(source.read().strip())
    env = ClientEnvironment(data["irods_host"], int(data["irods_port"]), data["irods_zone_name"],
                            data["irods_user_name"], data.get("irods_default_resource", ""))
    return env, password
