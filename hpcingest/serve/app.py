"""The HTTP layer of `hpcingest serve` (aiohttp): routes, authentication, limits, headers.

Every request but ``GET /metrics`` (and the token form's ``POST /login``) is authenticated
before its handler runs, so a request without the token reads no body and changes nothing.
The work itself is hpcingest.serve.service's, run in worker threads (it reads files and runs
Slurm commands).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hpcingest.serve.auth import COOKIE, Authenticator
from hpcingest.serve.page import login_page, status_page
from hpcingest.serve.service import JobService, ServiceError

OPEN = {("GET", "/metrics"), ("POST", "/login")}
_PAGE_CSP = ("default-src 'none'; script-src 'nonce-{0}'; style-src 'nonce-{0}'; connect-src 'self'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# the timeline page (hpcingest.profile.render) carries its own inline script, style and data
_PROFILE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
                "frame-ancestors 'none'; base-uri 'none'")


def make_app(service: JobService, auth: Authenticator, *, secure: bool, max_body: int) -> web.Application:
    """The application; ``secure``: served over TLS (the session cookie is then Secure)."""

    @web.middleware
    async def headers(request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ServiceError as err:
            response = _error(err.status, err.message, err.key)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            response = _error(err.status, err.reason)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @web.middleware
    async def authenticate(request: web.Request, handler: Callable) -> web.StreamResponse:
        if (request.method, request.path) in OPEN:
            return await handler(request)
        if auth.bearer(request.headers.get("Authorization")):
            return await handler(request)
        if request.method in ("GET", "HEAD") and auth.session(request.cookies.get(COOKIE)):
            return await handler(request)
        if request.method == "GET" and request.path == "/":
            return _page(login_page, status=401)
        response = _error(401, "missing or wrong token: send the header `Authorization: Bearer <token>` with the "
                               "token from the service's token file")
        response.headers["WWW-Authenticate"] = 'Bearer realm="hpcingest"'
        return response

    async def run(function: Callable, *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def index(request: web.Request) -> web.Response:
        return _page(lambda nonce: status_page(nonce, service.launcher.kind, service.job_root))

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        token = form.get("token")
        if not isinstance(token, str) or not auth.token(token):
            return _page(lambda nonce: login_page(nonce, wrong=True), status=401)
        response = web.Response(status=303, headers={"Location": str(request.app.router["index"].url_for())})
        response.set_cookie(COOKIE, auth.session_value, httponly=True, samesite="Strict", secure=secure, path="/")
        return response

    async def list_jobs(request: web.Request) -> web.Response:
        return _json(await run(service.list))

    async def submit(request: web.Request) -> web.Response:
        name = request.match_info.get("name")
        body = await request.read()  # at most max_body bytes, else 413
        view = await run(service.submit, name, body, request.headers.get("Content-Type", ""))
        response = _json(view, status=201)
        response.headers["Location"] = f"/job/{view['job_name']}"
        return response

    async def show(request: web.Request) -> web.Response:
        return _json(await run(service.status, request.match_info["name"]))

    async def delete(request: web.Request) -> web.Response:
        view = await run(service.delete, request.match_info["name"])
        return web.Response(status=204) if view is None else _json(view, status=202)

    async def failures(request: web.Request) -> web.Response:
        offset, limit = _int_query(request, "offset", 0), _int_query(request, "limit", 100)
        return _json(await run(service.failures, request.match_info["name"], offset, limit))

    async def profile(request: web.Request) -> web.StreamResponse:
        number = _int_query(request, "pass", 0) or None
        path = await run(service.profile_page, request.match_info["name"], number)
        return web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8",
                                               "Content-Security-Policy": _PROFILE_CSP})

    async def metrics(request: web.Request) -> web.Response:
        body = await run(service.metrics)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application(client_max_size=max_body, middlewares=[headers, authenticate])
    app.router.add_get("/", index, name="index")
    app.router.add_post("/login", login)
    app.router.add_get("/job", list_jobs)
    app.router.add_put("/job", submit)
    app.router.add_get("/job/{name}", show)
    app.router.add_put("/job/{name}", submit)
    app.router.add_delete("/job/{name}", delete)
    app.router.add_get("/job/{name}/failures", failures)
    app.router.add_get("/job/{name}/profile", profile)
    app.router.add_get("/metrics", metrics)
    return app


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, indent=2) + "\n", status=status, content_type="application/json")


def _error(status: int, message: str, key: str | None = None) -> web.Response:
    return _json({"error": message, **({"key": key} if key else {})}, status=status)


def _page(render: Callable[[str], str], status: int = 200) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    response = web.Response(text=render(nonce), status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = _PAGE_CSP.format(nonce)
    return response


def _int_query(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ServiceError(400, f"query parameter {name} must be a whole number, not {value!r}", name) from None
