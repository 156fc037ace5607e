"""Writing a (merged) Llama-architecture transformers model as a GGUF file llama.cpp serves.

This follows llama.cpp's own ``convert_hf_to_gguf.py`` for the Llama family, with the
``gguf`` package's writer and tensor-name map: hyperparameters as ``llama.*`` keys, the
query and key projections permuted back into llama.cpp's rotary layout, 2-D weights in F16
(or Q8_0) and norms in F32. The tokenizer is copied key by key from the base model's own
GGUF when there is one (so llama.cpp tokenizes exactly as before), or else built from the
Hugging Face ``tokenizer.json`` (byte-level BPE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from ember.errors import UnsupportedParameterError

GgufType = Literal["f16", "q8_0", "f32"]
_ARCH = "llama"


def _permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """HF's rotary layout (halves) to llama.cpp's (interleaved pairs); as in convert_hf_to_gguf."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(
    model: Any,
    tokenizer: Any,
    output: Path,
    *,
    base_gguf: Path | None = None,
    dtype: GgufType = "f16",
    name: str = "",
) -> Path:
    """Write ``model`` (a merged transformers Llama) to ``output`` and return it."""
    import gguf
    import numpy as np

    config = model.config
    if getattr(config, "model_type", None) != "llama":
        raise UnsupportedParameterError(
            f"GGUF export supports Llama-architecture models; this one is "
            f"'{getattr(config, 'model_type', '?')}'. Export it as 'merged' and convert it "
            "with llama.cpp's convert_hf_to_gguf.py.",
            param="format",
        )
    n_layers = int(config.num_hidden_layers)
    n_head = int(config.num_attention_heads)
    n_head_kv = int(getattr(config, "num_key_value_heads", None) or n_head)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // n_head)
    file_type = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[dtype]

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), _ARCH)
    writer.add_name(name or "ember-fine-tune")
    writer.add_block_count(n_layers)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or _rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(file_type)
    if base_gguf is not None:
        _copy_tokenizer(writer, base_gguf)
    else:
        _hf_tokenizer(writer, tokenizer)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when there is no output tensor
        data = tensor.detach().float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, n_head, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, n_head, n_head_kv)
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedParameterError(
                f"The tensor '{hf_name}' has no GGUF name for the Llama architecture.",
                param="format",
            )
        if data.ndim == 1 or dtype == "f32":
            writer.add_tensor(gguf_name, data.astype(np.float32))
        elif dtype == "f16":
            writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(
                gguf_name,
                quantized,
                raw_shape=quantized.shape,
                raw_dtype=gguf.GGMLQuantizationType.Q8_0,
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(output)
    return output


def _rope_theta(config: Any) -> float:
    parameters = getattr(config, "rope_parameters", None) or {}
    return float(parameters.get("rope_theta", 10000.0))


def _copy_tokenizer(writer: Any, base_gguf: Path) -> None:
    """Every ``tokenizer.*`` key of the base GGUF, with its own type."""
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), value_type, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), value_type)


def _hf_tokenizer(writer: Any, tokenizer: Any) -> None:
    """A byte-level BPE tokenizer from its ``tokenizer.json``: tokens, types, merges, ids."""
    import gguf

    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(
        tokenizer, "_tokenizer", None
    )
    if backend is None:
        raise UnsupportedParameterError(
            "GGUF export needs a fast (tokenizer.json) tokenizer.", param="format"
        )
    spec = json.loads(backend.to_str())
    if spec.get("model", {}).get("type") != "BPE":
        raise UnsupportedParameterError(
            "GGUF export without a base GGUF supports byte-level BPE tokenizers only.",
            param="format",
        )
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, index in vocab.items():
        tokens[index] = text
        types[index] = gguf.TokenType.NORMAL
    for added in spec.get("added_tokens", []):
        if added.get("special"):
            types[added["id"]] = gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, token_id in (
        (writer.add_bos_token_id, tokenizer.bos_token_id),
        (writer.add_eos_token_id, tokenizer.eos_token_id),
        (writer.add_pad_token_id, tokenizer.pad_token_id),
    ):
        if token_id is not None:
            setter(int(token_id))
    adds_bos = tokenizer("", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]
    writer.add_add_bos_token(bool(adds_bos))
    template = tokenizer.chat_template
    if isinstance(template, str):
        writer.add_chat_template(template)
