"""The llama.cpp engine: GGUF models through llama-cpp-python's low-level API.

The engine loads the model and one llama.cpp context with several sequences; a
:class:`~ember.engines.llamacpp_batch.BatchScheduler` thread decodes every running request in
one ``llama_decode`` per step (continuous batching) and keeps finished requests' KV cells as a
prefix cache, so multi-turn chat re-reads only the new turn. Sampling runs through llama.cpp's
own sampler chain, one per request (penalties, top-k, top-p, min-p, temperature, seeded
distribution); for constrained output the llguidance mask is written straight into the
context's logits buffer before the chain samples from it.
"""

from __future__ import annotations

import ctypes
import math
import os
import queue
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.core.chat_template import ChatTemplate
from ember.core.types import (
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    TopLogprob,
)
from ember.engines.base import (
    BatchStats,
    Engine,
    EngineCapabilities,
    TextEngine,
    register_engine,
)
from ember.engines.llamacpp_batch import BatchScheduler, SequenceRequest, TokenTools
from ember.errors import ModelLoadError

if TYPE_CHECKING:
    import llguidance

    from ember.models.spec import ModelSpec
    from ember.settings import Settings

_PENALTY_LAST_N = 64
_N_BATCH = 512
_backend_ready = False


class LlamaCppEngine(TextEngine, TokenTools):
    """One GGUF model, its llama.cpp context and the scheduler that batches its requests."""

    batching = True

    capabilities = EngineCapabilities(
        chat=True,
        completion=True,
        streaming=True,
        json_schema=True,
        tools=True,
        logprobs=True,
        seed=True,
    )

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_threads: int,
        max_active: int = 8,
        max_queued: int = 16,
        prefill_chunk: int = 128,
        prefix_cache_mb: int = 256,
    ) -> None:
        super().__init__()
        import llama_cpp
        from llama_cpp._internals import LlamaContext, LlamaModel
        from llama_cpp._logger import set_verbose

        global _backend_ready
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        set_verbose(False)
        self._llama_cpp = llama_cpp
        self._n_ctx = n_ctx
        try:
            self._model = LlamaModel(
                path_model=model_path, params=llama_cpp.llama_model_default_params(), verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load '{model_path}'.") from exc
        self._vocab = self._model.vocab
        self._n_vocab = self._model.n_vocab()
        self._file_bytes = os.path.getsize(model_path)
        # The cells every running sequence shares (kv_unified); the prefix cache lives in
        # host memory.
        self._pool_cells = n_ctx
        self._cache_bytes = prefix_cache_mb * 1024 * 1024
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self._pool_cells
        params.n_batch = _N_BATCH
        params.n_ubatch = _N_BATCH
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.n_seq_max = max_active
        params.kv_unified = True
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        try:
            self._context = LlamaContext(model=self._model, params=params, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            self._model.close()
            raise ModelLoadError(
                f"llama.cpp could not create a context for '{model_path}'."
            ) from exc
        metadata = self._model.metadata()
        self._template = ChatTemplate(
            metadata.get("tokenizer.chat_template"),
            bos_token=self._token_text(self._model.token_bos()),
            eos_token=self._token_text(self._model.token_eos()),
        )
        self._lltokenizer: llguidance.LLTokenizer | None = None
        self._lltokenizer_lock = threading.Lock()
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._piece_lock = threading.Lock()
        self._scheduler = BatchScheduler(
            llama_cpp=llama_cpp,
            ctx=self._context.ctx,
            n_vocab=self._n_vocab,
            tools=self,
            pool_cells=self._pool_cells,
            n_batch=_N_BATCH,
            max_active=max_active,
            max_queued=max_queued,
            prefill_chunk=prefill_chunk,
            cache_bytes=self._cache_bytes,
            name=os.path.basename(model_path),
        )

    def _kv_bytes_per_token(self) -> int:
        """K and V, f16, every layer: 2 x layers x kv width x 2 bytes."""
        model = self._model.model
        n_layer = self._llama_cpp.llama_model_n_layer(model)
        n_embd = self._llama_cpp.llama_model_n_embd(model)
        n_head = max(1, self._llama_cpp.llama_model_n_head(model))
        n_head_kv = self._llama_cpp.llama_model_n_head_kv(model) or n_head
        return max(1, 2 * n_layer * (n_embd * n_head_kv // n_head) * 2)

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (special tokens render as empty unless ``special``)."""
        with self._piece_lock:
            size = self._llama_cpp.llama_token_to_piece(
                self._vocab, token, self._piece_buffer, len(self._piece_buffer), 0, special
            )
            return self._piece_buffer.raw[: max(0, size)]

    def piece(self, token: int) -> bytes:
        return self._piece(token)

    def is_eog(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model.token_get_text(token)

    @property
    def memory_bytes(self) -> int:
        # Weights, the KV cells of the running requests, the prefix cache's snapshots.
        kv_cells = self._pool_cells * self._kv_bytes_per_token()
        return self._file_bytes + kv_cells + self._scheduler.cache_bytes

    @property
    def context_length(self) -> int:
        return self._n_ctx

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str) -> list[int]:
        # The rendered template already holds BOS where the model wants one.
        add_bos = bool(self._llama_cpp.llama_vocab_get_add_bos(self._vocab))
        bos = self._template.bos_token
        if add_bos and bos and text.startswith(bos):
            add_bos = False
        return self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _grammar_tokenizer(self) -> llguidance.LLTokenizer:
        """llguidance's view of this vocabulary, built once (about a second)."""
        with self._lltokenizer_lock:
            return self._build_grammar_tokenizer()

    def _build_grammar_tokenizer(self) -> llguidance.LLTokenizer:
        if self._lltokenizer is None:
            from llguidance import LLTokenizer

            llama_cpp = self._llama_cpp
            pieces: list[bytes] = []
            for token in range(self._n_vocab):
                piece = self._piece(token, special=True)
                attr = llama_cpp.llama_vocab_get_attr(self._vocab, token)
                # Control tokens get llguidance's 0xFF prefix so grammars never emit them as
                # text. User-defined tokens stay plain: Qwen's <tool_call> is one, and the
                # model should write the tag as the single token it was trained on.
                control = attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
                pieces.append(b"\xff" + piece if control else piece)
            tokenize = ctypes.cast(llama_cpp.llama_cpp._lib.llama_tokenize, ctypes.c_void_p)
            self._lltokenizer = LLTokenizer.from_llamacpp(  # type: ignore[attr-defined]
                tokens=pieces,
                vocab_ptr=self._vocab,
                tokenize_fptr=tokenize.value,
                eos_token=llama_cpp.llama_vocab_eos(self._vocab),
                slices=None,
            )
        return self._lltokenizer

    @staticmethod
    def _penalised(params: SamplingParams) -> bool:
        return bool(
            params.presence_penalty or params.frequency_penalty or params.repetition_penalty != 1
        )

    def _sampler(self, params: SamplingParams) -> Any:
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        if params.logit_bias:
            sampler.add_logit_bias(
                self._n_vocab,
                {token: (-math.inf if bias <= -100 else bias) for token, bias in params.logit_bias},
            )
        if self._penalised(params):
            sampler.add_penalties(
                n_vocab=self._n_vocab,
                penalty_last_n=_PENALTY_LAST_N,
                penalty_repeat=params.repetition_penalty,
                penalty_freq=params.frequency_penalty,
                penalty_present=params.presence_penalty,
            )
        if params.temperature <= 0:
            sampler.add_greedy()
            return sampler
        if params.top_k > 0:
            sampler.add_top_k(params.top_k)
        if params.top_p < 1.0:
            sampler.add_top_p(params.top_p, 1)
        if params.min_p > 0:
            sampler.add_min_p(params.min_p, 1)
        sampler.add_temp(params.temperature)
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        sampler.add_dist(seed & 0xFFFFFFFF)
        return sampler

    def logprob(self, logits: np.ndarray[Any, Any], token: int, top: int) -> TokenLogprob:
        finite = np.where(np.isfinite(logits), logits, -np.inf).astype(np.float64)
        peak = finite.max()
        log_z = peak + np.log(np.exp(finite - peak).sum())
        alternatives: list[TopLogprob] = []
        if top > 0:
            best = np.argpartition(-finite, top)[:top]
            best = best[np.argsort(-finite[best])]
            alternatives = [
                self._top(int(t), float(finite[t] - log_z)) for t in best if np.isfinite(finite[t])
            ]
        piece = self._piece(token)
        return TokenLogprob(
            token=piece.decode("utf-8", errors="replace"),
            logprob=float(finite[token] - log_z),
            bytes=tuple(piece),
            top=tuple(alternatives),
        )

    def _top(self, token: int, logprob: float) -> TopLogprob:
        piece = self._piece(token)
        return TopLogprob(piece.decode("utf-8", errors="replace"), logprob, tuple(piece))

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        cancel = cancel if cancel is not None else threading.Event()
        chunks: queue.SimpleQueue[GenerationChunk | BaseException] = queue.SimpleQueue()
        self.submit(prompt_tokens, params, constraint=constraint, cancel=cancel, emit=chunks.put)
        return self._drain(chunks, cancel)

    @staticmethod
    def _drain(
        chunks: queue.SimpleQueue[GenerationChunk | BaseException], cancel: threading.Event
    ) -> Iterator[GenerationChunk]:
        try:
            while True:
                item = chunks.get()
                if isinstance(item, BaseException):
                    raise item
                if cancel.is_set() and item.finish_reason is None:
                    # The scheduler may be a token ahead: nothing after the cancel is delivered.
                    yield GenerationChunk(text="", finish_reason="cancelled")
                    return
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            cancel.set()

    def submit(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None,
        cancel: threading.Event,
        emit: Callable[[GenerationChunk | BaseException], None],
    ) -> None:
        # Everything a request can get wrong fails here, before the stream starts.
        tokens = list(prompt_tokens)
        max_tokens = self.output_budget(tokens, params)
        params.check_logit_bias(self._n_vocab)
        self.check_capacity()
        from ember.engines.grammar import TokenMask

        mask = TokenMask(self._grammar_tokenizer(), constraint) if constraint else None
        if max_tokens <= 0:
            emit(GenerationChunk(text="", finish_reason="length"))
            return
        sampler = self._sampler(params)
        request = SequenceRequest(
            tokens=tokens,
            max_tokens=max_tokens,
            sampler=sampler,
            mask=mask,
            top_logprobs=params.top_logprobs if params.logprobs else None,
            cancel=cancel,
            emit=emit,
            greedy=params.temperature <= 0
            and not self._penalised(params)
            and not params.logit_bias,
        )
        try:
            self._scheduler.submit(request)
        except BaseException:
            sampler.close()
            raise

    def check_capacity(self) -> None:
        self._scheduler.check_capacity()

    def batch_stats(self) -> BatchStats:
        return self._scheduler.stats()

    @property
    def busy(self) -> bool:
        return self._scheduler.busy

    def close(self) -> None:
        self._scheduler.close()
        self._context.close()
        self._model.close()


@register_engine("llamacpp", fine_tuning=True)
def load_llamacpp(spec: ModelSpec, settings: Settings) -> Engine:
    path = spec.resolve_path(settings)
    n_ctx = settings.context_length
    if spec.context_length:
        n_ctx = min(n_ctx, spec.context_length)
    return LlamaCppEngine(
        str(path),
        n_ctx=n_ctx,
        n_threads=settings.n_threads,
        max_active=settings.max_active_sequences,
        max_queued=settings.max_queued_requests,
        prefill_chunk=settings.prefill_chunk_tokens,
        prefix_cache_mb=settings.prefix_cache_mb,
    )
