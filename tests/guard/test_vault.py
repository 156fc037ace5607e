"""Reversible redaction, including a streamed answer whose placeholders arrive split."""

from __future__ import annotations

import pytest

from ember.guard.spans import Span
from ember.guard.vault import PiiVault, apply_operator, mask

TEXT = "Call 13812345678 or mail a@b.com; again: 13812345678."


def spans_of(text: str, *values: tuple[str, str]) -> list[Span]:
    found = []
    for entity_type, value in values:
        start = 0
        while (index := text.find(value, start)) >= 0:
            found.append(
                Span(type=entity_type, start=index, end=index + len(value), score=1.0, text=value)
            )
            start = index + len(value)
    return found


SPANS = spans_of(TEXT, ("PHONE", "13812345678"), ("EMAIL", "a@b.com"))


def test_same_value_same_placeholder_and_restore_roundtrip() -> None:
    vault = PiiVault()
    redacted = vault.redact(TEXT, SPANS)
    assert redacted == "Call <PHONE_1> or mail <EMAIL_1>; again: <PHONE_1>."
    assert vault.restore(redacted) == TEXT
    # a later turn of the same conversation reuses the numbering
    assert vault.redact("13812345678", spans_of("13812345678", ("PHONE", "13812345678"))) == (
        "<PHONE_1>"
    )
    assert vault.restore("unknown <PHONE_9> stays") == "unknown <PHONE_9> stays"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_stream_restore_across_chunk_boundaries(size: int) -> None:
    vault = PiiVault()
    answer = vault.redact(TEXT, SPANS) + " Done <"
    restorer = vault.stream_restorer()
    out = "".join(restorer.feed(answer[i : i + size]) for i in range(0, len(answer), size))
    out += restorer.flush()
    assert out == TEXT + " Done <"


def test_other_operators() -> None:
    assert apply_operator(TEXT, SPANS, "mask").startswith("Call *******5678 or mail")
    hashed = apply_operator(TEXT, SPANS, "hash")
    assert "13812345678" not in hashed and hashed.count("<PHONE:") == 2
    assert apply_operator(TEXT, SPANS, "drop") == "Call  or mail ; again: ."
    assert mask("6222 0212 3456 7890") == "**** **** **** 7890"
