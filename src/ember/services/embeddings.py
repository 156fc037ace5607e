"""The embeddings use case: texts in, vectors and token counts out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ember.core.request_context import RequestContext
from ember.engines.base import EmbeddingEngine
from ember.engines.manager import ModelManager
from ember.errors import ContextLengthExceededError, InvalidRequestError
from ember.models.registry import ModelRegistry
from ember.services.pipeline import Pipeline


@dataclass
class EmbeddingResult:
    model: str
    vectors: list[list[float]]
    prompt_tokens: int


class EmbeddingService:
    def __init__(self, registry: ModelRegistry, manager: ModelManager, pipeline: Pipeline):
        self.registry = registry
        self.manager = manager
        self.pipeline = pipeline

    async def embed(
        self,
        model: str,
        texts: Sequence[str],
        *,
        input_type: Literal["query", "passage"] = "query",
        dimensions: int | None = None,
    ) -> EmbeddingResult:
        spec = self.registry.resolve(model)
        if spec.kind != "embedding":
            raise InvalidRequestError(
                f"The model '{model}' is not an embedding model; use one of the embedding "
                "models listed by GET /v1/models (e.g. 'default-embedding').",
                param="model",
                code="model_not_supported",
            )
        engine = await self.manager.get(spec)
        assert isinstance(engine, EmbeddingEngine)
        if dimensions is not None and dimensions != engine.dimensions:
            raise InvalidRequestError(
                f"The model '{spec.id}' returns {engine.dimensions} dimensions and cannot "
                f"shorten them to {dimensions}.",
                param="dimensions",
            )
        ctx = RequestContext(endpoint="embeddings", model=spec.id)
        await self.pipeline.on_request(ctx)

        def work() -> tuple[list[list[float]], int]:
            with engine.lock:
                counts = [engine.count_tokens(text) for text in texts]
                for position, count in enumerate(counts):
                    if count > engine.max_input_tokens:
                        raise ContextLengthExceededError(
                            f"Input {position} has {count} tokens; the model '{spec.id}' "
                            f"reads at most {engine.max_input_tokens}.",
                            param="input",
                        )
                return engine.embed(texts, input_type=input_type), sum(counts)

        try:
            vectors, tokens = await asyncio.to_thread(work)
        except BaseException:
            ctx.status = "error"
            await self.pipeline.on_complete(ctx)
            raise
        ctx.usage.prompt_tokens = tokens
        await self.pipeline.on_complete(ctx)
        return EmbeddingResult(model=spec.id, vectors=vectors, prompt_tokens=tokens)
