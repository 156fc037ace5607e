"""Serves the console: ``/`` is its page, ``/console/<name>`` its assets (HTML, CSS, JS modules).

The console is a pure client of Ember's public API (``/v1/...``, ``/v1/ember/...``) from the
same origin: no build step, no request to any other host. The assets ship inside the package
(``[tool.setuptools.package-data]``) and are read once at import. Only files that exist in
``static/`` are served, by exact name, so no path reaches outside it. The content security
policy allows this origin only, which also keeps any markup that slipped into the page inert.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from ember.errors import NotFoundError

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # The assets are small; revalidating keeps a new install's console in step with its API.
    "cache-control": "no-cache",
}


def _load_assets() -> dict[str, tuple[bytes, str]]:
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in files(__package__ or "ember.api.console").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in MEDIA_TYPES:
            assets[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return assets


ASSETS = _load_assets()


def _asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise NotFoundError(f"No console asset named {name!r}.")
    body, media_type = found
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/")
async def console_page() -> Response:
    return _asset("index.html")


@router.get("/console/{name}")
async def console_asset(name: str) -> Response:
    return _asset(name)
