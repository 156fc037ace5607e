"""``POST /v1/ember/fine_tuning/check``: the data check of a fine-tuning job, without the job.

A real server (the ``fake`` engine: no model is trained here) and files uploaded with the
official client. The findings are the ones job creation refuses with, as data.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server

CONFIG = """
preload = []

[models.echo]
path = "echo"
engine = "fake"
"""
GOOD = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"instruction": "Add 1 and 1", "output": "2"},
]
PREFERENCE = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello!"}],
    "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
}


@pytest.fixture(scope="module")
def check_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("check-home"), CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(check_server: RunningServer) -> Iterator[openai.OpenAI]:
    with client_for(check_server) as opened:
        yield opened


def upload(client: openai.OpenAI, lines: list[str], purpose: str = "fine-tune") -> str:
    data = "\n".join(lines).encode()
    return client.files.create(file=("data.jsonl", io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


def check(server: RunningServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.v1}/ember/fine_tuning/check", json=body, timeout=30)


def test_a_good_file_is_counted_by_format(
    client: openai.OpenAI, check_server: RunningServer
) -> None:
    training = upload(client, [json.dumps(line) for line in GOOD])
    validation = upload(client, [json.dumps(GOOD[0])])

    found = check(check_server, {"training_file": training, "validation_file": validation})

    assert found.status_code == 200
    assert found.json() == {
        "object": "ember.fine_tuning.check",
        "method": "supervised",
        "model": None,
        "ok": True,
        "files": {
            "training_file": {
                "id": training,
                "filename": "data.jsonl",
                "bytes": len("\n".join(json.dumps(line) for line in GOOD).encode()),
                "examples": 2,
                "formats": {"openai": 1, "alpaca": 1},
                "problem_count": 0,
                "problems": [],
            },
            "validation_file": {
                "id": validation,
                "filename": "data.jsonl",
                "bytes": len(json.dumps(GOOD[0]).encode()),
                "examples": 1,
                "formats": {"openai": 1},
                "problem_count": 0,
                "problems": [],
            },
        },
    }


def test_every_bad_line_is_found_with_its_number(
    client: openai.OpenAI, check_server: RunningServer
) -> None:
    lines = [json.dumps(GOOD[0]), "{not json", json.dumps({"messages": [{"role": "bot"}]})]
    lines += ["[1, 2]"] * 60
    training = upload(client, lines)

    found = check(check_server, {"training_file": training}).json()

    assert found["ok"] is False
    report = found["files"]["training_file"]
    assert (report["examples"], report["problem_count"]) == (1, 62)
    assert len(report["problems"]) == 50  # the first 50, as the refusal lists them
    assert report["problems"][0]["line"] == 2
    assert report["problems"][0]["reason"].startswith("not valid JSON")
    assert report["problems"][1] == {
        "line": 3,
        "reason": "messages[0].role must be one of system, user, assistant (got 'bot')",
    }
    assert report["problems"][2] == {"line": 4, "reason": "each line must be a JSON object"}


def test_dpo_lines_are_checked_as_preferences(
    client: openai.OpenAI, check_server: RunningServer
) -> None:
    preference = upload(client, [json.dumps(PREFERENCE)])
    chat = upload(client, [json.dumps(GOOD[0])])

    good = check(check_server, {"training_file": preference, "method": "dpo"}).json()
    bad = check(check_server, {"training_file": chat, "method": "dpo"}).json()
    empty = check(check_server, {"training_file": upload(client, [" "])}).json()

    assert good["ok"] and good["files"]["training_file"]["formats"] == {"preference": 1}
    assert not bad["ok"] and bad["files"]["training_file"]["problems"][0]["line"] == 1
    assert empty["files"]["training_file"]["problems"] == [
        {"line": 0, "reason": "the file holds no examples"}
    ]


@pytest.mark.parametrize(
    ("body", "status", "param", "says"),
    [
        ({"training_file": "file-nope"}, 400, "training_file", "No such file: 'file-nope'"),
        ({"training_file": "ASSISTANTS"}, 400, "training_file", "has purpose 'assistants'"),
        ({"training_file": "GOOD", "model": "echo"}, 400, "model", "cannot be fine-tuned"),
        ({"training_file": "GOOD", "model": "nope"}, 404, "model", "does not exist"),
        ({"training_file": "GOOD", "method": "reinforcement"}, 400, "method", "supervised"),
    ],
)
def test_what_create_would_refuse_is_refused_alike(
    client: openai.OpenAI,
    check_server: RunningServer,
    body: dict[str, Any],
    status: int,
    param: str,
    says: str,
) -> None:
    ids = {
        "GOOD": upload(client, [json.dumps(GOOD[0])]),
        "ASSISTANTS": upload(client, [json.dumps(GOOD[0])], purpose="assistants"),
    }
    body = {k: ids.get(v, v) for k, v in body.items()}

    response = check(check_server, body)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"]
