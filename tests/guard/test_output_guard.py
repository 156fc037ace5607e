"""Output guarding: an answer that moderation (or PII policy) refuses stops with
``content_filter`` in chat completions, completions and responses, streamed and not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ember.guard.analyzer import Analyzer
from ember.guard.moderation import LexiconModeration
from ember.guard.output_guard import MAX_HOLD, FilterChain, OutputGuard
from ember.guard.vault import PiiVault
from ember.services.guard_stage import GuardStage
from ember.settings import GuardPolicy, Settings
from tests.conftest import RunningServer, client_for, start_server, stop_server

MODEL = "smollm2-135m-instruct"
CONFIG = f"""
preload = ["{MODEL}"]
n_threads = 2
context_length = 2048

[guard]
output_moderation = "block"
moderation_threshold = 0.3
"""
THREAT = "I will kill you"
# A schema that forces the answer to be the threat: what the output guard must stop.
FORCED = {
    "type": "json_schema",
    "json_schema": {
        "name": "say",
        "schema": {
            "type": "object",
            "properties": {"say": {"const": THREAT}},
            "required": ["say"],
        },
    },
}
ASK = [{"role": "user", "content": "Say something."}]


def moderation_check(text: str) -> str | None:
    return "flagged" if LexiconModeration().classify(text).flagged else None


def test_benign_text_passes_unchanged() -> None:
    guard = OutputGuard(moderation_check)
    chunks = ["Hello", " there, ", "how are", " you today? I am", " fine.\nBye"]
    released = "".join(guard.feed(c) for c in chunks) + guard.flush()
    assert released == "".join(chunks)
    assert not guard.blocked


def test_text_is_held_only_to_a_clause_boundary() -> None:
    guard = OutputGuard(moderation_check)
    assert guard.feed("Hello wor") == ""
    assert guard.feed("ld. And") == "Hello world."
    assert guard.feed("x" * MAX_HOLD) != ""  # no boundary: released after MAX_HOLD


def test_phrase_split_across_chunks_is_stopped() -> None:
    guard = OutputGuard(moderation_check)
    released = guard.feed("Fine. I will ki") + guard.feed("ll you") + guard.flush()
    assert guard.blocked
    assert "kill" not in released
    assert guard.feed("more") == ""


def test_chain_restores_before_judging() -> None:
    vault = PiiVault()
    redacted = vault.redact(
        "call 13812345678", Analyzer(enabled=["phone_cn"]).analyze("call 13812345678")
    )
    assert "13812345678" not in redacted
    pii_guard = OutputGuard(
        lambda t: "pii" if Analyzer(enabled=["phone_cn"]).analyze(t, nlp=False) else None
    )
    chain = FilterChain([vault.stream_restorer(), pii_guard])
    out = chain.feed("Sure, <PHO") + chain.feed("NE_1> it is.") + chain.flush()
    assert chain.blocked and "13812345678" not in out


def test_pii_block_policy_stops_answers_with_personal_data(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, guard=GuardPolicy(pii="block"))
    stage = GuardStage(settings, Analyzer(), None, LexiconModeration())
    check = stage._output_check(settings.guard)
    assert check is not None
    assert check("Your number is 13812345678.") == "personal data: PHONE"
    assert check("Nothing personal here.") is None
    assert stage._output_check(GuardPolicy()) is None  # defaults hold nothing back


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("output-guard"), CONFIG)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def guarded_client(guarded: RunningServer) -> openai.OpenAI:
    return client_for(guarded)


def test_chat_answer_is_stopped(guarded_client: openai.OpenAI) -> None:
    reply = guarded_client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        max_tokens=40,
        response_format=FORCED,  # type: ignore[arg-type]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "content_filter"
    assert "kill" not in (choice.message.content or "")


def test_streamed_chat_answer_is_stopped(guarded_client: openai.OpenAI) -> None:
    stream = guarded_client.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=40,
        response_format=FORCED,  # type: ignore[arg-type]
        stream=True,
    )
    text, reasons = "", []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    assert reasons == ["content_filter"]
    assert "kill" not in text


def test_benign_chat_answer_is_untouched(guarded_client: openai.OpenAI) -> None:
    reply = guarded_client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12, seed=1)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.choices[0].message.content


def test_flagged_request_is_refused_under_block(tmp_path: Path) -> None:
    from ember.core.types import ChatMessage
    from ember.errors import ContentPolicyViolationError
    from ember.services.pipeline import RequestContext

    settings = Settings(home=tmp_path, guard=GuardPolicy(moderation="block"))
    stage = GuardStage(settings, Analyzer(enabled=["email"]), None, LexiconModeration())
    ctx = RequestContext("chat.completions", "m", [ChatMessage(role="user", content=THREAT)])
    with pytest.raises(ContentPolicyViolationError, match="harassment"):
        stage._inspect(ctx, settings.guard)


def test_completion_is_stopped(guarded_client: openai.OpenAI) -> None:
    # Requests are only flagged here (moderation = "flag"); the greedy model repeats the
    # threat, and the answer is stopped.
    prompt = "".join(f"Line {i}: I will kill you\n" for i in range(1, 6)) + "Line 6:"
    reply = guarded_client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=40, temperature=0
    )
    assert reply.choices[0].finish_reason == "content_filter", reply.choices[0].text
    assert "kill" not in reply.choices[0].text


def test_response_is_incomplete(guarded_client: openai.OpenAI) -> None:
    fmt = {"type": "json_schema", **FORCED["json_schema"]}  # type: ignore[dict-item]
    response = guarded_client.responses.create(
        model=MODEL,
        input="Say something.",
        max_output_tokens=40,
        text={"format": fmt},  # type: ignore[arg-type]
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"
    assert "kill" not in response.output_text


def test_streamed_response_is_incomplete(guarded_client: openai.OpenAI) -> None:
    fmt = {"type": "json_schema", **FORCED["json_schema"]}  # type: ignore[dict-item]
    events = list(
        guarded_client.responses.create(
            model=MODEL,
            input="Say something.",
            max_output_tokens=40,
            text={"format": fmt},  # type: ignore[arg-type]
            stream=True,
        )
    )
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]
    deltas = "".join(
        getattr(e, "delta", "") for e in events if e.type == "response.output_text.delta"
    )
    assert "kill" not in deltas


def test_streamed_completion_is_stopped(guarded_client: openai.OpenAI) -> None:
    prompt = "".join(f"Line {i}: I will kill you\n" for i in range(1, 6)) + "Line 6:"
    stream = guarded_client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=40, temperature=0, stream=True
    )
    text, reasons = "", []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.text
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    assert reasons == ["content_filter"]
    assert "kill" not in text
