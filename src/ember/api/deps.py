"""FastAPI dependencies: the app's services, API-key authentication and who is asking."""

from __future__ import annotations

import hmac
from dataclasses import replace

from fastapi import Request

from ember.core.request_context import ANONYMOUS, Caller, RequestContext
from ember.errors import AuthenticationError
from ember.services.container import Services


async def get_services(request: Request) -> Services:
    # async: FastAPI would run a plain function in its thread pool, a hop per request.
    services: Services = request.app.state.services
    return services


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_api_key(request: Request) -> None:
    """Once any key exists (the ``api_keys`` setting or ``ember keys create``), the request
    must carry a valid one as a bearer token. Leaves the :class:`Caller` on the request
    (``caller(request)``): who is asking, and whether they asked to bypass the cache
    (``Cache-Control: no-cache``)."""
    services: Services = request.app.state.services
    no_cache = "no-cache" in request.headers.get("cache-control", "").lower()
    token = bearer_token(request)
    principal = None
    if token is not None:
        principal = services.keys.authenticate(token)
    if principal is None and services.keys.required():
        if token is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
                code="missing_api_key",
            )
        raise AuthenticationError("Incorrect API key provided.")
    request.state.caller = Caller(
        tenant=principal.tenant if principal else None,
        key=principal.key if principal else None,
        no_cache=no_cache,
    )


def caller(request: Request, *, cache_opt_in: bool = False) -> Caller:
    """Who is asking (set by ``require_api_key``); ``cache_opt_in``: the body said
    ``"ember": {"cache": true}``."""
    found: Caller = getattr(request.state, "caller", ANONYMOUS)
    return replace(found, cache_opt_in=True) if cache_opt_in else found


def route_headers(ctx: RequestContext) -> dict[str, str]:
    """``x-ember-route``: the target that served the request and why it was chosen."""
    route = ctx.route.target
    if not route:
        return {}
    reason = ctx.route.reason or "direct"
    headers = {"x-ember-route": f"{route}; reason={reason}"}
    if ctx.cache.hit:
        headers["x-ember-cache"] = "hit"
    return headers


def require_admin_key(request: Request) -> None:
    """The admin API (``/v1/ember/keys``) needs the ``admin_key`` setting's key."""
    admin = request.app.state.services.settings.admin_key
    token = bearer_token(request)
    if admin is None:
        raise AuthenticationError(
            "The admin API is off: set `admin_key` (EMBER_ADMIN_KEY) to use it.",
            code="admin_api_disabled",
        )
    if token is None or not hmac.compare_digest(token.encode(), admin.get_secret_value().encode()):
        raise AuthenticationError("Incorrect admin key provided.")


def current_caller(request: Request) -> Caller:
    """``Depends(current_caller)``: who is asking, for routers that take no JSON body."""
    return caller(request)
