"""Did the job teach the model anything? Held-back data scored before and after training.

For supervised jobs: the loss on the assistant tokens (and its perplexity) of the held-back
conversations, and, for short answers, how many greedy generations match the expected
answer exactly, on the held-back conversations and on a sample of the training ones (a
pattern's training items are learned before it generalises). For DPO jobs: the
log-probability margin of preferred over non-preferred answers on held-back pairs, and how
often the preferred answer is the likelier.

A job *learned* when the held-back loss fell by at least ``MIN_LOSS_DROP`` (relative), or an
exact-match rate or the preference margin rose; otherwise it says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ember.adapt.data import Block, Conversation
from ember.adapt.objectives import PreferencePair, preference_margin
from ember.adapt.perplexity import perplexity

MIN_LOSS_DROP = 0.02
SHORT_ANSWER_TOKENS = 48
MAX_GENERATIONS = 16
GENERATION_BATCH = 8


def score_supervised(
    model: Any,
    tokenizer: Any,
    *,
    held_blocks: Sequence[Block],
    held: Sequence[Conversation],
    train_sample: Sequence[Conversation],
    pad_id: int,
) -> dict[str, Any]:
    ppl = perplexity(model, held_blocks, pad_id=pad_id)
    return {
        "loss": math.log(ppl) if math.isfinite(ppl) else None,
        "perplexity": ppl if math.isfinite(ppl) else None,
        "exact_match": exact_match(model, tokenizer, held),
        "train_exact_match": exact_match(model, tokenizer, train_sample),
    }


def score_preferences(
    model: Any, pairs: Sequence[PreferencePair], *, pad_id: int
) -> dict[str, Any]:
    return preference_margin(model, pairs, pad_id)


def exact_match(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Conversation],
    *,
    limit: int = MAX_GENERATIONS,
) -> dict[str, Any] | None:
    """Greedy answers to the conversations whose final answer is short, compared exactly
    (surrounding blanks aside) with that answer; None when no answer is short."""
    prompts: list[Conversation] = []
    expected: list[str] = []
    longest = 0
    for conversation in conversations:
        if len(prompts) >= limit:
            break
        if conversation[-1]["role"] != "assistant":
            continue
        answer = conversation[-1]["content"].strip()
        length = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
        if length > SHORT_ANSWER_TOKENS:
            continue
        prompts.append(conversation[:-1])
        expected.append(answer)
        longest = max(longest, length)
    if not prompts:
        return None
    matched = 0
    for start in range(0, len(prompts), GENERATION_BATCH):
        replies = greedy_answers(
            model, tokenizer, prompts[start : start + GENERATION_BATCH], longest + 8
        )
        matched += sum(r == e for r, e in zip(replies, expected[start:], strict=False))
    return {"matched": matched, "scored": len(prompts), "rate": matched / len(prompts)}


def greedy_answers(
    model: Any, tokenizer: Any, prompts: Sequence[Conversation], max_new_tokens: int
) -> list[str]:
    """The model's greedy replies to ``prompts`` in its chat template, generated as one
    left-padded batch (the attention mask keeps the padding out)."""
    import torch

    rows = [
        tokenizer(
            tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
        for p in prompts
    ]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
    if was_training:
        model.train()
    return [str(tokenizer.decode(row[width:], skip_special_tokens=True)).strip() for row in out]


def verdict(before: dict[str, Any], after: dict[str, Any]) -> tuple[bool, str]:
    """Whether the scores show learning, and the sentence that says why (or why not)."""
    if "margin" in before and "margin" in after:
        delta = after["margin"] - before["margin"]
        text = (
            f"held-back preference margin {before['margin']:.3f} -> {after['margin']:.3f}, "
            f"preferred likelier in {before['accuracy']:.0%} -> {after['accuracy']:.0%}"
        )
        return delta > 0, text
    signs: list[str] = []
    learned = False
    if before.get("loss") is not None and after.get("loss") is not None:
        drop = (before["loss"] - after["loss"]) / max(before["loss"], 1e-9)
        signs.append(f"held-back answer loss {before['loss']:.3f} -> {after['loss']:.3f}")
        learned |= drop >= MIN_LOSS_DROP
    for key, name in (("exact_match", "held-back"), ("train_exact_match", "training")):
        was, now = before.get(key), after.get(key)
        if was and now:
            signs.append(
                f"{name} exact match {was['matched']}/{was['scored']} -> "
                f"{now['matched']}/{now['scored']}"
            )
            learned |= now["matched"] > was["matched"]
    return learned, "; ".join(signs) or "nothing to score"
