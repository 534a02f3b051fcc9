"""Settings resolution from each source, and the password never leaving the rank that reads it."""

from __future__ import annotations

import json
import os
import pickle
import ssl

import pytest
from irods.password_obfuscation import encode

from hpcingest.irods import IrodsSettingsError, resolve_settings
from hpcingest.irods.settings import VARIABLES, client_schemes

SECRET = "s3cr3t-Pa55"
VARIABLE_ENV = {"IRODS_HOST": "irods.example.org", "IRODS_PORT": "1247", "IRODS_USER_NAME": "alice",
                "IRODS_ZONE_NAME": "exampleZone", "IRODS_PASSWORD": SECRET}


def write_env(directory, name="irods_environment.json", **extra) -> str:
    data = {"irods_host": "envhost", "irods_port": 2247, "irods_user_name": "bob", "irods_zone_name": "envZone",
            "irods_default_resource": "fastResc", **extra}
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out)
    return path


def write_auth(directory, password=SECRET, name=".irodsA") -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as out:
        out.write(encode(password))
    return path


def assert_no_secret(settings) -> None:
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET.encode() not in pickle.dumps(settings)
    assert SECRET not in settings.describe()


def test_all_five_variables_win(tmp_path, monkeypatch):
    env = dict(VARIABLE_ENV, IRODS_ENVIRONMENT_FILE=write_env(tmp_path), HOME=str(tmp_path))
    settings = resolve_settings(env)
    assert (settings.host, settings.port, settings.user, settings.zone) == ("irods.example.org", 1247, "alice",
                                                                             "exampleZone")
    assert settings.source == "variables" and settings.auth_file is None and settings.tls is None
    assert_no_secret(settings)
    monkeypatch.setenv("IRODS_PASSWORD", SECRET)
    assert pickle.loads(pickle.dumps(settings)).read_password() == SECRET


def test_partial_variables_fall_back_to_the_env_file(tmp_path):
    env = {name: VARIABLE_ENV[name] for name in VARIABLES if name != "IRODS_PASSWORD"}
    env.update(IRODS_ENVIRONMENT_FILE=write_env(tmp_path), IRODS_AUTHENTICATION_FILE=write_auth(tmp_path))
    settings = resolve_settings(env)
    assert (settings.host, settings.port, settings.user, settings.zone) == ("envhost", 2247, "bob", "envZone")
    assert settings.source == "env_file" and settings.default_resource == "fastResc"


def test_env_file_and_auth_file_from_variables(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path, "custom.json"),
           "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path, name="auth")}
    settings = resolve_settings(env)
    assert settings.env_file == env["IRODS_ENVIRONMENT_FILE"] and settings.auth_file == env["IRODS_AUTHENTICATION_FILE"]
    assert_no_secret(settings)
    assert pickle.loads(pickle.dumps(settings)).read_password() == SECRET


def test_default_files_under_home(tmp_path):
    irods_dir = tmp_path / ".irods"
    irods_dir.mkdir()
    write_env(irods_dir)
    write_auth(irods_dir)
    settings = resolve_settings({"HOME": str(tmp_path)})
    assert settings.env_file == str(irods_dir / "irods_environment.json")
    assert settings.auth_file == str(irods_dir / ".irodsA")
    assert settings.read_password() == SECRET
    assert_no_secret(settings)


def test_the_password_is_reread_each_time(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path), "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    settings = resolve_settings(env)
    write_auth(tmp_path, "changed-by-iinit")
    assert settings.read_password() == "changed-by-iinit"


def test_nothing_configured(tmp_path):
    with pytest.raises(IrodsSettingsError, match="no iRODS connection settings") as info:
        resolve_settings({"HOME": str(tmp_path), "IRODS_HOST": "h"})
    assert "missing: IRODS_PORT" in str(info.value) and "irods_environment.json" in str(info.value)


def test_invalid_json(tmp_path):
    path = tmp_path / "env.json"
    path.write_text("{not json")
    with pytest.raises(IrodsSettingsError, match="not valid JSON"):
        resolve_settings({"IRODS_ENVIRONMENT_FILE": str(path)})
    path.write_text("[1, 2]")
    with pytest.raises(IrodsSettingsError, match="JSON object"):
        resolve_settings({"IRODS_ENVIRONMENT_FILE": str(path)})


def test_unreadable_env_file(tmp_path):
    path = tmp_path / "env.json"
    path.mkdir()  # exists but cannot be read as a file, even by root
    with pytest.raises(IrodsSettingsError, match="cannot read the iRODS environment file"):
        resolve_settings({"IRODS_ENVIRONMENT_FILE": str(path)})


def test_missing_keys(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"irods_host": "h", "irods_port": 1247}))
    with pytest.raises(IrodsSettingsError, match="lacks irods_user_name, irods_zone_name"):
        resolve_settings({"IRODS_ENVIRONMENT_FILE": str(path), "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)})


def test_bad_port(tmp_path):
    env = dict(VARIABLE_ENV, IRODS_PORT="twelve")
    with pytest.raises(IrodsSettingsError, match="IRODS_PORT.*not an integer"):
        resolve_settings(env)


def test_missing_or_garbled_auth_file(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path), "IRODS_AUTHENTICATION_FILE": str(tmp_path / "none")}
    with pytest.raises(IrodsSettingsError, match="authentication file .*none.*iinit"):
        resolve_settings(env)
    env["IRODS_AUTHENTICATION_FILE"] = write_auth(tmp_path)
    settings = resolve_settings(env)
    (tmp_path / ".irodsA").write_text("x")
    with pytest.raises(IrodsSettingsError, match="could not be decoded.*run iinit again"):
        settings.read_password()


def test_missing_password_variable_in_a_rank(monkeypatch):
    settings = resolve_settings(VARIABLE_ENV)
    monkeypatch.delenv("IRODS_PASSWORD", raising=False)
    with pytest.raises(IrodsSettingsError, match=r"\$IRODS_PASSWORD is not set"):
        settings.read_password()


def test_a_scheme_python_irodsclient_lacks_is_one_line_naming_it(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path, irods_authentication_scheme="GSI"),
           "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    with pytest.raises(IrodsSettingsError, match=r"irods_authentication_scheme 'GSI' is not supported by "
                                                 r"python-irodsclient [\d.]+ \(it has .*native.*pam_password"):
        resolve_settings(env)


