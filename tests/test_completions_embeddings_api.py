"""/v1/completions and /v1/embeddings through the real server."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

MODEL = "gpt-4o-mini"


def test_completion_text_usage_and_logprobs(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0, logprobs=2
    )
    choice = reply.choices[0]
    assert reply.object == "text_completion"
    assert "Paris" in choice.text
    assert choice.logprobs is not None and len(choice.logprobs.tokens or []) == 6
    assert "".join(choice.logprobs.tokens or []) == choice.text
    assert reply.usage is not None and reply.usage.completion_tokens == 6


def test_completion_batch_echo_and_stream(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=MODEL, prompt=["One, two,", "Red, green,"], max_tokens=4, temperature=0, echo=True
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].text.startswith("One, two,")
    assert reply.choices[1].text.startswith("Red, green,")
    stream = client.completions.create(
        model=MODEL, prompt="One, two,", max_tokens=4, temperature=0, stream=True
    )
    streamed = "".join(chunk.choices[0].text for chunk in stream if chunk.choices)
    single = client.completions.create(model=MODEL, prompt="One, two,", max_tokens=4, temperature=0)
    assert streamed == single.choices[0].text


@pytest.mark.parametrize("model", ["default-embedding", "all-minilm-l6-v2"])
def test_embeddings_float_and_base64_agree(client: openai.OpenAI, model: str) -> None:
    texts = ["The cat sits on the mat.", "A feline rests on a rug.", "Stock markets fell."]
    floats = client.embeddings.create(model=model, input=texts)
    assert [d.index for d in floats.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]
    assert floats.usage.prompt_tokens > 0
    encoded = client.embeddings.create(model=model, input=texts, encoding_format="base64")
    # asked for explicitly, base64 reaches the caller as it came over the wire
    decoded = np.array(
        [np.frombuffer(base64.b64decode(str(d.embedding)), dtype="<f4") for d in encoded.data]
    )
    assert np.allclose(decoded, vectors, atol=1e-6)


def test_chinese_retrieval_with_default_embedding(client: openai.OpenAI) -> None:
    query = client.embeddings.create(model="default-embedding", input="中国的首都是哪里？")
    passages = client.embeddings.create(
        model="default-embedding",
        input=["北京是中国的首都。", "猫喜欢睡觉。", "Python is a programming language."],
        extra_body={"ember": {"input_type": "passage"}},
    )
    q = np.array(query.data[0].embedding)
    scores = [float(np.dot(q, p.embedding)) for p in passages.data]
    assert scores.index(max(scores)) == 0


def test_raw_base64_is_little_endian_float32(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="default-embedding", input="hello", encoding_format="base64"
    )
    payload = raw.http_response.json()["data"][0]["embedding"]
    vector = np.frombuffer(base64.b64decode(payload), dtype="<f4")
    assert vector.shape == (384,)


def test_embedding_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model=MODEL, input="x")
    assert chat_model.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as dims:
        client.embeddings.create(model="default-embedding", input="x", dimensions=128)
    assert dims.value.param == "dimensions"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.embeddings.create(model="all-minilm-l6-v2", input="word " * 2000)
    assert too_long.value.code == "context_length_exceeded"
