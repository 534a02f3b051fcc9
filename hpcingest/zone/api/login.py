"""Login APIs: 110000 (4.3+ authentication framework, native scheme) and legacy 703/704.

Both end in the same check: the proxy user authenticates with its own password, and may then act
as a different client user only if it is a rodsadmin (SYS_PROXYUSER_NO_PRIV otherwise).
"""

from __future__ import annotations

import base64
import binascii

from .. import errors
from ..auth import digest_matches, new_challenge
from ..errors import ZoneError
from ..framing import Message
from ..session import Session
from ..xmlpack import json_buf, parse, parse_json_buf, struct
from .registry import Reply, api


def _complete_login(session: Session, proxy_name: str, proxy_zone: str, received: bytes) -> None:
    catalog = session.zone.catalog
    if not session.challenge:
        raise ZoneError(errors.CAT_INVALID_AUTHENTICATION, "no challenge issued")
    proxy = catalog.user(proxy_name, proxy_zone)
    if proxy is None or proxy.user_type_name == "rodsgroup":
        raise ZoneError(errors.CAT_INVALID_USER, f"unknown user {proxy_name}")
    password = catalog.password(proxy.user_id)
    if password is None or not digest_matches(session.challenge, password, received):
        raise ZoneError(errors.CAT_INVALID_AUTHENTICATION, "authentication failed")
    ident = session.identity
    client_name = ident.client_user or proxy_name
    client_zone = ident.client_zone or proxy_zone
    client = proxy
    if (client_name, client_zone) != (proxy.user_name, proxy.zone_name):
        if proxy.user_type_name != "rodsadmin":
            raise ZoneError(errors.SYS_PROXYUSER_NO_PRIV, f"{proxy_name} may not act as {client_name}")
        client = catalog.user(client_name, client_zone)  # type: ignore[assignment]
        if client is None:
            raise ZoneError(errors.CAT_INVALID_USER, f"unknown client user {client_name}")
    session.user = client
    session.user_ids = catalog.group_ids(client.user_id)


def _decode_digest(text: str) -> bytes:
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "digest is not base64") from None


@api(110000, "AUTHENTICATION_APN", needs_auth=False)
def authenticate(session: Session, request: Message) -> Reply:
    body = parse_json_buf(request.msg)
    if not isinstance(body, dict):
        raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "request is not a JSON object")
    for key in ("scheme", "next_operation"):
        if key not in body:
            raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"missing key [{key}]")
    if body["scheme"] != "native":
        raise ZoneError(errors.SYS_NOT_SUPPORTED, f"authentication scheme [{body['scheme']}] not supported")
    operation = body["next_operation"]
    if operation in ("auth_agent_start", "auth_agent_auth_verify"):
        return Reply(msg=json_buf({}))
    for key in ("user_name", "zone_name"):
        if key not in body:
            raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"missing key [{key}]")
    if operation == "auth_agent_auth_request":
        session.challenge = new_challenge()
        return Reply(msg=json_buf({**body, "request_result": session.challenge}))
    if operation == "auth_agent_auth_response":
        if "digest" not in body:
            raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, "missing key [digest]")
        _complete_login(session, body["user_name"], body["zone_name"], _decode_digest(body["digest"]))
        return Reply(msg=json_buf(body))
    raise ZoneError(errors.SYS_INVALID_INPUT_PARAM, f"unknown operation [{operation}]")


@api(703, "AUTH_REQUEST_AN", needs_auth=False)
def auth_request(session: Session, request: Message) -> Reply:
    session.challenge = new_challenge()
    challenge64 = base64.b64encode(session.challenge.encode()).decode()
    return Reply(msg=struct("authRequestOut_PI", ("challenge", challenge64)).encode())


@api(704, "AUTH_RESPONSE_AN", needs_auth=False)
def auth_response(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    name, _, zone = body.str("username").partition("#")
    _complete_login(session, name, zone or session.identity.proxy_zone, _decode_digest(body.str("response")))
    return Reply()
