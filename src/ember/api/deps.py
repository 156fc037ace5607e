"""FastAPI dependencies: the app's services and API-key authentication."""

from __future__ import annotations

import hmac

from fastapi import Request

from ember.errors import AuthenticationError
from ember.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def require_api_key(request: Request) -> None:
    """When keys are configured, the request must carry one as a bearer token."""
    keys = request.app.state.services.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
            code="missing_api_key",
        )
    supplied = token.strip().encode()
    if not any(hmac.compare_digest(supplied, key.get_secret_value().encode()) for key in keys):
        raise AuthenticationError("Incorrect API key provided.")
