"""A text engine with no model: deterministic replies for the fast test lane and for demos.

Registered as the ``fake`` engine through the same registry as llama.cpp, so everything
above the engine (the API, the guard, routing, streaming, usage, the engine process) runs
for real, in the spirit of httpx's ``MockTransport``. Declare one in ``ember.toml``::

    [models.echo]
    path = "echo"        # not read
    engine = "fake"

Tokens are UTF-8 bytes. The reply repeats the last user message of a ChatML prompt (or the
whole prompt of a completion) as ``You said: ...``, one byte per token, honouring
``max_tokens`` and cancellation. A user message that is exactly ``/segfault`` makes the
engine's process die the way native code does (a null read), to exercise crash isolation.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ember.core.chat_template import ChatTemplate
from ember.core.types import GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import EngineCapabilities, TextEngine, register_engine
from ember.errors import UnsupportedParameterError

if TYPE_CHECKING:
    from ember.models.spec import ModelSpec
    from ember.settings import Settings

CRASH_COMMAND = "/segfault"
_USER_TURN = "<|im_start|>user\n"
_END_TURN = "<|im_end|>"


def scripted_reply(prompt: str) -> str:
    """What the fake model answers to ``prompt``."""
    start = prompt.rfind(_USER_TURN)
    if start < 0:
        return f"You said: {prompt.strip()}"
    said = prompt[start + len(_USER_TURN) :].split(_END_TURN, 1)[0]
    return f"You said: {said.strip()}"


class FakeEngine(TextEngine):
    """Replies ``You said: ...``; see the module docstring."""

    capabilities = EngineCapabilities(chat=True, completion=True, streaming=True, seed=True)

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self._context_length = spec.context_length or 4096
        self._template = ChatTemplate(None)

    @property
    def memory_bytes(self) -> int:
        return 0

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        if constraint is not None:
            raise UnsupportedParameterError(
                "The fake engine does not constrain output.", param="response_format"
            )
        limit = self.output_budget(prompt_tokens, params)
        reply = scripted_reply(bytes(prompt_tokens).decode(errors="replace"))
        if reply == f"You said: {CRASH_COMMAND}":
            ctypes.string_at(0)  # a real segmentation fault, as a native library would have
        return self._stream(reply.encode(), limit, cancel)

    @staticmethod
    def _stream(
        reply: bytes, limit: int, cancel: threading.Event | None
    ) -> Iterator[GenerationChunk]:
        pending = b""
        for count, byte in enumerate(reply):
            if count >= limit:
                yield GenerationChunk(text=pending.decode(errors="replace"), finish_reason="length")
                return
            if cancel is not None and cancel.is_set():
                yield GenerationChunk(finish_reason="cancelled")
                return
            pending += bytes([byte])
            try:
                text = pending.decode()
            except UnicodeDecodeError:
                yield GenerationChunk(tokens=1)  # part of a character: wait for the rest
                continue
            pending = b""
            yield GenerationChunk(text=text, tokens=1)
        yield GenerationChunk(text=pending.decode(errors="replace"), finish_reason="stop")


@register_engine("fake")
def load_fake_engine(spec: ModelSpec, settings: Settings) -> FakeEngine:
    del settings
    return FakeEngine(spec)
