"""Chat and completion models served by transformers and torch, on the CPU.

The engine owns one causal language model and its tokenizer, loaded from a Hugging Face model
directory or, when the spec names a ``gguf_file``, dequantized from that GGUF to float32 (so
that LoRA adapters can be trained on and applied to it). It runs its own decode loop over the
KV cache rather than ``model.generate`` so that every token goes through Ember's sampler and
the shared llguidance mask (:mod:`ember.engines.grammar`), and can be streamed, scored and
cancelled one at a time, exactly as on the llama.cpp engine.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ember.core.chat_template import ChatTemplate
from ember.core.types import (
    FinishReason,
    GenerationChunk,
    OutputConstraint,
    SamplingParams,
    TokenLogprob,
    TopLogprob,
)
from ember.engines.base import EngineCapabilities, TextEngine, register_engine
from ember.errors import (
    EngineError,
    ModelLoadError,
    UnsupportedParameterError,
)

if TYPE_CHECKING:
    import llguidance
    import torch

    from ember.engines.grammar import TokenMask
    from ember.models.spec import ModelSpec
    from ember.settings import Settings

# Below this temperature sampling is argmax: dividing logits by ~0 would overflow.
_GREEDY_BELOW = 1e-5
_REPLACEMENT_CHAR = "\ufffd"


class TransformersEngine(TextEngine):
    """One transformers causal LM, its tokenizer and (built on first use) its llguidance twin.

    ``model`` and ``tokenizer`` are public so that the adapter subsystem can wrap the model
    with LoRA weights; generation always goes through :meth:`generate`.
    """

    capabilities = EngineCapabilities(
        chat=True,
        completion=True,
        streaming=True,
        json_schema=True,
        tools=True,
        logprobs=True,
        seed=True,
        lora=True,
    )

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        super().__init__()
        import torch

        # torch's pool is process-wide; more threads than cores only thrash.
        torch.set_num_threads(min(settings.n_threads, os.cpu_count() or 1))
        self.spec = spec
        self.model, self.tokenizer = load_pretrained(spec, settings)
        config = self.model.config
        native = _config_context_length(config) or spec.context_length or settings.context_length
        self._context_length = min(native, spec.context_length or native)
        # Penalty tables are sized like the logits, which may be wider than the tokenizer.
        head = self.model.get_output_embeddings()
        self._vocab_size = int(head.weight.shape[0]) if head is not None else config.vocab_size
        self._eos_ids = _eos_token_ids(self.model, self.tokenizer)
        self._bos_prefix = _bos_prefix(self.tokenizer)
        # Computing logits for every prompt position wastes vocab x prompt floats; models
        # that accept ``logits_to_keep`` return only the last row.
        self._keeps_last_logits = (
            "logits_to_keep" in inspect.signature(self.model.forward).parameters
        )
        self._memory_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    @property
    def context_length(self) -> int:
        return self._context_length

    @cached_property
    def chat_template(self) -> ChatTemplate:
        source = self.tokenizer.chat_template
        if isinstance(source, dict):  # several named templates: the unnamed one chats
            source = source.get("default")
        return ChatTemplate(
            source,
            bos_token=self.tokenizer.bos_token or "",
            eos_token=self.tokenizer.eos_token or "",
        )

    @cached_property
    def lltokenizer(self) -> llguidance.LLTokenizer:
        """The tokenizer as llguidance sees it: grammar masks and token bytes (~0.5 s)."""
        import llguidance.hf

        try:
            return llguidance.hf.from_tokenizer(self.tokenizer, eos_token=sorted(self._eos_ids))
        except ValueError as exc:  # a slow (pure Python) tokenizer
            raise UnsupportedParameterError(
                f"The tokenizer of '{self.spec.id}' cannot drive constrained decoding or "
                "logprobs; use a model with a fast (tokenizer.json) tokenizer."
            ) from exc

    def tokenize(self, text: str) -> list[int]:
        # The rendered prompt carries its own special tokens; only a BOS the tokenizer would
        # add, and the template left out, is put in front.
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self._bos_prefix is not None and ids[:1] != [self._bos_prefix]:
            ids.insert(0, self._bos_prefix)
        return ids

    def generate(
        self,
        prompt_tokens: Sequence[int],
        params: SamplingParams,
        *,
        constraint: OutputConstraint | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationChunk]:
        # Not itself a generator, so that a bad request fails here, before the first chunk.
        prompt = list(prompt_tokens)
        limit = self.output_budget(prompt, params)
        params.check_logit_bias(self._vocab_size)
        mask = self._token_mask(constraint)
        if params.logprobs:
            _ = self.lltokenizer  # token bytes come from it; build it before streaming
        return self._decode(prompt, params, limit, mask, cancel)

    def _decode(
        self,
        prompt: list[int],
        params: SamplingParams,
        limit: int,
        mask: TokenMask | None,
        cancel: threading.Event | None,
    ) -> Iterator[GenerationChunk]:
        import torch

        sampler = _Sampler(params, self._vocab_size, prompt)
        decoder = _IncrementalDecoder(self.tokenizer)
        next_input = torch.tensor([prompt], dtype=torch.long)
        cache: Any = None
        finish: FinishReason = "length"
        while decoder.count < limit:
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            token, logprob, cache = self._step(next_input, cache, sampler, mask, params)
            if token in self._eos_ids:
                finish = "stop"
                break
            if mask is not None:
                mask.consume(token)
            sampler.record(token)
            logprobs = (logprob,) if logprob is not None else ()
            yield GenerationChunk(text=decoder.add(token), tokens=1, logprobs=logprobs)
            if mask is not None and mask.is_stopped:
                finish = "stop"
                break
            next_input = torch.tensor([[token]], dtype=torch.long)
        yield GenerationChunk(text=decoder.flush(), finish_reason=finish)

    def _token_mask(self, constraint: OutputConstraint | None) -> TokenMask | None:
        if constraint is None:
            return None
        from ember.engines.grammar import TokenMask

        return TokenMask(self.lltokenizer, constraint)

    def _step(
        self,
        input_ids: torch.Tensor,
        cache: Any,
        sampler: _Sampler,
        mask: TokenMask | None,
        params: SamplingParams,
    ) -> tuple[int, TokenLogprob | None, Any]:
        """One forward pass and one sampled token.

        Not a generator: ``inference_mode`` is thread-local state, and a generator may be
        resumed on another worker thread, so the context never spans a ``yield``.
        """
        import torch

        # transformers 5.25 renamed `past_key_values` to `cache` (argument and output).
        kwargs: dict[str, Any] = {"cache": cache, "use_cache": True}
        if self._keeps_last_logits:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            try:
                output = self.model(input_ids, **kwargs)
            except RuntimeError as exc:
                raise EngineError(f"The model '{self.spec.id}' failed while generating.") from exc
            logits = output.logits[0, -1].float()
            scores = sampler.penalise(logits)
            if mask is not None:
                mask.apply(scores.numpy())
            token = sampler.choose(scores)
            logprob = self._logprob(logits, token, params) if params.logprobs else None
        return token, logprob, output.cache

    def _logprob(self, logits: torch.Tensor, token: int, params: SamplingParams) -> TokenLogprob:
        # Like OpenAI: the model's own distribution, before temperature, penalties or grammar.
        import torch

        logprobs = torch.log_softmax(logits, dim=-1)
        top: tuple[TopLogprob, ...] = ()
        if params.top_logprobs > 0:
            values, indices = torch.topk(logprobs, min(params.top_logprobs, logprobs.numel()))
            top = tuple(
                TopLogprob(text, float(value), raw)
                for value, (text, raw) in zip(
                    values.tolist(), map(self._token_text, indices.tolist()), strict=True
                )
            )
        text, raw = self._token_text(token)
        return TokenLogprob(text, float(logprobs[token]), raw, top)

    def _token_text(self, token: int) -> tuple[str, tuple[int, ...]]:
        raw = self.lltokenizer.decode_bytes([token])
        return raw.decode("utf-8", errors="replace"), tuple(raw)


class _Sampler:
    """Turns one step's logits into a token id, following one request's ``SamplingParams``.

    Order, as in transformers: penalties, (grammar mask, applied by the caller), temperature,
    top-k, top-p, min-p. Every request gets its own ``torch.Generator``, so a seed pins the
    output regardless of what other requests sampled.
    """

    def __init__(self, params: SamplingParams, vocab_size: int, prompt: Sequence[int]) -> None:
        import torch

        self.params = params
        self._generator = torch.Generator()
        if params.seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(params.seed & 0xFFFF_FFFF_FFFF_FFFF)
        # OpenAI's presence and frequency penalties count the output only; transformers'
        # repetition penalty covers prompt and output.
        self._counts = torch.zeros(vocab_size)
        self._seen = torch.zeros(vocab_size, dtype=torch.bool)
        self._seen[torch.tensor([t for t in prompt if t < vocab_size], dtype=torch.long)] = True

    def record(self, token: int) -> None:
        if token < self._counts.numel():
            self._counts[token] += 1
            self._seen[token] = True

    def penalise(self, logits: torch.Tensor) -> torch.Tensor:
        """A penalised copy of ``logits``."""
        import torch

        p = self.params
        scores = logits.clone()
        if p.repetition_penalty != 1.0:
            seen = scores[self._seen]
            scores[self._seen] = torch.where(
                seen > 0, seen / p.repetition_penalty, seen * p.repetition_penalty
            )
        if p.frequency_penalty:
            scores -= self._counts * p.frequency_penalty
        if p.presence_penalty:
            scores -= (self._counts > 0).float() * p.presence_penalty
        for token, bias in p.logit_bias:
            scores[token] = -math.inf if bias <= -100 else scores[token] + bias
        return scores

    def choose(self, scores: torch.Tensor) -> int:
        import torch

        p = self.params
        if p.temperature < _GREEDY_BELOW:
            return int(torch.argmax(scores))
        scores = scores / p.temperature
        if 0 < p.top_k < scores.numel():
            kth = torch.topk(scores, p.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, -math.inf)
        if p.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True)
            sorted_probs = torch.softmax(ordered, dim=-1)
            # Drop a token once the ones before it already reach top_p.
            drop = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= p.top_p
            drop[0] = False  # even top_p=0 keeps the most likely token
            scores = scores.scatter(0, order, ordered.masked_fill(drop, -math.inf))
        probs = torch.softmax(scores, dim=-1)
        if p.min_p > 0.0:
            probs = probs.masked_fill(probs < p.min_p * probs.max(), 0.0)
        return int(torch.multinomial(probs, 1, generator=self._generator))


class _IncrementalDecoder:
    """UTF-8-safe streaming detokenization.

    Decoding token by token would split multi-byte characters and drop the spaces some
    tokenizers add only between tokens, so the whole output is decoded each time and the new
    suffix emitted; while the text ends in U+FFFD (a character still incomplete) it is held.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._emitted = ""

    @property
    def count(self) -> int:
        return len(self._ids)

    def add(self, token: int) -> str:
        self._ids.append(token)
        text = self._decode()
        if text.endswith(_REPLACEMENT_CHAR):
            return ""
        return self._advance(text)

    def flush(self) -> str:
        return self._advance(self._decode()) if self._ids else ""

    def _decode(self) -> str:
        text: str = self._tokenizer.decode(
            self._ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text

    def _advance(self, text: str) -> str:
        # Decoding is prefix-stable for the tokenizers we serve; if one ever rewrites
        # earlier text, what was sent stays sent and only what lies past it goes out.
        same = zip(text, self._emitted, strict=False)
        common = next((i for i, (a, b) in enumerate(same) if a != b), len(self._emitted))
        new = text[common:]
        self._emitted = text
        return new


def load_pretrained(spec: ModelSpec, settings: Settings) -> tuple[Any, Any]:
    """The model (float32, eval mode) and its tokenizer, or ModelLoadError.

    A fine-tuned spec names a LoRA ``adapter`` directory: it is merged into the base
    weights, so the fine-tuned model decodes exactly as fast as its base.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = spec.resolve_path(settings)
    where = path / spec.gguf_file if spec.gguf_file else path
    if not where.exists():
        raise ModelLoadError(
            f"The model '{spec.id}' cannot be loaded: {where} does not exist. Fix its path "
            "in ember.toml or pull it again with `ember models pull`."
        )
    extra: dict[str, Any] = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **extra)
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch.float32, **extra
        )
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        raise ModelLoadError(
            f"The model '{spec.id}' at {where} could not be loaded by transformers "
            f"({type(exc).__name__}). Check that it is a causal language model in Hugging "
            "Face format, or a GGUF file of an architecture transformers can dequantize."
        ) from exc
    if spec.adapter is not None:
        model = _merge_adapter(model, spec)
    model.eval()
    return model, tokenizer


def _merge_adapter(model: Any, spec: ModelSpec) -> Any:
    from peft import PeftModel

    assert spec.adapter is not None
    try:
        return PeftModel.from_pretrained(model, str(spec.adapter)).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"The LoRA adapter of '{spec.id}' at {spec.adapter} could not be applied "
            f"({type(exc).__name__}). Export it again or re-run the fine-tuning job."
        ) from exc


def _config_context_length(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every id that ends generation: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    candidates: list[Any] = [tokenizer.eos_token_id]
    if model.generation_config is not None:
        candidates.append(model.generation_config.eos_token_id)
    candidates.append(getattr(model.config, "eos_token_id", None))
    for candidate in candidates:
        if isinstance(candidate, int):
            ids.add(candidate)
        elif isinstance(candidate, list | tuple):
            ids.update(i for i in candidate if isinstance(i, int))
    return frozenset(ids)


def _bos_prefix(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer itself would prepend one, else None."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    added = tokenizer("", add_special_tokens=True)["input_ids"]
    return bos if added[:1] == [bos] else None


@register_engine("transformers", fine_tuning=True)
def load_transformers_engine(spec: ModelSpec, settings: Settings) -> TransformersEngine:
    return TransformersEngine(spec, settings)
