"""Tools: the registry, and ``file_search`` finding a passage through the real retriever over
a real store (vectors from a bag-of-words hash, so no embedding model is loaded)."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ember.act.tools import Passage, ToolContext, get_tool, registered_tools
from ember.errors import InvalidRequestError
from ember.ground.lexical import terms
from ember.ground.retrieval import Retriever
from ember.store import Store
from ember.store.chunks import NewChunk

DIM = 64
PASSAGES = [
    "The warranty covers the pump for three years from the date of purchase.",
    "Return the form to the office on the second floor before Friday.",
    "Ember keeps every uploaded file under the files folder of its home.",
    "The cafeteria serves lunch from noon until two in the afternoon.",
]


def embed(text: str) -> np.ndarray:
    """A unit bag-of-words vector: texts sharing words point the same way."""
    vector = np.zeros(DIM, dtype=np.float32)
    for term in terms(text):
        vector[zlib.crc32(term.encode()) % DIM] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = Store(tmp_path / "ember.db")
    store.vectors.create_store(
        {"id": "vs_docs", "name": "docs", "created_at": 0, "last_active_at": 0, "expires_at": None}
    )
    store.vectors.add_file(
        {
            "vector_store_id": "vs_docs",
            "file_id": "file-handbook",
            "batch_id": None,
            "created_at": int(time.time()),
            "attributes": {},
            "chunking": {"type": "static"},
        }
    )
    chunks = [
        NewChunk(i, text, 1, None, 20, " ".join(terms(text)), f"handbook-{i}")
        for i, text in enumerate(PASSAGES)
    ]
    vectors = np.stack([embed(text) for text in PASSAGES])
    assert store.chunks.insert_chunks("vs_docs", "file-handbook", chunks, vectors)
    store.vectors.finish_file("vs_docs", "file-handbook", "completed")
    yield store
    store.close()


def context_for(store: Any) -> ToolContext:
    retriever = Retriever(store.chunks, vector_index="exact")

    async def search(store_ids: Sequence[str], query: str, *, k: int) -> Sequence[Passage]:
        return await asyncio.to_thread(retriever.search, list(store_ids), query, embed(query), k=k)

    return ToolContext(vector_store_ids=("vs_docs",), search=search)


def test_file_search_finds_the_passage(store: Any) -> None:
    tool = get_tool("file_search")
    result = asyncio.run(
        tool.call(
            {"query": "How long is the pump warranty?", "max_num_results": 2}, context_for(store)
        )
    )
    found = json.loads(result)
    assert len(found) <= 2
    assert found[0]["text"] == PASSAGES[0]
    assert found[0]["file_id"] == "file-handbook" and found[0]["page"] == 1
    assert 0 < found[0]["score"] <= 1


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({}, "query"),
        ({"query": "  "}, "query"),
        ({"query": "pump", "max_num_results": 0}, "max_num_results"),
        ({"query": "pump", "max_num_results": True}, "max_num_results"),
        ({"query": "pump", "max_num_results": 51}, "max_num_results"),
    ],
)
def test_file_search_refuses_bad_arguments(
    store: Any, arguments: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(get_tool("file_search").call(arguments, context_for(store)))
    assert caught.value.param == param


def test_file_search_needs_vector_stores() -> None:
    with pytest.raises(InvalidRequestError, match="vector stores"):
        asyncio.run(get_tool("file_search").call({"query": "pump"}, ToolContext()))


def test_the_registry() -> None:
    tool = get_tool("file_search")
    assert tool in registered_tools()
    assert tool.parameters["required"] == ["query"]
    with pytest.raises(InvalidRequestError, match=r"Unknown tool 'nope'; known: .*file_search"):
        get_tool("nope")
