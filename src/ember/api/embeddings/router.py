"""``POST /v1/embeddings``: float or base64 vectors, one or many inputs."""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends
from openai.types import CreateEmbeddingResponse
from pydantic import ConfigDict, Field

from ember.api.deps import get_services
from ember.api.wire import WireModel
from ember.errors import InvalidRequestError, UnsupportedParameterError
from ember.services.container import Services

router = APIRouter()

MAX_INPUTS = 2048


class EmberEmbeddingOptions(WireModel):
    input_type: Literal["query", "passage"] = Field(
        default="query",
        description="E5-style models embed queries and passages with different prefixes.",
    )


class EmbeddingRequest(WireModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    ember: EmberEmbeddingOptions | None = None

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            texts = [self.input]
        elif all(isinstance(item, str) for item in self.input):
            texts = [str(item) for item in self.input]
        else:
            raise UnsupportedParameterError(
                "Token-id inputs are not supported; send the input as text.", param="input"
            )
        if not texts:
            raise InvalidRequestError("input must not be empty.", param="input")
        if len(texts) > MAX_INPUTS:
            raise InvalidRequestError(f"At most {MAX_INPUTS} inputs per request.", param="input")
        if any(not text for text in texts):
            raise InvalidRequestError("input must not contain empty strings.", param="input")
        return texts


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


@router.post("/v1/embeddings")
async def create_embeddings(
    body: EmbeddingRequest, services: Services = Depends(get_services)
) -> dict[str, Any]:
    result = await services.embeddings.embed(
        body.model,
        body.texts(),
        input_type=body.ember.input_type if body.ember else "query",
        dimensions=body.dimensions,
    )
    response = {
        "object": "list",
        "model": result.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(result.vectors)
        ],
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
    if body.encoding_format == "float":
        CreateEmbeddingResponse.model_validate(response)
    return response