@pytest.mark.parametrize("scheme", sorted({"pam_password", "PAM", "pam_interactive"}
                                          & (client_schemes() | {"PAM"})))  # pam_interactive came in PRC 3.2
def test_pam_schemes_take_the_irodsa_password_over_tls(tmp_path, scheme):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path, irods_authentication_scheme=scheme,
                                               irods_client_server_policy="CS_NEG_REQUIRE",
                                               irods_ssl_verify_server="none"),
           "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    settings = resolve_settings(env)
    assert settings.authentication_scheme == scheme.lower()
    account = settings.new_session().pool.account  # as python-irodsclient reads the file
    assert account.authentication_scheme == "native" and account.password == SECRET
    assert account._auth_file == env["IRODS_AUTHENTICATION_FILE"]  # the PAM flow goes to a native login


def test_a_pam_scheme_without_tls_is_one_line(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path, irods_authentication_scheme="pam_password"),
           "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    with pytest.raises(IrodsSettingsError, match="irods_authentication_scheme pam_password needs TLS, as with "
                                                 "iRODS's own clients: set irods_client_server_policy to CS_NEG_REQUIRE"):
        resolve_settings(env)


def _self_signed_ca(directory) -> str:
    crypto = pytest.importorskip("cryptography")
    del crypto
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path = os.path.join(directory, "ca.pem")
    with open(path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_tls_settings_and_ssl_context(tmp_path):
    ca = _self_signed_ca(tmp_path)
    env = {"IRODS_ENVIRONMENT_FILE": write_env(
        tmp_path, irods_client_server_negotiation="request_server_negotiation",
        irods_client_server_policy="CS_NEG_REQUIRE", irods_ssl_verify_server="cert",
        irods_ssl_ca_certificate_file=ca, irods_encryption_algorithm="AES-256-CBC", irods_encryption_key_size=32,
        irods_encryption_salt_size=8, irods_encryption_num_hash_rounds=16),
        "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    settings = pickle.loads(pickle.dumps(resolve_settings(env)))
    tls = settings.tls
    assert tls is not None and tls.verify_server == "cert" and tls.ca_certificate_file == ca
    account = settings.new_session().pool.account
    context = account.ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert any(cert["subject"] == ((("commonName", "test-ca"),),) for cert in context.get_ca_certs())
    assert account.client_server_negotiation == "request_server_negotiation"
    assert account.encryption_num_hash_rounds == 16 and account.client_server_policy == "CS_NEG_REQUIRE"


def test_tls_without_verification_leaves_the_context_to_prc(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(
        tmp_path, irods_client_server_negotiation="request_server_negotiation",
        irods_client_server_policy="CS_NEG_REQUIRE", irods_ssl_verify_server="none"),
        "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    account = resolve_settings(env).new_session().pool.account
    assert not hasattr(account, "ssl_context") and account.ssl_verify_server == "none"


def test_a_tls_file_that_switches_negotiation_off_is_refused(tmp_path):
    env = {"IRODS_ENVIRONMENT_FILE": write_env(
        tmp_path, irods_client_server_negotiation="off", irods_client_server_policy="CS_NEG_REQUIRE"),
        "IRODS_AUTHENTICATION_FILE": write_auth(tmp_path)}
    with pytest.raises(IrodsSettingsError, match="CS_NEG_REQUIRE needs irods_client_server_negotiation "
                                                 "'request_server_negotiation'.*not 'off'"):
        resolve_settings(env)


@pytest.mark.parametrize("content", ["garbage!!", "\x00\x01binary", ".E_scrambled-db-password", "rods\n"])
def test_a_garbage_auth_file_is_said_to_be_one_not_a_wrong_password(tmp_path, content):
    """python-irodsclient decodes these to some password, which the server would refuse."""
    (tmp_path / ".irodsA").write_text(content)
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path), "IRODS_AUTHENTICATION_FILE": str(tmp_path / ".irodsA")}
    with pytest.raises(IrodsSettingsError, match=rf"the .irodsA file at {tmp_path}/.irodsA could not be decoded "
                                                 r"\(.*uid \d+\); run iinit again"):
        resolve_settings(env)


def test_an_auth_file_of_another_uid_cannot_be_decoded(tmp_path):
    path = tmp_path / ".irodsA"
    path.write_text(encode(SECRET, uid=os.getuid() + 1))
    env = {"IRODS_ENVIRONMENT_FILE": write_env(tmp_path), "IRODS_AUTHENTICATION_FILE": str(path)}
    with pytest.raises(IrodsSettingsError, match="could not be decoded"):
        resolve_settings(env)
    path.write_text(encode(SECRET))  # iinit's output, NUL-terminated, for this uid
    assert resolve_settings(env).read_password() == SECRET
