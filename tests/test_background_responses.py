"""``background: true`` on ``/v1/responses``: a job polled by ``GET``, cancelled by ``POST
.../cancel``, and failed cleanly by a server that starts again, through the official client
against a real server on the ``fake`` engine (no model)."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from ember.store import Store
from ember.store.database import StoredResponse
from tests.conftest import client_for, start_server, stop_server

FAKE_CONFIG = """
preload = ["echo"]
n_threads = 1

[models.echo]
path = "echo"
engine = "fake"
context_length = 2048
"""


def _poll(client: openai.OpenAI, response_id: str) -> openai.types.responses.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        time.sleep(0.1)
    raise AssertionError("the background response did not finish")


def test_background_runs_polls_cancels_and_fails_cleanly_after_a_restart(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    server = start_server(home, FAKE_CONFIG)
    try:
        with client_for(server) as client:
            started = client.responses.create(model="echo", input="in the back", background=True)
            assert started.background is True and started.status in ("queued", "in_progress")
            assert started.output == [] and started.usage is None
            done = _poll(client, started.id)
            assert done.status == "completed" and done.output_text == "You said: in the back"
            assert done.usage is not None and done.usage.output_tokens > 0
            # Cancelling a finished one changes nothing; a foreground one cannot be cancelled.
            assert client.responses.cancel(started.id).status == "completed"
            foreground = client.responses.create(model="echo", input="now")
            with pytest.raises(openai.BadRequestError) as refused:
                client.responses.cancel(foreground.id)
            assert refused.value.body["param"] == "response_id"  # type: ignore[index]
            with pytest.raises(openai.NotFoundError):
                client.responses.cancel("resp_missing")
            with pytest.raises(openai.BadRequestError) as streamed:
                client.responses.create(model="echo", input="x", background=True, stream=True)
            assert streamed.value.body["param"] == "stream"  # type: ignore[index]
            with pytest.raises(openai.BadRequestError) as unstored:
                client.responses.create(model="echo", input="x", background=True, store=False)
            assert unstored.value.body["param"] == "store"  # type: ignore[index]
            body = client.responses.retrieve(started.id).model_dump(mode="json")
    finally:
        stop_server(server)

    # A server stopped while a background response ran: what the store held then.
    store = Store(home / "ember.db")
    body.update(id="resp_interrupted", status="in_progress", output=[], usage=None)
    store.save_response(
        StoredResponse(
            id="resp_interrupted",
            model=body["model"],
            created_at=body["created_at"],
            previous_response_id=None,
            conversation=[],
            response=body,
        )
    )
    store.background.set("resp_interrupted", "in_progress")
    store.close()
    server = start_server(home, FAKE_CONFIG)
    try:
        with client_for(server) as client:
            failed = client.responses.retrieve("resp_interrupted")
            assert failed.status == "failed"
            assert failed.error is not None and failed.error.code == "server_error"
            assert client.responses.retrieve(started.id).status == "completed"  # kept
    finally:
        stop_server(server)
