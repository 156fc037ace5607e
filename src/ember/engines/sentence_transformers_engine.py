"""Embeddings from any sentence-transformers model directory, on the CPU with torch.

The engine owns one ``SentenceTransformer`` loaded from disk only: Ember never lets a library
reach the network behind the user's back, so the hub is switched off before the import and
the load is ``local_files_only``. Models of this family take no query/passage prefix, so
``input_type`` is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ember.engines.base import EmbeddingEngine, EngineCapabilities, register_engine
from ember.errors import ModelLoadError

if TYPE_CHECKING:
    from ember.models.spec import ModelSpec
    from ember.settings import Settings


class SentenceTransformersEngine(EmbeddingEngine):
    """One sentence-transformers model; vectors are L2-normalised."""

    capabilities = EngineCapabilities(embeddings=True)

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        super().__init__()
        # huggingface_hub reads this once, on first import; a user's own value wins.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        # torch's pool is process-wide; more threads than cores only thrash.
        torch.set_num_threads(min(settings.n_threads, os.cpu_count() or 1))
        path = spec.resolve_path(settings)
        if not path.exists():
            raise ModelLoadError(
                f"The model '{spec.id}' cannot be loaded: {path} does not exist. Fix its path "
                "in ember.toml or pull it again with `ember models pull`."
            )
        try:
            self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise ModelLoadError(
                f"sentence-transformers could not load '{spec.id}' from {path} "
                f"({type(exc).__name__}). Check that the directory holds a "
                "sentence-transformers model (modules.json, config.json, weights)."
            ) from exc
        self._model.eval()
        dimensions = self._model.get_embedding_dimension()
        if dimensions is None:
            raise ModelLoadError(
                f"The model '{spec.id}' at {path} does not say how long its vectors are; "
                "it needs a pooling module (1_Pooling/config.json)."
            )
        self._dimensions = int(dimensions)
        # A model that names no limit is held to the window it was declared with.
        max_tokens = self._model.max_seq_length or spec.context_length or 512
        self._max_input_tokens = int(max_tokens)
        self._memory_bytes = sum(p.numel() * p.element_size() for p in self._model.parameters())

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    def count_tokens(self, text: str) -> int:
        # Untruncated, with the [CLS]/[SEP] the model adds, so over-long inputs show as such.
        ids = self._model.tokenizer(text, add_special_tokens=True)["input_ids"]
        return len(ids)

    def embed(
        self, texts: Sequence[str], *, input_type: Literal["query", "passage"] = "query"
    ) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result


@register_engine("sentence-transformers")
def load_sentence_transformers_engine(
    spec: ModelSpec, settings: Settings
) -> SentenceTransformersEngine:
    return SentenceTransformersEngine(spec, settings)
