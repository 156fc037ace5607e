"""The default embedder, as grounding sees it: token counts and passage/query vectors.

Wraps the loaded embedding engine (``default_embedding_model``, multilingual-e5-small by
default). E5 expects ``"passage: "`` before documents and ``"query: "`` before questions;
the engine adds them from ``input_type``. Calls hold the engine's lock, so ingestion and
``/v1/embeddings`` take turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ember.engines.base import EmbeddingEngine
from ember.engines.manager import ModelManager
from ember.models.registry import ModelRegistry


class Embedder:
    def __init__(self, engine: EmbeddingEngine, model: str) -> None:
        self.engine = engine
        self.model = model

    @property
    def dimensions(self) -> int:
        return self.engine.dimensions

    @property
    def max_tokens(self) -> int:
        return self.engine.max_input_tokens

    def count_tokens(self, text: str) -> int:
        with self.engine.lock:
            return self.engine.count_tokens(text)

    def embed(self, texts: Sequence[str], input_type: Literal["query", "passage"]) -> np.ndarray:
        with self.engine.lock:
            vectors = self.engine.embed(list(texts), input_type=input_type)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimensions)


async def load_embedder(registry: ModelRegistry, manager: ModelManager, model: str) -> Embedder:
    spec = registry.resolve(model)
    engine = await manager.get(spec)
    assert isinstance(engine, EmbeddingEngine)
    return Embedder(engine, spec.id)
