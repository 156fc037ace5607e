"""Inference engines: one module per backend, each registering a factory by name.

The built-in engine modules are listed in ``ember.plugins.BUILTIN_MODULES``; a third-party
engine registers the same way from its own package (``ember.plugins``). Heavy libraries
(llama_cpp, torch, transformers) are imported inside the factories, so importing an engine
module stays cheap.
"""
