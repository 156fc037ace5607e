"""The llama.cpp scheduler in-process: same batch composition, same output; greedy drift.

Requests are queued while the test holds the scheduler's lock, so they are admitted together
and share every step: the batch composition is the same on every run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pytest

from ember.core.types import ChatMessage, GenerationChunk, OutputConstraint, SamplingParams
from ember.engines.base import engine_factory
from ember.engines.llamacpp import LlamaCppEngine
from ember.models.embedded import SMOLLM2_ID, embedded_models
from ember.settings import Settings

PROMPTS = (
    "Invent a name for a cat.",
    "Write a poem about the sea.",
    "Explain how a bicycle works.",
    "List ten animals that live in Africa.",
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    settings = Settings(home=tmp_path_factory.mktemp("ember-home"), context_length=2048)
    spec = next(s for s in embedded_models() if s.id == SMOLLM2_ID)
    loaded = engine_factory(spec.engine)(spec, settings)
    assert isinstance(loaded, LlamaCppEngine)
    yield loaded
    loaded.close()


def ids(engine: LlamaCppEngine, text: str) -> list[int]:
    return engine.tokenize(engine.chat_template.render([ChatMessage(role="user", content=text)]))


def together(
    engine: LlamaCppEngine,
    jobs: list[tuple[str, SamplingParams, OutputConstraint | None]],
) -> list[str]:
    """Run ``jobs`` admitted in the same step; their texts."""
    sinks: list[queue.SimpleQueue[GenerationChunk | BaseException]] = []
    with engine._scheduler._cond:  # hold admission until every job is queued
        for prompt, params, constraint in jobs:
            sink: queue.SimpleQueue[GenerationChunk | BaseException] = queue.SimpleQueue()
            engine.submit(
                ids(engine, prompt),
                params,
                constraint=constraint,
                cancel=threading.Event(),
                emit=sink.put,
            )
            sinks.append(sink)
    texts = []
    for sink in sinks:
        text = ""
        while True:
            item = sink.get(timeout=120)
            assert not isinstance(item, BaseException), item
            text += item.text
            if item.finish_reason is not None:
                break
        texts.append(text)
    return texts


def test_same_composition_same_output(engine: LlamaCppEngine) -> None:
    jobs: list[tuple[str, SamplingParams, OutputConstraint | None]] = [
        (PROMPTS[0], SamplingParams(temperature=1.0, seed=11, max_tokens=16), None),
        (PROMPTS[1], SamplingParams(temperature=0.0, max_tokens=16), None),
        (PROMPTS[2], SamplingParams(temperature=0.8, seed=5, max_tokens=16), None),
        (
            PROMPTS[3],
            SamplingParams(temperature=0.7, seed=3, max_tokens=40),
            OutputConstraint(kind="json_schema", schema={"type": "array", "maxItems": 3}),
        ),
    ]
    together(engine, jobs)  # the prompts are now in the prefix cache, as in every run below
    first = together(engine, jobs)
    second = together(engine, jobs)
    assert first == second
    third = together(
        engine,
        [(p, SamplingParams(temperature=1.0, seed=12, max_tokens=16), c) for p, _, c in jobs[:1]],
    )
    assert third[0] != first[0]


def test_greedy_alone_and_batched_start_the_same(engine: LlamaCppEngine) -> None:
    """Greedy output alone vs in a batch of four: the first tokens agree (drift comes later)."""
    greedy = SamplingParams(temperature=0.0, max_tokens=8)
    alone = [together(engine, [(p, greedy, None)])[0] for p in PROMPTS]
    batched = together(engine, [(p, greedy, None) for p in PROMPTS])
    agree = sum(a == b for a, b in zip(alone, batched, strict=True))
    assert agree >= 3, (alone, batched)
