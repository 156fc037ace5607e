"""Perplexity: exp of the mean next-token loss over the labelled tokens of some blocks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ember.adapt.data import IGNORE_INDEX, Block


def collate(blocks: Sequence[Block], pad_id: int) -> dict[str, Any]:
    """Blocks as one batch. Packed blocks are all full but the last, so padding is rare;
    where it happens it is masked out of attention and loss."""
    import torch

    width = max(len(b.input_ids) for b in blocks)
    ids = torch.full((len(blocks), width), pad_id, dtype=torch.long)
    labels = torch.full((len(blocks), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(blocks), width), dtype=torch.long)
    for row, block in enumerate(blocks):
        n = len(block.input_ids)
        ids[row, :n] = torch.tensor(block.input_ids)
        labels[row, :n] = torch.tensor(block.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def to_device(batch: dict[str, Any], model: Any) -> dict[str, Any]:
    """``batch`` on the device that holds ``model``'s weights (a GPU, or the CPU)."""
    device = next(model.parameters()).device
    if all(tensor.device == device for tensor in batch.values()):
        return batch
    return {name: tensor.to(device) for name, tensor in batch.items()}


def token_losses(model: Any, batch: dict[str, Any]) -> tuple[float, int]:
    """Summed next-token loss and the number of tokens it covers."""
    import torch

    batch = to_device(batch, model)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    shifted = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return float(losses), int((shifted != IGNORE_INDEX).sum())


def perplexity(model: Any, blocks: Sequence[Block], *, pad_id: int, batch_size: int = 4) -> float:
    """Perplexity of ``model`` on ``blocks`` (NaN when they label no token)."""
    import torch

    if not blocks:
        return math.nan
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            loss, n = token_losses(model, collate(blocks[start : start + batch_size], pad_id))
            total += loss
            count += n
    if was_training:
        model.train()
    return math.exp(total / count) if count else math.nan


def gguf_perplexity(path: Path, blocks: Sequence[Block], *, n_threads: int = 1) -> float:
    """Perplexity of a GGUF model run by llama.cpp on the same blocks (and the same labels),
    so the cost of conversion is measured by the engine that will serve the file."""
    import numpy as np
    from llama_cpp import Llama

    if not blocks:
        return math.nan
    width = max(len(b.input_ids) for b in blocks)
    llm = Llama(
        model_path=str(path),
        n_ctx=max(width, 64),
        n_batch=max(width, 64),
        n_threads=n_threads,
        logits_all=True,
        verbose=False,
    )
    total, count = 0.0, 0
    try:
        for block in blocks:
            llm.reset()
            llm.eval(block.input_ids)
            logits = np.asarray(llm.scores[: len(block.input_ids)], dtype=np.float64)
            shifted = np.asarray(block.labels[1:])
            rows = logits[:-1]
            peak = rows.max(axis=1, keepdims=True)
            logsumexp = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
            keep = shifted != IGNORE_INDEX
            chosen = rows[np.arange(len(shifted))[keep], shifted[keep]]
            total += float((logsumexp[keep] - chosen).sum())
            count += int(keep.sum())
    finally:
        llm.close()
    return math.exp(total / count) if count else math.nan
