"""Client mistakes get OpenAI-shaped errors with the right status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server

MODEL = "gpt-4o-mini"


def post(server: RunningServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.v1}{path}", timeout=60, **kwargs)


def assert_error(
    response: httpx.Response, status: int, code: str | None, param: str | None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert error["param"] == param


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
            404,
            "model_not_found",
            "model",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}]},
            400,
            "missing_required_parameter",
            "model",
        ),
        ({"model": MODEL, "messages": []}, 400, "invalid_value", "messages"),
        (
            {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "invalid_value",
            "messages[0].role",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 3},
            400,
            "invalid_value",
            "temperature",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2},
            400,
            "invalid_value",
            "top_logprobs",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "n": 50},
            400,
            "invalid_value",
            "n",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "stop": ["a", "b", "c", "d", "e"],
            },
            400,
            "invalid_value",
            "stop",
        ),
        (
            {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]},
            400,
            "invalid_value",
            "messages[0].tool_call_id",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "required",
            },
            400,
            "invalid_value",
            "tool_choice",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            400,
            "invalid_value",
            "tool_choice",
        ),
        (
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                    }
                ],
            },
            400,
            "unsupported_parameter",
            "messages[0].content",
        ),
        (
            {"model": "default-embedding", "messages": [{"role": "user", "content": "x"}]},
            400,
            "model_not_supported",
            "model",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000},
            400,
            "context_length_exceeded",
            "messages",
        ),
    ],
)
def test_bad_chat_requests(
    server: RunningServer, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    assert_error(post(server, "/chat/completions", json=body), status, code, param)


def test_invalid_json_body(server: RunningServer) -> None:
    response = post(
        server,
        "/chat/completions",
        content=b'{"model": ',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_json", None)


def test_prompt_longer_than_context(server: RunningServer) -> None:
    long_text = "hello " * 5000  # the test server's context is 2048 tokens
    body = {"model": MODEL, "messages": [{"role": "user", "content": long_text}]}
    assert_error(
        post(server, "/chat/completions", json=body), 400, "context_length_exceeded", "messages"
    )


def test_oversized_body_is_413(server: RunningServer) -> None:
    body = b'{"model": "x", "messages": [{"role": "user", "content": "' + b"a" * 1_100_000 + b'"}]}'
    response = post(
        server, "/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "request_too_large", None)


def test_unknown_route_and_method(server: RunningServer) -> None:
    assert_error(httpx.get(f"{server.v1}/nothing-here"), 404, "not_found", None)
    response = httpx.get(f"{server.v1}/chat/completions")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_openai_client_raises_typed_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=-1
        )


def test_api_keys_when_configured(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = 'preload = []\napi_keys = ["sk-test-123"]\n'
    server = start_server(tmp_path_factory.mktemp("keyed"), config)
    try:
        assert_error(httpx.get(f"{server.v1}/models"), 401, "missing_api_key", None)
        wrong = httpx.get(f"{server.v1}/models", headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "invalid_api_key", None)
        right = httpx.get(f"{server.v1}/models", headers={"Authorization": "Bearer sk-test-123"})
        assert right.status_code == 200
        keyed = client_for(server, "sk-test-123")
        assert any(m.id == "default" for m in keyed.models.list())
        with pytest.raises(openai.AuthenticationError):
            client_for(server, "bad").models.list()
        # health and metrics stay open for probes
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    finally:
        stop_server(server)
