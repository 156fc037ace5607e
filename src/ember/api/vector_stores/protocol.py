"""Wire models of ``/v1/vector_stores`` requests (the spec's ``Create*Request`` shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ember.api.wire import WireModel


class _Request(WireModel):
    model_config = ConfigDict(extra="ignore")


class CreateVectorStoreRequest(_Request):
    name: str | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    metadata: dict[str, str] | None = None
    chunking_strategy: dict[str, Any] | None = None
    expires_after: dict[str, Any] | None = None
    description: str | None = None


class UpdateVectorStoreRequest(_Request):
    name: str | None = None
    metadata: dict[str, str] | None = None
    expires_after: dict[str, Any] | None = None


class CreateVectorStoreFileRequest(_Request):
    file_id: str
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class UpdateVectorStoreFileRequest(_Request):
    attributes: dict[str, Any] | None


class CreateFileBatchRequest(_Request):
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    files: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    attributes: dict[str, Any] | None = None
    chunking_strategy: dict[str, Any] | None = None


class RankingOptions(_Request):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class EmberSearchOptions(WireModel):
    model_config = ConfigDict(extra="forbid")

    retrieval: Literal["hybrid", "vector", "bm25"] = Field(
        default="hybrid", description="Which retrievers run: both fused (default) or one."
    )


class SearchRequest(_Request):
    query: str | list[str]
    rewrite_query: bool = False
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None
    ember: EmberSearchOptions | None = None
