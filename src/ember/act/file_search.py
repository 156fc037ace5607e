"""``file_search``: the model searches the vector stores its request attached.

A thin adapter over the hybrid retrieval of ``ember.ground.retrieval``, reached through the
``search`` function of the call's :class:`~ember.act.tools.ToolContext` (the caller passes
``VectorStoreService.retrieve``). The result is a JSON list of passages, best first, each
with its file, page and cosine score, for the model to read and cite.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ember.act.tools import ToolContext, register_tool
from ember.errors import InvalidRequestError

MAX_RESULTS = 50
DEFAULT_RESULTS = 5


class FileSearchTool:
    """Searches the attached vector stores for passages relevant to a query."""

    name = "file_search"
    description = (
        "Search the attached documents for passages relevant to a query. "
        "Returns the best passages with their file names and pages."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "max_num_results": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_RESULTS,
                "description": "How many passages to return.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequestError("file_search needs a non-empty query.", param="query")
        k = arguments.get("max_num_results", DEFAULT_RESULTS)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_RESULTS:
            raise InvalidRequestError(
                f"max_num_results must be an integer from 1 to {MAX_RESULTS}.",
                param="max_num_results",
            )
        if context.search is None or not context.vector_store_ids:
            raise InvalidRequestError(
                "file_search needs vector stores to search (vector_store_ids).",
                param="vector_store_ids",
            )
        hits = await context.search(context.vector_store_ids, query, k=k)
        return json.dumps(
            [
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "page": hit.page,
                    "score": round(hit.score, 4),
                    "text": hit.text,
                }
                for hit in hits
            ],
            ensure_ascii=False,
        )


register_tool(FileSearchTool())
