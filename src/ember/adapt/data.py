"""Training data: reading, checking and converting it, then cutting it into token blocks.

Three formats are accepted, one JSON object per line, detected line by line:

* OpenAI chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}``;
* Alpaca: ``{"instruction": "...", "input": "...", "output": "..."}``;
* ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": "..."}]}``.

Every line is checked before any compute is spent, and every bad line is reported with its
number and the reason. Conversations are rendered with the base model's own chat template;
only the assistant turns are trained on (other tokens get the label -100). Each example is
then a block of its own (``rows``: no example reads another); plain text is packed end to
end into blocks of ``seq_len`` tokens (``pack``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ember.errors import InvalidTrainingDataError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
_SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
}
MAX_REPORTED_PROBLEMS = 50

Conversation = list[dict[str, str]]
T = TypeVar("T")


@dataclass(frozen=True)
class LineProblem:
    """One bad line: its 1-based number and why it was refused."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ParsedData:
    """The conversations a file holds, the format each line was in, and what was wrong."""

    conversations: list[Conversation] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    problems: list[LineProblem] = field(default_factory=list)

    def raise_for_problems(self, name: str = "training_file") -> None:
        if self.problems:
            raise InvalidTrainingDataError(name, self.problems)
        if not self.conversations:
            raise InvalidTrainingDataError(name, [LineProblem(0, "the file holds no examples")])


def parse_jsonl(data: bytes) -> ParsedData:
    """Every example in ``data`` as an OpenAI-style conversation, and every bad line."""
    parsed = ParsedData()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        parsed.problems.append(LineProblem(line, "not valid UTF-8"))
        return parsed
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            parsed.problems.append(LineProblem(number, f"not valid JSON ({exc.msg})"))
            continue
        try:
            kind, conversation = convert(record)
        except ValueError as exc:
            parsed.problems.append(LineProblem(number, str(exc)))
            continue
        parsed.conversations.append(conversation)
        parsed.formats[kind] = parsed.formats.get(kind, 0) + 1
    return parsed


