"""The output side, through the real server: an answer that moderation (or PII policy)
refuses stops with ``content_filter`` in chat completions, completions and responses, streamed
and not; AIGC labels (GB 45438-2025), implicit on every generation and explicit by policy."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from ember.guard.aigc import FIELDS, HEADER, implicit_label, label_file, read_label
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
aigc_notice = true
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
    from ember.core.request_context import RequestContext
    from ember.core.types import ChatMessage
    from ember.errors import ContentPolicyViolationError

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


# --- AIGC labels ---------------------------------------------------------------------------


def assert_label(label: dict[str, str], content: str | None) -> None:
    assert set(label) == set(FIELDS)
    assert label["Label"] == "1"
    assert label["ContentProducer"] == "ember"
    assert label["ProduceID"].startswith("req_")
    if content is not None:
        assert label["ReservedCode1"] == hashlib.sha256(content.encode()).hexdigest()


def test_chat_answer_carries_both_labels(guarded_client: openai.OpenAI) -> None:
    raw = guarded_client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=ASK,
        max_tokens=12,
        seed=1,  # type: ignore[arg-type]
    )
    reply = raw.parse()
    content = reply.choices[0].message.content or ""
    assert content.endswith("\n\n本内容由人工智能生成 / AI-generated")  # explicit, by policy
    label = reply.model_extra["ember"]["aigc"]  # type: ignore[index]
    assert_label(label, content)
    assert json.loads(raw.headers[HEADER]) == label


def test_structured_answer_has_no_visible_notice(guarded_client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = guarded_client.chat.completions.create(
        model=MODEL,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=20,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},  # type: ignore[arg-type]
    )
    content = reply.choices[0].message.content or ""
    assert "AI-generated" not in content
    json.loads(content)
    assert_label(reply.model_extra["ember"]["aigc"], content)  # type: ignore[index]


def test_streams_carry_the_label_header(guarded_client: openai.OpenAI) -> None:
    with guarded_client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=ASK,
        max_tokens=8,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        label = json.loads(response.headers[HEADER])
        text = "".join((c.choices[0].delta.content or "") for c in response.parse() if c.choices)
    assert_label(label, None)
    assert label["ReservedCode1"] == ""  # the digest of a stream is not known up front
    assert text.endswith("AI-generated")


def test_completions_and_responses_are_labelled(guarded_client: openai.OpenAI) -> None:
    completion = guarded_client.completions.create(model=MODEL, prompt="Hello", max_tokens=4)
    assert_label(completion.model_extra["ember"]["aigc"], None)  # type: ignore[index]
    response = guarded_client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    assert_label(response.model_extra["ember"]["aigc"], None)  # type: ignore[index]


def test_multi_prompt_completion_label_covers_every_prompt(
    guarded_client: openai.OpenAI,
) -> None:
    completion = guarded_client.completions.create(
        model=MODEL, prompt=["Hello", "The sky is"], max_tokens=4, temperature=0
    )
    texts = [choice.text for choice in sorted(completion.choices, key=lambda c: c.index)]
    assert len(texts) == 2
    assert_label(completion.model_extra["ember"]["aigc"], "".join(texts))  # type: ignore[index]


def test_files_carry_the_label(tmp_path: Path) -> None:
    label = implicit_label("ember", "req_123", "text")
    doc = tmp_path / "answer.json"
    doc.write_text(json.dumps({"answer": "text"}))
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nGenerated.")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"a": 1}\n')
    image = tmp_path / "image.png"
    image.write_bytes(tiny_png())
    assert label_file(doc, label) == doc
    assert json.loads(doc.read_text())["answer"] == "text"
    assert label_file(notes, label) == notes
    assert notes.read_text().startswith("# Notes\nGenerated.\n<!-- AIGC: ")
    assert label_file(rows, label) == tmp_path / "rows.jsonl.aigc.json"
    assert rows.read_text() == '{"a": 1}\n'  # the data file itself is untouched
    assert label_file(image, label) == image
    for path in (doc, notes, rows, image):
        assert read_label(path) == label, path
    assert image.read_bytes().endswith(b"IEND\xaeB`\x82")  # still a well-formed PNG


def tiny_png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
