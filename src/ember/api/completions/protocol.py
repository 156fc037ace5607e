"""Wire model of ``POST /v1/completions``."""

from __future__ import annotations

from pydantic import Field

from ember.api.chat.protocol import StreamOptions
from ember.api.sampling import SamplingFields
from ember.errors import InvalidRequestError, UnsupportedParameterError


class CompletionRequest(SamplingFields):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    best_of: int | None = Field(default=None, ge=1, le=8)
    suffix: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    def prompts(self) -> list[str]:
        if self.suffix:
            raise UnsupportedParameterError(
                "suffix (fill-in-the-middle) is not supported.", param="suffix"
            )
        if self.best_of is not None and self.best_of != (self.n or 1):
            raise UnsupportedParameterError("best_of must equal n.", param="best_of")
        if isinstance(self.prompt, str):
            return [self.prompt]
        if self.prompt and all(isinstance(p, str) for p in self.prompt):
            return [str(p) for p in self.prompt]
        if not self.prompt:
            raise InvalidRequestError("prompt must not be empty.", param="prompt")
        raise UnsupportedParameterError(
            "Token-id prompts are not supported; send the prompt as text.", param="prompt"
        )
