"""The FastAPI app factory: ``create_app(settings)``.

Services are built in the lifespan and kept on ``app.state.services``; nothing is global, so
tests build as many apps as they like. Every ``/v1`` route requires an API key when keys are
configured. Bodies over ``max_request_bytes`` are refused with 413 before they are read
whole.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ember import __version__
from ember.api.audit.router import router as audit_router
from ember.api.chat.router import router as chat_router
from ember.api.completions.router import router as completions_router
from ember.api.console.router import router as console_router
from ember.api.conversations.router import router as conversations_router
from ember.api.deps import require_api_key
from ember.api.embeddings.router import router as embeddings_router
from ember.api.errors import error_body, install_error_handlers
from ember.api.files.router import router as files_router
from ember.api.fine_tuning.router import router as fine_tuning_router
from ember.api.guard.router import router as guard_router
from ember.api.keys.router import admin as keys_admin_router
from ember.api.keys.router import usage_router
from ember.api.models.pulls import router as pulls_router
from ember.api.models.router import router as models_router
from ember.api.moderations.router import router as moderations_router
from ember.api.openapi_links import add_links
from ember.api.responses.router import router as responses_router
from ember.api.synth.router import router as synth_router
from ember.api.vector_stores.router import router as vector_stores_router
from ember.errors import PayloadTooLargeError, ServiceUnavailableError
from ember.services.container import Services
from ember.settings import Settings

logger = logging.getLogger(__name__)


class BodySizeLimit:
    """Refuses bodies larger than ``limit`` bytes with 413, declared or streamed.

    ``path_limits`` gives particular paths (file uploads) their own limit.
    """

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None):
        self.app = app
        self.limit = limit
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.limit)
        too_large = PayloadTooLargeError(
            f"The request body is larger than the limit of {limit} bytes."
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await JSONResponse(error_body(too_large), status_code=413)(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI turns foreign errors while reading the body into 400; an
                    # HTTPException passes through and the handler maps it to our 413.
                    raise HTTPException(status_code=413, detail=too_large.message)
            return message

        await self.app(scope, limited_receive, send)


class RequestMetrics:
    """Counts requests by route and status and times them to the response's first byte.

    A plain ASGI middleware: ``BaseHTTPMiddleware`` would add a task and a memory stream
    between the app and the server for every streamed chunk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self._record(scope, status, time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, observe_send)

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        state = getattr(scope.get("app"), "state", None)
        services = getattr(state, "services", None)
        if services is None:
            return
        route = getattr(scope.get("route"), "path", "unmatched")
        services.metrics.http_requests.labels(scope["method"], route, str(status)).inc()
        services.metrics.http_latency.labels(route).observe(seconds)


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the Ember HTTP app. Pass ``services`` to share already-built ones."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or Services.build(settings)
        app.state.services = built
        for name in settings.preload:
            spec = built.registry.resolve(name)
            logger.info("preloading %s", spec.id)
            await built.manager.get(spec)
        # The guard's NLP models (spaCy, jieba) load on first use; `guard_nlp_load` says
        # whether to load them now, in the background, or leave them to the first request.
        warm_up = asyncio.to_thread(built.analyzer.analyze, "Warm-up: Ada Lovelace 张伟")
        if settings.guard_nlp_load == "startup":
            await warm_up
        elif settings.guard_nlp_load == "background":
            app.state.guard_warm_up = asyncio.ensure_future(warm_up)
        else:
            warm_up.close()
        built.metrics.models_loaded.set(len(built.manager.loaded()))
        # Vector stores' search indexes (BM25, dense; HNSW graphs for big stores) are built
        # now, off the request path, rather than by each store's first search.
        threading.Thread(
            target=built.vector_stores.retriever.warm, name="retriever-warm", daemon=True
        ).start()
        built.leases.start()  # renews this replica's claims on background jobs
        built.ingestion.start()  # resumes files left in progress by an earlier run
        built.fine_tuning.start()  # resumes a job a previous server was running
        built.synth.start()  # resumes synthetic-data jobs left unfinished
        built.background.recover()  # background responses of a stopped server fail
        built.background.watch()
        built.router.start()  # active health checks of the providers that ask for them
        app.state.draining = False
        try:
            yield
        finally:
            app.state.draining = True  # /readyz says 503 while the rest shuts down
            await built.close()

    app = FastAPI(
        title="Ember",
        version=__version__,
        summary="Local open models behind the OpenAI API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    plain_openapi = app.openapi
    app.openapi = lambda: add_links(plain_openapi())  # type: ignore[method-assign]

    # An upload carries the file plus a little multipart framing.
    upload_limit = max(settings.max_request_bytes, settings.max_file_bytes + 64 * 1024)
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_request_bytes,
        path_limits={"/v1/files": upload_limit},
    )
    app.add_middleware(RequestMetrics)

    secured = [Depends(require_api_key)]
    for router in (
        models_router,
        chat_router,
        completions_router,
        embeddings_router,
        responses_router,
        conversations_router,
        moderations_router,
        guard_router,
        files_router,
        vector_stores_router,
        fine_tuning_router,
        synth_router,
    ):
        app.include_router(router, dependencies=secured)
    app.include_router(keys_admin_router)  # its own dependency: the admin key
    app.include_router(usage_router)  # admin key: every key's usage; a key: its own
    app.include_router(audit_router)  # admin key: the audit chain's tail and verification
    app.include_router(pulls_router)  # admin key: model pulls from the hub, as jobs

    @app.get("/healthz", tags=["ember"])
    async def healthz(request: Request) -> dict[str, Any]:
        built: Services = request.app.state.services
        return {
            "status": "ok",
            "version": __version__,
            "models_loaded": [entry.spec.id for entry in built.manager.loaded()],
        }

    @app.get("/readyz", tags=["ember"])
    async def readyz(request: Request) -> JSONResponse:
        """For a load balancer: 200 when this replica can take requests (the database answers
        with every migration applied, the preloaded models are loaded, it is not stopping),
        else 503 in the OpenAI error shape, naming what is not ready."""
        built: Services = request.app.state.services
        loaded = {entry.spec.id for entry in built.manager.loaded()}
        checks: dict[str, str] = {}
        try:
            waiting = [
                name for name in settings.preload if built.registry.resolve(name).id not in loaded
            ]
            checks["models"] = "ok" if not waiting else f"loading {waiting}"
            missing = await asyncio.to_thread(built.store.pending_migrations)
            checks["database"] = "ok" if not missing else f"migrations not applied: {missing}"
        except SQLAlchemyError as exc:
            checks.setdefault("models", "unknown")
            checks["database"] = f"unreachable ({type(exc).__name__})"
        if getattr(request.app.state, "draining", False):
            checks["server"] = "stopping"
        problems = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        if not problems:
            return JSONResponse({"status": "ready", "checks": checks})
        error = ServiceUnavailableError("Not ready: " + "; ".join(problems) + ".", code="not_ready")
        return JSONResponse({**error_body(error), "checks": checks}, status_code=503)

    @app.get("/metrics", tags=["ember"])
    async def metrics(request: Request) -> Response:
        built: Services = request.app.state.services
        return Response(built.metrics.render(), media_type="text/plain; version=0.0.4")

    app.include_router(console_router)  # the web console: `/` and `/console/<asset>` only
    return app
