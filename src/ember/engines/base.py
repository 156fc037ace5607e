"""The engine interface every inference backend implements.

An engine wraps one loaded model. Chat/completion engines turn a prompt string into a stream
of :class:`GenerationChunk`; embedding engines turn texts into vectors. What an engine can do
is data (:class:`EngineCapabilities`), so callers check flags, never class names.

Engines are synchronous and not thread-safe: the caller (``ember.engines.manager``) runs them
in a worker thread and serialises access with the engine's ``lock``. Generation stops early
when the caller sets the ``cancel`` event (a client disconnected) or closes the iterator.

Engines register a factory with :func:`register_engine` (in :data:`ENGINES`); the model
manager picks the factory by the model's ``engine`` name, so adding an engine is adding a
module: a built-in one listed in ``ember.plugins``, or a plugin package's.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from ember.core.chat_template import ChatTemplate
from ember.core.types import GenerationChunk, OutputConstraint, SamplingParams
from ember.plugins import PluginRegistry

if TYPE_CHECKING:
    from ember.models.spec import ModelSpec
    from ember.settings import Settings


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine (with this model) can do."""

    chat: bool = False
    completion: bool = False
    embeddings: bool = False
    streaming: bool = False
    json_schema: bool = False
    tools: bool = False
    logprobs: bool = False
    seed: bool = False
    lora: bool = False


@dataclass(frozen=True)
class BatchStats:
    """A snapshot of a batching engine's scheduler, for ``/metrics``."""

    queued: int
    active: int
    max_active: int
    steps: int
    step_size_buckets: tuple[int, ...]  # upper bounds: sequences advanced in one step
    step_size_counts: tuple[int, ...]  # per bucket, plus one for larger steps
    step_size_sum: int
    generated_tokens: int
    prompt_tokens_read: int
    tokens_per_second: float  # generated, over the last few seconds
    cache_lookups: int
    cache_hits: int
    cache_reused_tokens: int
    cache_tokens: int


class Engine(ABC):
    """A loaded model. Subclasses say what they can do through ``capabilities``."""

    capabilities: EngineCapabilities

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @property
    @abstractmethod
    def memory_bytes(self) -> int:
        """Approximate resident size, used by the manager's memory budget."""

    @property
    def pid(self) -> int | None:
        """The process this engine runs in, when it has one of its own (``engine_process``)."""
        return None

    @property
    def alive(self) -> bool:
        """False once the engine's process has died (``engine_process``): reload it."""
        return True

    @property
    def busy(self) -> bool:
        """A generation is running (the manager does not evict busy engines)."""
        return self.lock.locked()

    def close(self) -> None:  # noqa: B027 - optional hook, most engines free on GC
        """Free native resources now rather than at garbage collection."""


class TextEngine(Engine):
    """An engine that generates text from a prompt.

    A ``batching`` engine schedules concurrent requests itself: callers hand it requests with
    :meth:`submit` (no lock, no thread of their own) and it streams chunks back through
    ``emit``; :meth:`generate` is then a convenience on top of ``submit``.
    """

    batching: ClassVar[bool] = False

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Tokens the model can attend to: prompt plus output."""

    @property
    @abstractmethod
    def chat_template(self) -> ChatTemplate:
        """The model's chat template (ChatML when the model has none)."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of a rendered prompt (special tokens in the text are parsed)."""

    def output_budget(self, prompt_tokens: Sequence[int], params: SamplingParams) -> int:
        """How many tokens this prompt leaves for output; refuses empty or too-long prompts."""
        from ember.errors import ContextLengthExceededError, InvalidRequestError

        if not prompt_tokens:
            raise InvalidRequestError("The prompt is empty.", param="messages")
        room = self.context_length - len(prompt_tokens)
        if room <= 0:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {self.context_length} tokens, "
                f"but the prompt has {len(prompt_tokens)} tokens.",
                param="messages",
            )
        return room if params.max_tokens is None else min(params.max_tokens, room)

    @abstractmethod
    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        """Yield text as it is generated; the last chunk carries ``finish_reason``.

        The engine stops at the end-of-generation token, at ``params.max_tokens``, when the
        grammar of ``constraint`` is complete, or when ``cancel`` is set (finish reason
        ``cancelled``). Stop strings are applied by the caller, which closes the iterator.
        """

    def submit(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None,
        cancel: threading.Event,
        emit: Callable[[GenerationChunk | BaseException], None],
    ) -> None:
        """Queue a generation (``batching`` engines only); refusals raise here, at once.

        ``emit`` is called from the engine's thread with each chunk; the last one carries
        ``finish_reason``, or an exception arrives instead.
        """
        raise NotImplementedError(f"{type(self).__name__} does not batch requests.")

    def check_capacity(self) -> None:
        """Raise ``ServerOverloadedError`` when a new request would be refused right now."""

    def batch_stats(self) -> BatchStats | None:
        """The scheduler's state (``batching`` engines), or None."""
        return None


class EmbeddingEngine(Engine):
    """An engine that maps texts to fixed-size vectors."""

    @property
    @abstractmethod
    def dimensions(self) -> int:
        """Length of every vector this engine returns."""

    @property
    @abstractmethod
    def max_input_tokens(self) -> int:
        """Longest input (in tokens) the model reads; longer inputs are refused."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text``."""

    @abstractmethod
    def embed(
        self, texts: Sequence[str], *, input_type: Literal["query", "passage"] = "query"
    ) -> list[list[float]]:
        """One normalised vector per text."""


EngineFactory = Callable[["ModelSpec", "Settings"], Engine]
ENGINES: PluginRegistry[EngineFactory] = PluginRegistry("engine")


@dataclass(frozen=True)
class EngineTraits:
    """What an engine offers for its models before any is loaded (capabilities of a loaded
    model are :class:`EngineCapabilities`)."""

    fine_tuning: bool = False  # its models' weights can be LoRA-trained (``ember.adapt``)


_TRAITS: dict[str, EngineTraits] = {}


def register_engine(
    name: str, *, fine_tuning: bool = False
) -> Callable[[EngineFactory], EngineFactory]:
    """Decorator: make ``factory`` the loader for models whose ``engine`` is ``name``."""

    def decorate(factory: EngineFactory) -> EngineFactory:
        registered = ENGINES.add(name, factory)
        _TRAITS[name] = EngineTraits(fine_tuning=fine_tuning)
        return registered

    return decorate


def engine_traits(name: str) -> EngineTraits:
    """The traits ``name`` registered with (none for an engine that is not installed)."""
    if ENGINES.get(name) is None:  # loads the plugins first
        return EngineTraits()
    return _TRAITS.get(name, EngineTraits())


def engine_factory(name: str) -> EngineFactory:
    try:
        return ENGINES[name]
    except KeyError:
        from ember.errors import ModelLoadError

        raise ModelLoadError(
            f"No engine named '{name}' is installed (known: {', '.join(sorted(ENGINES))}; "
            "`ember plugins` lists what is installed)."
        ) from None


def registered_engines() -> list[str]:
    return sorted(ENGINES)
