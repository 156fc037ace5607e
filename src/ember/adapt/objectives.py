"""What a training step minimises: next-token loss on the answers, or the DPO loss on pairs.

Both score only labelled tokens (the assistant's), and both run the vocabulary projection on
those positions alone: on a small chat model the output layer is a fifth of the compute,
and most positions of a chat example are the prompt.

DPO (Rafailov et al. 2023) is written here rather than taken from TRL: TRL 1.16 requires
``datasets`` and ``pyarrow``, new pins for a loss of a dozen lines. The reference model is
the policy with its LoRA adapter switched off, so no second copy of the weights is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ember.adapt.data import IGNORE_INDEX, Block
from ember.adapt.perplexity import collate, to_device


@dataclass(frozen=True)
class PreferencePair:
    """One prompt answered twice: the preferred and the non-preferred answer, each a block
    whose labels cover its answer only."""

    chosen: Block
    rejected: Block


@dataclass(frozen=True)
class StepLoss:
    loss: Any  # a scalar tensor to back-propagate
    trained_tokens: int
    input_tokens: int
    metrics: dict[str, float]


class Objective(Protocol):
    def step_loss(self, model: Any, items: Sequence[Any], pad_id: int) -> StepLoss: ...


def labelled_logprobs(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Log-probabilities of the labelled next tokens and the row each belongs to."""
    import torch

    batch = to_device(batch, model)
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(base, "get_decoder", lambda: None)()
    head = base.get_output_embeddings()
    if decoder is None or head is None or getattr(base.config, "final_logit_softcapping", None):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        chosen = logits[:, :-1][keep].float()
    else:
        hidden = decoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        chosen = head(hidden[:, :-1][keep]).float()
    logprobs = -torch.nn.functional.cross_entropy(chosen, targets[keep], reduction="none")
    return logprobs, keep.nonzero()[:, 0]


def sequence_logprobs(model: Any, blocks: Sequence[Block], pad_id: int) -> Any:
    """Per block, the summed log-probability of its labelled tokens."""
    import torch

    logprobs, rows = labelled_logprobs(model, collate(blocks, pad_id))
    sums = torch.zeros(len(blocks), dtype=logprobs.dtype, device=logprobs.device)
    return sums.index_add(0, rows, logprobs)


class Supervised:
    """Mean next-token loss over the answers' tokens."""

    def step_loss(self, model: Any, items: Sequence[Block], pad_id: int) -> StepLoss:
        batch = collate(items, pad_id)
        logprobs, _ = labelled_logprobs(model, batch)
        return StepLoss(
            loss=-logprobs.mean(),
            trained_tokens=int(logprobs.numel()),
            input_tokens=int(batch["attention_mask"].sum()),
            metrics={},
        )


@dataclass(frozen=True)
class Dpo:
    """``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))``, the reference being the
    model with its adapter disabled."""

    beta: float = 0.1

    def step_loss(self, model: Any, items: Sequence[PreferencePair], pad_id: int) -> StepLoss:
        import torch

        blocks = [p.chosen for p in items] + [p.rejected for p in items]
        policy = sequence_logprobs(model, blocks, pad_id)
        with torch.no_grad(), model.disable_adapter():
            reference = sequence_logprobs(model, blocks, pad_id)
        n = len(items)
        ratios = policy - reference
        logits = self.beta * (ratios[:n] - ratios[n:])
        loss = -torch.nn.functional.logsigmoid(logits).mean()
        margin = (policy[:n] - policy[n:]).detach()
        return StepLoss(
            loss=loss,
            trained_tokens=sum(_labelled(b) for b in blocks),
            input_tokens=sum(len(b.input_ids) for b in blocks),
            metrics={
                "reward_margin": float(logits.detach().mean() / self.beta),
                "logprob_margin": float(margin.mean()),
                "reward_accuracy": float((logits.detach() > 0).float().mean()),
            },
        )


def preference_margin(model: Any, pairs: Sequence[PreferencePair], pad_id: int) -> dict[str, float]:
    """Mean log-probability margin of preferred over non-preferred answers, and how often
    the preferred one is the likelier (no gradient)."""
    import torch

    if not pairs:
        return {}
    was_training = model.training
    model.eval()
    margins: list[float] = []
    with torch.no_grad():
        for start in range(0, len(pairs), 4):
            chunk = pairs[start : start + 4]
            blocks = [p.chosen for p in chunk] + [p.rejected for p in chunk]
            scores = sequence_logprobs(model, blocks, pad_id)
            margins += (scores[: len(chunk)] - scores[len(chunk) :]).tolist()
    if was_training:
        model.train()
    return {
        "margin": sum(margins) / len(margins),
        "accuracy": sum(1 for m in margins if m > 0) / len(margins),
    }


def _labelled(block: Block) -> int:
    return sum(1 for label in block.labels[1:] if label != IGNORE_INDEX)
