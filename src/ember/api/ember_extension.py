"""The ``ember`` object of a request: Ember's extensions to OpenAI's request bodies.

Clients send it where OpenAI's SDKs let them add fields (``extra_body={"ember": {...}}``):

* ``cache``: opt a chat request into the semantic cache (``/v1/chat/completions``).
* ``vector_store_ids``, ``max_num_results``, ``filters``: answer a chat request from these
  vector stores, grounded and cited (``/v1/responses`` takes them as a ``file_search``
  tool instead).
* ``mode`` (``generative`` or ``extractive``: quote the sources only) and ``self_check``
  (ask the model whether its answer follows from the cited source): how a grounded answer
  is made, on both endpoints.

The answer's ``ember`` object (``abstained``, ``groundedness``, ``citations``, ...) is
:meth:`ember.ground.answer.GroundedAnswer.ember`. docs/API.md documents both.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ember.api.wire import WireModel
from ember.ground import filters as attribute_filters


class EmberOptions(WireModel):
    """What a request asks of Ember beyond OpenAI's fields; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    cache: bool | None = None
    vector_store_ids: list[str] | None = Field(default=None, min_length=1)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    filters: dict[str, Any] | None = None
    mode: Literal["generative", "extractive"] = "generative"
    self_check: bool | None = None

    def check_filters(self) -> None:
        """Refuse a malformed ``filters`` object, naming ``ember.filters``."""
        if self.filters is not None:
            attribute_filters.validate(self.filters, "ember.filters")


class FileSearchTool(WireModel):
    """``{"type": "file_search", ...}`` in ``/v1/responses``: a grounded answer from stores."""

    model_config = ConfigDict(extra="ignore")  # ranking_options: the reranker is configured

    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1)
    filters: dict[str, Any] | None = None
    max_num_results: int | None = Field(default=None, ge=1, le=50)

    def check_filters(self, index: int) -> None:
        if self.filters is not None:
            attribute_filters.validate(self.filters, f"tools[{index}].filters")

    def echo(self) -> dict[str, Any]:
        """The tool as the ``response`` object repeats it."""
        return self.model_dump(exclude_none=True)
