"""/v1/models, aliases and loading/unloading through the real server."""

from __future__ import annotations

import httpx
import openai

from tests.conftest import SMALL_MODEL, RunningServer


def test_lists_embedded_models_and_aliases(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {
        "qwen2.5-coder-0.5b-instruct",
        SMALL_MODEL,
        "smollm2-135m-instruct-transformers",
        "multilingual-e5-small",
        "all-minilm-l6-v2",
        "default",
        "default-embedding",
        "gpt-4o-mini",
    } <= ids


def test_retrieve_model_and_alias(client: openai.OpenAI) -> None:
    model = client.models.retrieve(SMALL_MODEL)
    assert model.id == SMALL_MODEL and model.object == "model"
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    try:
        client.models.retrieve("missing-model")
    except openai.NotFoundError as exc:
        assert exc.code == "model_not_found"
    else:
        raise AssertionError("expected 404")


def test_load_and_unload(server: RunningServer, client: openai.OpenAI) -> None:
    loaded = httpx.get(f"{server.v1}/ember/models/loaded").json()
    assert SMALL_MODEL in [m["id"] for m in loaded["data"]]
    assert httpx.post(f"{server.v1}/ember/models/gpt-4o-mini/unload").json()["was_loaded"]
    loaded = httpx.get(f"{server.v1}/ember/models/loaded").json()
    assert SMALL_MODEL not in [m["id"] for m in loaded["data"]]
    # the next request loads it again on demand
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert reply.choices[0].message.content is not None
    loaded = httpx.get(f"{server.v1}/ember/models/loaded").json()
    assert SMALL_MODEL in [m["id"] for m in loaded["data"]]


def test_health_metrics_openapi(server: RunningServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    health = httpx.get(f"{server.base_url}/healthz").json()
    assert health["status"] == "ok"
    metrics = httpx.get(f"{server.base_url}/metrics").text
    assert 'ember_completion_tokens_total{model="smollm2-135m-instruct"}' in metrics
    assert "ember_time_to_first_token_seconds_bucket" in metrics
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"):
        assert path in spec["paths"]
