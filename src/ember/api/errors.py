"""The one place where errors become HTTP responses.

``error_response`` turns any ``EmberError`` into ``{"error": {...}}`` with its status, and
``sse_error_frame`` is its twin for a stream that has already started. Everything else a
client can cause (bad JSON, a failed validation, an unknown route) is translated into an
``EmberError`` first; an unexpected exception becomes a generic 500 whose body says nothing
about the internals (the traceback goes to the server log only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ember.api.sse import data_frame
from ember.errors import (
    AuthenticationError,
    EmberError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from ember.store.writer import database_locked, database_unreachable

logger = logging.getLogger(__name__)


def error_body(exc: EmberError) -> dict[str, Any]:
    return {"error": exc.to_dict()}


def error_response(exc: EmberError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=exc.headers)


def sse_error_frame(exc: BaseException) -> str:
    """An SSE ``data:`` frame carrying the error, for failures after the first byte."""
    ember = exc if isinstance(exc, EmberError) else EmberError("The server failed while streaming.")
    return data_frame(error_body(ember))


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "tuple", "literal"}


def _is_union_member(part: str) -> bool:
    return part in _TYPE_TAGS or part[:1].isupper() or "[" in part or "-" in part


def _param_name(loc: Sequence[Any]) -> str | None:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    # pydantic puts union members into loc ("str", "list[...]", "TextPart",
    # "function-after[...]"): they are not parameter names, drop them.
    parts = [p for p in parts if not (isinstance(p, str) and _is_union_member(p))]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def validation_error(exc: RequestValidationError) -> InvalidRequestError:
    errors = exc.errors()
    if not errors:
        return InvalidRequestError("The request is invalid.")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidRequestError(
            "The request body is not valid JSON.", param=None, code="invalid_json"
        )
    param = _param_name(first.get("loc", ()))
    if param is None and first.get("type") in ("model_attributes_type", "dict_type"):
        return InvalidRequestError(
            "The request body must be a JSON object (send Content-Type: application/json).",
            code="invalid_json",
        )
    message = str(first.get("msg", "Invalid value."))
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'."
        return InvalidRequestError(message, param=param, code="missing_required_parameter")
    where = f" for '{param}'" if param else ""
    return InvalidRequestError(f"Invalid value{where}: {message}", param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EmberError)
    async def _ember(_request: Request, exc: EmberError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        ember: EmberError
        if exc.status_code == 404:
            ember = NotFoundError(f"Unknown path: {request.method} {request.url.path}")
        elif exc.status_code == 405:
            ember = InvalidRequestError(
                f"Method {request.method} is not allowed on {request.url.path}.",
                code="method_not_allowed",
            )
            return JSONResponse(error_body(ember), status_code=405)
        elif exc.status_code == 401:
            ember = AuthenticationError(str(exc.detail))
        elif exc.status_code == 413:
            ember = PayloadTooLargeError(str(exc.detail))
        elif exc.status_code < 500:
            ember = InvalidRequestError(str(exc.detail))
            return JSONResponse(error_body(ember), status_code=exc.status_code)
        else:
            ember = EmberError("The server failed to handle the request.")
        return error_response(ember)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        if database_locked(exc):  # another process holds the database: try again shortly
            logger.warning("database locked on %s %s", request.method, request.url.path)
            return error_response(
                ServiceUnavailableError(
                    "The database is locked by another process; nothing was changed. "
                    "Try again shortly.",
                    code="database_locked",
                    headers={"Retry-After": "2"},
                )
            )
        if database_unreachable(exc):  # PostgreSQL away: the pool reconnects when it is back
            logger.warning("database unreachable on %s %s", request.method, request.url.path)
            return error_response(
                ServiceUnavailableError(
                    "The database cannot be reached; nothing was changed. Try again shortly.",
                    code="database_unavailable",
                    headers={"Retry-After": "5"},
                )
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(EmberError("The server failed to handle the request."))
