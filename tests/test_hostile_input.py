"""Hostile and malformed input through the real server: a 4xx naming the parameter, never a
5xx, and the connection still serves the next request.

No model is loaded (the ``fake`` engine answers): every refusal here happens before a model
would run, and the one request that must succeed after each refusal is cheap.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, fake_config, start_server, stop_server

FAKE_CONFIG = fake_config()

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("hostile-home"), FAKE_CONFIG)
    yield running
    stop_server(running)


def _exchange(sock: socket.socket, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open connection, and its whole response."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    raw_head, _, rest = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-response"
        rest += chunk
    return status, headers, rest[:length]


def _refused_then_served(server: RunningServer, path: str, body: bytes) -> dict[str, Any]:
    """Send ``body``, expect a 400 in the OpenAI error shape, then a good chat on the same
    connection; returns the error object."""
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        status, headers, payload = _exchange(sock, path, body)
        assert status == 400, payload
        assert headers.get("connection", "").lower() != "close"
        error = json.loads(payload)["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        status, _, payload = _exchange(sock, "/v1/chat/completions", json.dumps(CHAT).encode())
        assert status == 200, payload
        assert json.loads(payload)["choices"][0]["message"]["content"] == "You said: hi"
    return error


LONE_SURROGATES = [
    # (endpoint, body with the escape \ud800 in JSON, the parameter named)
    (
        "/v1/chat/completions",
        '{"model": "echo", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        "messages[0].content",
    ),
    (
        "/v1/chat/completions",
        '{"model": "echo", "messages": [{"role": "user", "content": [{"type": "text", '
        '"text": "\\udfff"}]}]}',
        "messages[0].content[0].text",
    ),
    ("/v1/completions", '{"model": "echo", "prompt": ["ok", "\\ud83d"]}', "prompt[1]"),
    ("/v1/embeddings", '{"model": "echo", "input": "\\ud800"}', "input"),
    ("/v1/responses", '{"model": "echo", "input": "x\\udc00"}', "input"),
    (
        "/v1/responses",
        '{"model": "echo", "input": "hi", "metadata": {"k": "\\ud800"}}',
        "metadata.k",
    ),
    ("/v1/moderations", '{"input": "\\ud800"}', "input"),
    ("/v1/vector_stores", '{"name": "docs\\ud800"}', "name"),
]


@pytest.mark.parametrize(("path", "body", "param"), LONE_SURROGATES)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(
    server: RunningServer, path: str, body: str, param: str
) -> None:
    error = _refused_then_served(server, path, body.encode())
    assert error["param"] == param
    assert error["code"] == "invalid_unicode"


def test_a_surrogate_sent_as_raw_utf8_bytes_is_refused_too(server: RunningServer) -> None:
    # ED A0 80 is U+D800 encoded as if it were a character: not UTF-8, but Python's JSON
    # decoder lets it through as a lone surrogate.
    body = b'{"model": "echo", "messages": [{"role": "user", "content": "a\xed\xa0\x80"}]}'
    error = _refused_then_served(server, "/v1/chat/completions", body)
    assert error["param"] == "messages[0].content"


def test_a_refused_vector_store_is_not_created(server: RunningServer) -> None:
    before = httpx.get(f"{server.v1}/vector_stores").json()["data"]
    _refused_then_served(server, "/v1/vector_stores", b'{"name": "x\\ud800"}')
    assert httpx.get(f"{server.v1}/vector_stores").json()["data"] == before


WRONG_TYPES = [
    ("/v1/chat/completions", {**CHAT, "max_tokens": "10"}, "max_tokens"),
    ("/v1/chat/completions", {**CHAT, "max_completion_tokens": 10.5}, "max_completion_tokens"),
    ("/v1/chat/completions", {**CHAT, "stream": "true"}, "stream"),
    ("/v1/chat/completions", {**CHAT, "n": "2"}, "n"),
    ("/v1/chat/completions", {**CHAT, "n": True}, "n"),
    ("/v1/chat/completions", {**CHAT, "temperature": "0.5"}, "temperature"),
    ("/v1/chat/completions", {**CHAT, "seed": "7"}, "seed"),
    ("/v1/chat/completions", {**CHAT, "logprobs": 1}, "logprobs"),
    ("/v1/chat/completions", {**CHAT, "ember": {"cache": "yes"}}, "ember.cache"),
    ("/v1/completions", {"model": "echo", "prompt": "hi", "max_tokens": "5"}, "max_tokens"),
    ("/v1/completions", {"model": "echo", "prompt": "hi", "echo": "false"}, "echo"),
    (
        "/v1/responses",
        {"model": "echo", "input": "hi", "max_output_tokens": "64"},
        "max_output_tokens",
    ),
    ("/v1/responses", {"model": "echo", "input": "hi", "store": "false"}, "store"),
    ("/v1/embeddings", {"model": "echo", "input": "hi", "dimensions": "8"}, "dimensions"),
]


@pytest.mark.parametrize(("path", "body", "param"), WRONG_TYPES)
def test_a_wrongly_typed_value_is_refused_not_coerced(
    server: RunningServer, path: str, body: dict[str, Any], param: str
) -> None:
    error = _refused_then_served(server, path, json.dumps(body).encode())
    assert error["param"] == param


def test_numbers_keep_working_where_numbers_are_asked(server: RunningServer) -> None:
    # An integer is a number: temperature 1 and top_p 1 are what OpenAI's SDKs send.
    reply = httpx.post(
        f"{server.v1}/chat/completions",
        json={**CHAT, "temperature": 1, "top_p": 1, "max_tokens": 40, "stream": False},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def test_an_assistant_tool_call_without_arguments_is_refused(server: RunningServer) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    body = json.dumps({"model": "echo", "messages": messages}).encode()
    error = _refused_then_served(server, "/v1/chat/completions", body)
    assert error["param"] == "messages[1].tool_calls[0].function.arguments"
    assert error["code"] == "missing_required_parameter"


def test_nothing_above_crashes_the_server(server: RunningServer) -> None:
    assert server.process.poll() is None
    assert "Traceback" not in server.log()


def test_openapi_links_chain_a_created_id_to_its_resource(server: RunningServer) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    links = spec["paths"]["/v1/files"]["post"]["responses"]["200"]["links"]
    targets = {link["operationId"]: link["parameters"] for link in links.values()}
    retrieve = spec["paths"]["/v1/files/{file_id}"]["get"]["operationId"]
    assert targets[retrieve] == {"file_id": "$response.body#/id"}
    nested = spec["paths"]["/v1/vector_stores/{vector_store_id}/files"]["post"]["responses"]
    parameters = next(iter(nested["200"]["links"].values()))["parameters"]
    assert parameters["vector_store_id"] == "$request.path.vector_store_id"
