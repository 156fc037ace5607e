"""The llama.cpp engine: GGUF models through llama-cpp-python.

``Llama`` loads the model and context and evaluates token batches; sampling runs through
llama.cpp's own sampler chain (penalties, top-k, top-p, min-p, temperature, seeded
distribution), so the decode loop costs what llama.cpp costs. For constrained output the
llguidance mask is written straight into the context's logits buffer before the chain samples
from it. The KV cache keeps the previous request's tokens, and a new prompt that shares a
prefix with them re-reads only the rest (multi-turn chat starts faster).
"""

from __future__ import annotations

import codecs
import ctypes
import os
import random
import threading
from collections.abc import Iterator, Sequence
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
from ember.engines.base import Engine, EngineCapabilities, TextEngine, register_engine
from ember.errors import (
    EngineError,
    ModelLoadError,
)

if TYPE_CHECKING:
    import llguidance

    from ember.engines.grammar import TokenMask
    from ember.models.registry import ModelSpec
    from ember.settings import Settings

_PENALTY_LAST_N = 64


class LlamaCppEngine(TextEngine):
    """One GGUF model and its llama.cpp context."""

    capabilities = EngineCapabilities(
        chat=True,
        completion=True,
        streaming=True,
        json_schema=True,
        tools=True,
        logprobs=True,
        seed=True,
    )

    def __init__(self, model_path: str, *, n_ctx: int, n_threads: int) -> None:
        super().__init__()
        import llama_cpp

        self._llama_cpp = llama_cpp
        try:
            self._llama = llama_cpp.Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load '{model_path}'.") from exc
        self._model = self._llama._model
        self._vocab = llama_cpp.llama_model_get_vocab(self._model.model)
        self._n_vocab = self._llama.n_vocab()
        self._file_bytes = os.path.getsize(model_path)
        metadata = self._llama.metadata
        self._template = ChatTemplate(
            metadata.get("tokenizer.chat_template"),
            bos_token=self._token_text(self._model.token_bos()),
            eos_token=self._token_text(self._model.token_eos()),
        )
        self._lltokenizer: llguidance.LLTokenizer | None = None
        self._piece_buffer = ctypes.create_string_buffer(256)

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        """The bytes of one token (special tokens render as empty unless ``special``)."""
        size = self._llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece_buffer, len(self._piece_buffer), 0, special
        )
        return self._piece_buffer.raw[: max(0, size)]

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model.token_get_text(token)

    @property
    def memory_bytes(self) -> int:
        # Weights plus KV cache: 2 (K and V) x layers x ctx x kv width x 2 bytes (f16).
        n_layer = self._llama_cpp.llama_model_n_layer(self._model.model)
        n_embd = self._llama_cpp.llama_model_n_embd(self._model.model)
        n_head = max(1, self._llama_cpp.llama_model_n_head(self._model.model))
        n_head_kv = self._llama_cpp.llama_model_n_head_kv(self._model.model) or n_head
        kv_width = n_embd * n_head_kv // n_head
        return self._file_bytes + 2 * n_layer * self._llama.n_ctx() * kv_width * 2

    @property
    def context_length(self) -> int:
        return self._llama.n_ctx()

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str) -> list[int]:
        # The rendered template already holds BOS where the model wants one.
        add_bos = bool(self._llama_cpp.llama_vocab_get_add_bos(self._vocab))
        bos = self._template.bos_token
        if add_bos and bos and text.startswith(bos):
            add_bos = False
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def _grammar_tokenizer(self) -> llguidance.LLTokenizer:
        """llguidance's view of this vocabulary, built once (about a second)."""
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

    def _sampler(self, params: SamplingParams) -> Any:
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        if params.presence_penalty or params.frequency_penalty or params.repetition_penalty != 1:
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

    def _load_prompt(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, reusing the KV cache for a prefix shared with the last call."""
        llama = self._llama
        shared = 0
        for cached, new in zip(llama.input_ids[: llama.n_tokens], tokens, strict=False):
            if cached != new:
                break
            shared += 1
        shared = min(shared, len(tokens) - 1)  # re-read at least one token to get logits
        if shared > 0 and llama._ctx.kv_cache_seq_rm(-1, shared, -1):
            llama.n_tokens = shared
        else:
            llama.reset()
            shared = 0
        llama.eval(tokens[shared:])

    def _logits(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        pointer = self._llama_cpp.llama_get_logits_ith(self._llama.ctx, -1)
        array_type = ctypes.c_float * self._n_vocab
        buffer = array_type.from_address(ctypes.addressof(pointer.contents))
        return np.ctypeslib.as_array(buffer)

    def _logprob(self, logits: np.ndarray[Any, Any], token: int, top: int) -> TokenLogprob:
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
        # Everything a request can get wrong fails here, before the stream starts.
        tokens = list(prompt_tokens)
        max_tokens = self.output_budget(tokens, params)
        from ember.engines.grammar import TokenMask

        mask = TokenMask(self._grammar_tokenizer(), constraint) if constraint else None
        return self._stream(tokens, params, max_tokens, mask, cancel)

    def _stream(
        self,
        tokens: list[int],
        params: SamplingParams,
        max_tokens: int,
        mask: TokenMask | None,
        cancel: threading.Event | None,
    ) -> Iterator[GenerationChunk]:
        sampler = self._sampler(params)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        is_eog = self._llama_cpp.llama_vocab_is_eog
        try:
            self._load_prompt(tokens)
            produced = 0
            finish = "length"
            while produced < max_tokens:
                if cancel is not None and cancel.is_set():
                    finish = "cancelled"
                    break
                logits = self._logits()
                if mask is not None:
                    mask.apply(logits)
                token = int(sampler.sample(self._llama._ctx, -1))
                logprob = (
                    self._logprob(logits, token, params.top_logprobs) if params.logprobs else None
                )
                if is_eog(self._vocab, token):
                    finish = "stop"
                    break
                if mask is not None:
                    mask.consume(token)
                produced += 1
                yield GenerationChunk(
                    text=decoder.decode(self._piece(token)),
                    tokens=1,
                    logprobs=(logprob,) if logprob else (),
                )
                if mask is not None and mask.is_stopped:
                    finish = "stop"
                    break
                if produced < max_tokens:
                    self._llama.eval([token])
            tail = decoder.decode(b"", final=True)
            yield GenerationChunk(text=tail, finish_reason=finish)  # type: ignore[arg-type]
        except RuntimeError as exc:  # llama_decode failures surface as RuntimeError
            raise EngineError("llama.cpp failed while generating.") from exc
        finally:
            sampler.close()

    def close(self) -> None:
        self._llama.close()


@register_engine("llamacpp")
def load_llamacpp(spec: ModelSpec, settings: Settings) -> Engine:
    path = spec.resolve_path(settings)
    n_ctx = settings.context_length
    if spec.context_length:
        n_ctx = min(n_ctx, spec.context_length)
    return LlamaCppEngine(str(path), n_ctx=n_ctx, n_threads=settings.n_threads)
