"""OpenAPI links: how an id a create operation returns feeds the operations on that resource.

``POST /v1/files`` answers with ``{"id": ...}``, which ``GET /v1/files/{file_id}``, its
``/content`` and ``DELETE`` take; the same holds for vector stores and their files and
batches, responses, fine-tuning and synthetic-data jobs. The links say so in
``/openapi.json``, so a client generator, and schemathesis's stateful phase, can chain the
calls. They are derived from the paths (a ``POST`` on ``P`` links to every operation under
``P/{param}``), so a new resource gets its links without a table to keep.
"""

from __future__ import annotations

import re
from typing import Any

_PARAM = re.compile(r"^\{(\w+)\}$")


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the links to ``schema`` (an OpenAPI document) in place; returns it."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for source, operations in paths.items():
        create = operations.get("post")
        if create is None:
            continue
        links: dict[str, Any] = {}
        for target, target_ops in paths.items():
            rest = target[len(source) :].split("/") if target.startswith(source + "/") else []
            if len(rest) < 2 or not _PARAM.match(rest[1]):
                continue
            new_param = _PARAM.match(rest[1]).group(1)  # type: ignore[union-attr]
            known = {new_param, *re.findall(r"\{(\w+)\}", source)}
            if not set(re.findall(r"\{(\w+)\}", target)) <= known:
                continue  # a deeper resource needs an id this response does not give
            for method, operation in target_ops.items():
                parameters = {new_param: "$response.body#/id"}
                for name in re.findall(r"\{(\w+)\}", source):
                    parameters[name] = f"$request.path.{name}"
                links[f"{operation['operationId']}"] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "description": f"{method.upper()} {target} with the created id",
                }
        if links:
            response = create.setdefault("responses", {}).setdefault(
                "200", {"description": "Successful Response"}
            )
            response["links"] = links
    return schema
