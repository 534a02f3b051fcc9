"""The environment files `iinit` writes for iRODS 4.3 and 5 (and the service account's, as
`setup_irods.py` writes them), read and used against the zone.

What each version writes (irods_client_icommands src/iinit.cpp, irods scripts/setup_irods.py):
the four required keys; with --prompt-auth-scheme the scheme; with --with-ssl the policy
CS_NEG_REQUIRE, server verification, the CA file and the encryption settings, plus, in 4.3 only,
``irods_client_server_negotiation`` (iRODS 5 clients always negotiate and no longer write it).
"""

from __future__ import annotations

import json
import os
import ssl

import pytest

from hpcingest.irods import IrodsAuthError, IrodsConnection, IrodsSettingsError, RetryPolicy, resolve_settings

from .test_settings import _self_signed_ca

VERSIONS = ("4.3", "5")


def required(zone) -> dict:
    """The four keys iinit asks for, as the zone's own client file has them."""
    with open(zone.env_file, encoding="utf-8") as source:
        data = json.load(source)
    return {key: data[key] for key in ("irods_host", "irods_port", "irods_user_name", "irods_zone_name")}


def iinit_file(zone, tmp_path, version: str, kind: str) -> dict:
    data = required(zone)
    if kind == "pam_password":  # iinit --prompt-auth-scheme --with-ssl (the PAM plugin requires TLS)
        data["irods_authentication_scheme"] = "pam_password"
    if kind in ("tls_required", "pam_password"):  # iinit --with-ssl
        data.update(irods_client_server_policy="CS_NEG_REQUIRE", irods_ssl_verify_server="cert",
                    irods_ssl_ca_certificate_file=_self_signed_ca(tmp_path), irods_encryption_algorithm="AES-256-CBC",
                    irods_encryption_key_size=32, irods_encryption_salt_size=8, irods_encryption_num_hash_rounds=16)
        if version == "4.3":
            data["irods_client_server_negotiation"] = "request_server_negotiation"
    elif kind == "dont_care":  # written by hand: iinit never writes it, iRODS's clients accept it
        data["irods_client_server_policy"] = "CS_NEG_DONT_CARE"
    elif kind == "service_account":
        home = f"/{data['irods_zone_name']}/home/{data['irods_user_name']}"
        data.update(schema_name="service_account_environment", schema_version="v4" if version == "4.3" else "v5",
                    irods_default_resource=zone.default_resource, irods_home=home, irods_cwd=home,
                    irods_client_server_policy="CS_NEG_REFUSE", irods_encryption_key_size=32,
                    irods_encryption_salt_size=8, irods_encryption_num_hash_rounds=16,
                    irods_encryption_algorithm="AES-256-CBC", irods_default_hash_scheme="SHA256",
                    irods_match_hash_policy="compatible", irods_maximum_size_for_single_buffer_in_megabytes=32,
                    irods_default_number_of_transfer_threads=4,
                    irods_transfer_buffer_size_for_parallel_transfer_in_megabytes=4,
                    irods_connection_pool_refresh_time_in_seconds=300)
        if version == "4.3":
            data["irods_client_server_negotiation"] = "request_server_negotiation"
    return data


def environ(zone, tmp_path, data: dict) -> dict:
    path = tmp_path / "irods_environment.json"
    path.write_text(json.dumps(data, indent=4))
    # iinit's .irodsA (for PAM: the native password the server derived, which it stores the same way)
    return {"IRODS_ENVIRONMENT_FILE": str(path), "IRODS_AUTHENTICATION_FILE": zone.auth_file}


def logged_in_socket(settings):
    with IrodsConnection(settings, retry=RetryPolicy(5)) as connection:
        return connection.call(lambda session: (session.server_version, type(session.pool.idle.copy().pop().socket)))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["native", "service_account"])
def test_iinit_files_log_in(zone, tmp_path, version, kind):
    settings = resolve_settings(environ(zone, tmp_path, iinit_file(zone, tmp_path, version, kind)))
    assert (settings.user, settings.zone) == (zone.user, zone.zone)
    version_seen, _ = logged_in_socket(settings)
    assert len(version_seen) >= 2


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", ["tls_required", "pam_password"])
def test_a_file_that_requires_tls_never_connects_in_the_clear(zone, tmp_path, version, kind):
    """iRODS 5's iinit --with-ssl writes no irods_client_server_negotiation: python-irodsclient
    alone then skipped the negotiation and talked to a server that allows it in plain TCP."""
    settings = resolve_settings(environ(zone, tmp_path, iinit_file(zone, tmp_path, version, kind)))
    try:
        _, socket_type = logged_in_socket(settings)
    except IrodsAuthError as err:  # the built-in zone refuses TLS
        assert "requires TLS (irods_client_server_policy CS_NEG_REQUIRE) and the server refuses it" in str(err)
        assert "\n" not in str(err)
    else:  # a real zone that speaks TLS: the connection is encrypted
        assert issubclass(socket_type, ssl.SSLSocket)


@pytest.mark.parametrize("version", VERSIONS)
def test_dont_care_is_one_line_naming_the_setting(zone, tmp_path, version):
    with pytest.raises(IrodsSettingsError) as info:
        resolve_settings(environ(zone, tmp_path, iinit_file(zone, tmp_path, version, "dont_care")))
    message = str(info.value)
    assert "irods_client_server_policy CS_NEG_DONT_CARE is accepted by iRODS's own clients but not by " \
           "python-irodsclient" in message and "\n" not in message


def test_a_ca_file_that_cannot_be_read_is_named(zone, tmp_path):
    data = iinit_file(zone, tmp_path, "5", "tls_required")
    data["irods_ssl_ca_certificate_file"] = os.fspath(tmp_path / "missing.pem")
    with pytest.raises(IrodsSettingsError, match="irods_ssl_ca_certificate_file .*missing.pem' cannot be read"):
        resolve_settings(environ(zone, tmp_path, data))
