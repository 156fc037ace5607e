"""Adapting models to one's own data: datasets, LoRA training, perplexity, export.

``data`` checks and converts training files (OpenAI chat JSONL, Alpaca, ShareGPT) and turns
conversations into packed token blocks; ``training`` runs a resumable peft LoRA loop;
``perplexity`` scores a model on blocks; ``export`` writes adapters, merged weights and GGUF.
Nothing here knows about HTTP or jobs: ``ember.services.fine_tuning`` composes it.
"""