def convert(record: Any) -> tuple[str, Conversation]:
    """One JSON line as ``(format, conversation)``; ValueError says what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        return "openai", _check_conversation(_openai_messages(record["messages"]))
    if "conversations" in record:
        return "sharegpt", _check_conversation(_sharegpt_messages(record["conversations"]))
    if "instruction" in record or "output" in record:
        return "alpaca", _check_conversation(_alpaca_messages(record))
    raise ValueError(
        "unknown format: expected a 'messages' list (OpenAI chat), 'instruction'/'output' "
        "(Alpaca) or a 'conversations' list (ShareGPT)"
    )


def _openai_messages(messages: Any) -> Conversation:
    if not isinstance(messages, list):
        raise ValueError("'messages' must be a list")
    conversation: Conversation = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{index}] must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(
                f"messages[{index}].role must be one of {', '.join(ROLES)} (got {role!r})"
            )
        content = message.get("content")
        if isinstance(content, list):  # content parts: text only
            texts = [p.get("text") for p in content if isinstance(p, dict)]
            if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"messages[{index}].content parts must all be text parts")
            content = "".join(t for t in texts if isinstance(t, str))
        if not isinstance(content, str):
            raise ValueError(f"messages[{index}].content must be a string")
        conversation.append({"role": role, "content": content})
    return conversation


def _sharegpt_messages(turns: Any) -> Conversation:
    if not isinstance(turns, list):
        raise ValueError("'conversations' must be a list")
    conversation: Conversation = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ValueError(f"conversations[{index}] must be an object")
        role = _SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise ValueError(
                f"conversations[{index}].from must be one of human, gpt, system "
                f"(got {turn.get('from')!r})"
            )
        value = turn.get("value")
        if not isinstance(value, str):
            raise ValueError(f"conversations[{index}].value must be a string")
        conversation.append({"role": role, "content": value})
    return conversation


def _alpaca_messages(record: dict[str, Any]) -> Conversation:
    instruction, extra, output = (record.get(k, "") for k in ("instruction", "input", "output"))
    for key, value in (("instruction", instruction), ("input", extra), ("output", output)):
        if not isinstance(value, str):
            raise ValueError(f"'{key}' must be a string")
    prompt = f"{instruction}\n\n{extra}" if extra else instruction
    conversation: Conversation = []
    system = record.get("system")
    if isinstance(system, str) and system:
        conversation.append({"role": "system", "content": system})
    conversation += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return conversation


def _check_conversation(conversation: Conversation) -> Conversation:
    if not conversation:
        raise ValueError("the conversation is empty")
    if not any(m["role"] == "assistant" for m in conversation):
        raise ValueError("no assistant message to learn from")
    for index, message in enumerate(conversation):
        if message["role"] == "assistant" and not message["content"].strip():
            raise ValueError(f"message {index} (assistant) has empty content")
        if message["role"] == "system" and index != 0:
            raise ValueError(f"message {index}: a system message may only come first")
    return conversation


# -- tokenizing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where the model is not trained

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def tokenize_conversation(tokenizer: Any, conversation: Conversation) -> TokenizedExample:
    """The conversation in the model's chat template; labels only on assistant turns.

    The template is rendered for each prefix of the conversation: what an assistant turn
    adds to the text (after the generation prompt) is trained on, everything else is context.
    """
    segments: list[tuple[str, bool]] = []
    rendered = ""
    for index, message in enumerate(conversation):
        if message["role"] == "assistant":
            prompt = _render(tokenizer, conversation[:index], generation_prompt=True)
            segments.append((prompt[len(rendered) :], False))
            rendered = prompt
        full = _render(tokenizer, conversation[: index + 1], generation_prompt=False)
        if not full.startswith(rendered):
            # A template that rewrites earlier turns (say, drops old reasoning) cannot be
            # split into what the model reads and what it answers.
            raise InvalidTrainingDataError(
                "training_file",
                [LineProblem(0, "the model's chat template rewrites earlier turns")],
            )
        segments.append((full[len(rendered) :], message["role"] == "assistant"))
        rendered = full
    input_ids: list[int] = []
    labels: list[int] = []
    bos = tokenizer.bos_token_id
    for text, trained in segments:
        if not text:
            continue
        ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trained else [IGNORE_INDEX] * len(ids)
    if bos is not None and _adds_bos(tokenizer) and input_ids[:1] != [bos]:
        input_ids.insert(0, bos)
        labels.insert(0, IGNORE_INDEX)
    return TokenizedExample(input_ids, labels)


def _render(tokenizer: Any, conversation: Conversation, *, generation_prompt: bool) -> str:
    if not conversation:
        return ""
    text: str = tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=generation_prompt
    )
    return text


def _adds_bos(tokenizer: Any) -> bool:
    added = tokenizer("", add_special_tokens=True)["input_ids"]
    return bool(added[:1] == [tokenizer.bos_token_id])


def tokenize_text(tokenizer: Any, text: str) -> TokenizedExample:
    """Plain text, every token trained on (for perplexity on general held-out text)."""
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return TokenizedExample(ids, list(ids))


# -- packing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """``seq_len`` (or fewer, for the last) tokens of packed examples."""

    input_ids: list[int]
    labels: list[int]


def pack(examples: Iterable[TokenizedExample], seq_len: int, separator: int | None) -> list[Block]:
    """Examples end to end, cut into blocks of ``seq_len`` tokens: no padding anywhere.

    ``separator`` (the EOS id) goes between examples, labelled, so the model learns where an
    answer ends. The first label of every block is shifted away by the loss, so no token is
    lost twice.
    """
    stream_ids: list[int] = []
    stream_labels: list[int] = []
    for example in examples:
        stream_ids += example.input_ids
        stream_labels += example.labels
        if separator is not None and example.input_ids[-1:] != [separator]:
            stream_ids.append(separator)
            stream_labels.append(separator if example.labels[-1:] != [IGNORE_INDEX] else -100)
    blocks = []
    for start in range(0, len(stream_ids), seq_len):
        ids = stream_ids[start : start + seq_len]
        labels = stream_labels[start : start + seq_len]
        if len(ids) > 1 and any(label != IGNORE_INDEX for label in labels[1:]):
            blocks.append(Block(ids, labels))
    return blocks


def rows(examples: Iterable[TokenizedExample], seq_len: int, separator: int | None) -> list[Block]:
    """Each example in a block of its own (cut into ``seq_len`` pieces when longer).

    Unlike :func:`pack`, no example can read another: packed end to end, an example's answer
    is predicted with earlier examples in view, and on a small dataset of one pattern
    ("item 3 ... ember-21", "item 4 ... ember-28") the model learns to continue the
    neighbours instead of learning the answers. Training pads each batch to its longest row.
    """
    blocks: list[Block] = []
    for example in examples:
        blocks += pack([example], seq_len, separator)
    return blocks


def epoch_order(n_blocks: int, seed: int, epoch: int) -> list[int]:
    """The order blocks are visited in during ``epoch``: a pure function of its inputs, so
    a resumed run visits the very same blocks."""
    order = list(range(n_blocks))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def split_validation(
    conversations: Sequence[T], fraction: float, seed: int
) -> tuple[list[T], list[T]]:
    """Hold ``fraction`` of the conversations out for validation (at least one, when >1)."""
    indices = list(range(len(conversations)))
    random.Random(seed).shuffle(indices)
    held = max(1, round(len(indices) * fraction)) if len(indices) > 1 else 0
    held_out = set(indices[:held])
    train = [c for i, c in enumerate(conversations) if i not in held_out]
    valid = [c for i, c in enumerate(conversations) if i in held_out]
    return train, valid


@dataclass(frozen=True)
class DataSummary:
    """What a training run will cost, known before it starts."""

    examples: int
    tokens: int
    trained_tokens: int
    blocks: int
    steps_per_epoch: int
    total_steps: int
    formats: dict[str, int]

    def estimate_seconds(self, tokens_per_second: float) -> float:
        return (
            self.tokens / max(tokens_per_second, 1e-9) * (self.total_steps / self.steps_per_epoch)
        )
