"""What one model is: :class:`ModelSpec`, the record every source of models produces.

The registry (``ember.models.registry``) merges specs from the embedded models
(``ember.models.embedded``), ``ember.toml``, pulled models and fine-tuning jobs; engines are
built from one (``engines.base.engine_factory``). It lives apart from both so that neither
needs the other to name it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ember.errors import ModelNotFoundError
from ember.settings import Settings

ModelKind = Literal["chat", "completion", "embedding"]
ModelSource = Literal["embedded", "config", "hub", "fine-tune"]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load and describe one model."""

    id: str
    engine: str
    kind: ModelKind
    source: ModelSource
    owned_by: str = "ember"
    owner: str | None = None  # a fine-tuned model's tenant (None: everyone's)
    description: str = ""
    path: Path | None = None
    gguf_file: str | None = None
    context_length: int | None = None
    size_bytes: int = 0
    created: int = 0
    licence: str = ""
    # A LoRA adapter directory applied on top of the weights (fine-tuned models).
    adapter: Path | None = None
    # Embedded models whose file must be prepared first (joined, verified) set this.
    locate: Callable[[Settings], Path] | None = field(default=None, compare=False, repr=False)

    def resolve_path(self, settings: Settings) -> Path:
        """The model's file or directory on disk, preparing it if needed."""
        if self.locate is not None:
            return self.locate(settings)
        if self.path is None:
            raise ModelNotFoundError(self.id)
        return self.path
