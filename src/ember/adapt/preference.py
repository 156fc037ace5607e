"""Preference data for DPO, in OpenAI's format, one JSON object per line::

    {"input": {"messages": [{"role": "user", "content": "..."}]},
     "preferred_output": [{"role": "assistant", "content": "..."}],
     "non_preferred_output": [{"role": "assistant", "content": "..."}]}

Every line is checked (and every bad line reported with its number) before a job is queued.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ember.adapt.data import (
    Conversation,
    LineProblem,
    _openai_messages,
    pack,
    tokenize_conversation,
)
from ember.adapt.objectives import PreferencePair
from ember.errors import InvalidTrainingDataError


@dataclass(frozen=True)
class Preference:
    prompt: Conversation
    preferred: str
    non_preferred: str


@dataclass
class ParsedPreferences:
    preferences: list[Preference] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)

    def raise_for_problems(self, name: str = "training_file") -> None:
        if self.problems:
            raise InvalidTrainingDataError(name, self.problems)
        if not self.preferences:
            raise InvalidTrainingDataError(name, [LineProblem(0, "the file holds no examples")])


def parse_preferences(data: bytes) -> ParsedPreferences:
    parsed = ParsedPreferences()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        parsed.problems.append(LineProblem(data[: exc.start].count(b"\n") + 1, "not valid UTF-8"))
        return parsed
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            parsed.preferences.append(convert_preference(json.loads(raw)))
        except json.JSONDecodeError as exc:
            parsed.problems.append(LineProblem(number, f"not valid JSON ({exc.msg})"))
        except ValueError as exc:
            parsed.problems.append(LineProblem(number, str(exc)))
    return parsed


def convert_preference(record: Any) -> Preference:
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    missing = [k for k in ("input", "preferred_output", "non_preferred_output") if k not in record]
    if missing:
        raise ValueError(
            f"a preference line needs 'input', 'preferred_output' and 'non_preferred_output' "
            f"(missing {', '.join(repr(m) for m in missing)})"
        )
    source = record["input"]
    if not isinstance(source, dict) or "messages" not in source:
        raise ValueError("'input' must be an object with a 'messages' list")
    prompt = _openai_messages(source["messages"])
    if not prompt or prompt[-1]["role"] == "assistant":
        raise ValueError("'input.messages' must end with a user (or system) message")
    answers = [_answer(record[k], k) for k in ("preferred_output", "non_preferred_output")]
    if answers[0] == answers[1]:
        raise ValueError("the preferred and non-preferred outputs are the same")
    return Preference(prompt, answers[0], answers[1])


def _answer(output: Any, key: str) -> str:
    if not isinstance(output, list) or len(output) != 1:
        raise ValueError(f"'{key}' must be a list of exactly one assistant message")
    messages = _openai_messages(output)
    if messages[0]["role"] != "assistant" or not messages[0]["content"].strip():
        raise ValueError(f"'{key}' must be one assistant message with content")
    return messages[0]["content"]


def tokenize_preference(
    tokenizer: Any, preference: Preference, seq_len: int, eos: int | None
) -> PreferencePair:
    """Both answers after the prompt, in the model's chat template, labelled on the answer."""

    def block(answer: str) -> Any:
        conversation = [*preference.prompt, {"role": "assistant", "content": answer}]
        example = tokenize_conversation(tokenizer, conversation)
        # One block each, however long: the answer must be scored whole.
        blocks = pack([example], max(seq_len, len(example.input_ids) + 1), eos)
        return blocks[0]

    return PreferencePair(block(preference.preferred), block(preference.non_preferred))
