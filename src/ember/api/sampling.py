"""Sampling fields shared by the chat and completion wire models."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from ember.api.wire import WireModel
from ember.core.types import SamplingParams


class SamplingFields(WireModel):
    """OpenAI sampling parameters, plus llama.cpp-server style extensions."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=8)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Extensions (as llama.cpp's server and vLLM accept them).
    top_k: int | None = Field(default=None, ge=0, description="Ember extension: top-k.")
    min_p: float | None = Field(default=None, ge=0, le=1, description="Ember extension.")
    repetition_penalty: float | None = Field(
        default=None, gt=0, le=2, description="Ember extension: llama.cpp repeat penalty."
    )

    @field_validator("logit_bias")
    @classmethod
    def _token_ids_and_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.strip().isdigit():
                raise ValueError(f"keys must be token ids (integers), not {key!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"biases must be between -100 and 100, not {bias}")
        return value

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def sampling_params(
        self, *, max_tokens: int | None, logprobs: bool = False, top_logprobs: int = 0
    ) -> SamplingParams:
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=self.top_k or 0,
            min_p=self.min_p or 0.0,
            seed=self.seed,
            stop=self.stop_list(),
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            repetition_penalty=self.repetition_penalty or 1.0,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            logit_bias=tuple(
                sorted((int(token), float(bias)) for token, bias in (self.logit_bias or {}).items())
            ),
        )
