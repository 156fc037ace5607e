"""Synthetic question/answer data: passages, checks, deduplication; jobs through the API and
the CLI on SmolLM2, from uploaded files and from a vector store; resume after a kill."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path

import httpx
import openai
import pytest

from ember.adapt.data import parse_jsonl
from ember.adapt.synth import QAPair, keep_good, parse_pairs, passages, problem
from tests.conftest import RunningServer, client_for, home_database, start_server, stop_server

PASSAGE = (
    "The Rhine rises in the Swiss Alps and flows north to the North Sea. Its delta lies in the "
    "Netherlands, where the river splits into several branches near Nijmegen."
)


def test_passages_follow_paragraphs_and_cut_long_ones_at_sentences() -> None:
    text = "Short intro.\n\n" + ("A sentence about rivers. " * 80) + "\n\n" + PASSAGE
    cut = passages(text, max_chars=400, min_chars=20)
    assert all(len(p) <= 400 for p in cut)
    assert all(p.endswith(".") for p in cut)
    assert cut[-1].endswith("Nijmegen.")
    assert passages("tiny", min_chars=20) == []


@pytest.mark.parametrize(
    ("question", "answer", "reason"),
    [
        ("Where does the Rhine rise?", "In the Swiss Alps.", None),
        ("Where does the Rhine rise", "In the Swiss Alps.", "not a question"),
        ("Why?", "In the Swiss Alps.", "too short"),
        ("Where does the Rhine rise?", "", "empty"),
        ("Where does the Rhine rise?", "Where does the Rhine rise?", "repeats the question"),
        ("Where does the Rhine rise?", "On the moon, near a crater.", "not taken from"),
        ("莱茵河发源于哪里？", "瑞士阿尔卑斯山", "not taken from"),
    ],
)
def test_a_pair_is_checked_against_its_passage(
    question: str, answer: str, reason: str | None
) -> None:
    found = problem(QAPair(question, answer, PASSAGE))
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_duplicates_are_dropped_and_counted() -> None:
    reply = json.dumps(
        {
            "pairs": [
                {"question": "Where does the Rhine rise?", "answer": "In the Swiss Alps."},
                {"question": "where does the  Rhine rise?", "answer": "The Swiss Alps."},
                {"question": "Where is its delta?", "answer": "In the Netherlands."},
                {"question": "What?", "answer": "x"},
            ]
        }
    )
    kept, dropped = keep_good(parse_pairs(reply, PASSAGE))
    assert [p.question for p in kept] == ["Where does the Rhine rise?", "Where is its delta?"]
    assert dropped == {"a duplicate question": 1, "the question is too short or too long": 1}
    assert parse_pairs("not json", PASSAGE) == []
    lines = "\n".join(p.to_chat_line("Be brief.") for p in kept).encode()
    parsed = parse_jsonl(lines)
    assert not parsed.problems and parsed.conversations[0][0]["role"] == "system"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[RunningServer]:
    config = 'preload = ["smollm2-135m-instruct"]\nn_threads = 2\ncontext_length = 2048\n'
    running = start_server(tmp_path_factory.mktemp("synth"), backend + config)
    yield running
    stop_server(running)


def test_cli_writes_valid_training_data_from_uploaded_documents(
    server: RunningServer, tmp_path: Path
) -> None:
    client = client_for(server)
    document = f"{PASSAGE}\n\nParis is the capital of France. It lies on the river Seine."
    file_id = client.files.create(
        file=("doc.txt", io.BytesIO(document.encode())), purpose="user_data"
    ).id
    out = tmp_path / "pairs.jsonl"
    env = {**os.environ, "EMBER_HOME": str(server.home), "COLUMNS": "200"}
    result = subprocess.run(
        [
            sys.executable, "-m", "ember", "data", "synth", "--file", file_id, "--output",
            str(out), "--model", "smollm2-135m-instruct", "--per-passage", "3",
            "--base-url", server.v1,
        ],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    kept = int(first.split()[0])
    assert kept > 0, result.stdout
    assert first.endswith(f"from 1 passages written to {out}")
    parsed = parse_jsonl(out.read_bytes())
    assert not parsed.problems and len(parsed.conversations) == kept
    for conversation in parsed.conversations:
        assert (
            problem(QAPair(conversation[0]["content"], conversation[1]["content"], document))
            is None
        )
    uploaded = result.stdout.splitlines()[-1].removeprefix("uploaded as ")
    assert client.files.retrieve(uploaded).purpose == "fine-tune"
    assert client.files.content(uploaded).read() == out.read_bytes()
    label = json.loads((tmp_path / "pairs.jsonl.aigc.json").read_text())["AIGC"]
    assert label["Label"] == "1" and label["ReservedCode1"] == sha256(out.read_bytes()).hexdigest()


SYNTH_JOBS = "/ember/synth_jobs"
RIVERS = "\n\n".join(
    f"The river {name} is {length} kilometres long. It flows through {land} and reaches the "
    f"sea at {mouth}, where its water meets the tide. Fishermen along the {name} catch trout "
    "in spring and eels in autumn, and barges carry grain downstream all year."
    for name, length, land, mouth in [
        ("Rhine", 1230, "Germany", "Rotterdam"),
        ("Elbe", 1094, "the Czech Republic", "Cuxhaven"),
        ("Loire", 1006, "France", "Saint-Nazaire"),
        ("Vistula", 1047, "Poland", "Gdansk"),
        ("Tagus", 1007, "Spain", "Lisbon"),
        ("Oder", 840, "Poland", "Szczecin"),
        ("Weser", 452, "Germany", "Bremerhaven"),
        ("Seine", 777, "France", "Le Havre"),
        ("Ebro", 930, "Spain", "Amposta"),
        ("Danube", 2850, "ten countries", "the Black Sea"),
        ("Thames", 346, "England", "Southend"),
        ("Douro", 897, "Portugal", "Porto"),
    ]
)


def call(client: openai.OpenAI, method: str, path: str, body: object = None) -> dict[str, object]:
    """An Ember extension route through the official client's own request methods."""
    if method == "POST":
        response = client.post(path, cast_to=httpx.Response, body=body)
    else:
        response = client.get(path, cast_to=httpx.Response)
    data: dict[str, object] = response.json()
    return data


def wait_job(client: openai.OpenAI, job_id: str, *, until: tuple[str, ...]) -> dict[str, object]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = call(client, "GET", f"{SYNTH_JOBS}/{job_id}")
        if job["status"] in until:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not reach {until}")


def upload(client: openai.OpenAI, text: str, name: str = "rivers.md") -> str:
    return client.files.create(file=(name, io.BytesIO(text.encode())), purpose="user_data").id


def test_a_job_from_a_vector_store_writes_a_checked_labelled_training_file(
    server: RunningServer,
) -> None:
    client = client_for(server)
    store = client.vector_stores.create(name="rivers", file_ids=[upload(client, RIVERS)])
    deadline = time.monotonic() + 300
    while client.vector_stores.retrieve(store.id).file_counts.completed < 1:
        assert time.monotonic() < deadline, "ingestion did not finish"
        time.sleep(0.5)
    job = call(
        client,
        "POST",
        SYNTH_JOBS,
        {"model": "smollm2-135m-instruct", "vector_store_id": store.id, "max_passages": 2},
    )
    assert job["object"] == "ember.synth_job" and job["status"] == "queued"
    assert job["passages"] == {"total": 2, "completed": 0}
    done = wait_job(client, str(job["id"]), until=("succeeded", "failed"))
    assert done["status"] == "succeeded", done["error"]
    assert done["passages"] == {"total": 2, "completed": 2}
    pairs = done["pairs"]
    assert isinstance(pairs, dict) and pairs["kept"] > 0
    assert pairs["written"] == pairs["kept"] + sum(pairs["dropped"].values())
    data = client.files.content(str(done["output_file_id"])).read()
    assert client.files.retrieve(str(done["output_file_id"])).purpose == "fine-tune"
    parsed = parse_jsonl(data)
    assert not parsed.problems and len(parsed.conversations) == pairs["kept"]
    for conversation in parsed.conversations:
        assert (
            problem(QAPair(conversation[0]["content"], conversation[1]["content"], RIVERS)) is None
        )
    label = done["aigc"]
    assert isinstance(label, dict) and label["ReservedCode1"] == sha256(data).hexdigest()
    listed = call(client, "GET", f"{SYNTH_JOBS}?limit=1")
    assert [j["id"] for j in listed["data"]] == [job["id"]]  # type: ignore[index, union-attr]
    with pytest.raises(openai.ConflictError):
        call(client, "POST", f"{SYNTH_JOBS}/{job['id']}/cancel")


@pytest.mark.parametrize(
    ("body", "error", "param"),
    [
        ({}, openai.BadRequestError, "vector_store_id"),
        ({"file_ids": ["file-missing"]}, openai.NotFoundError, "file_id"),
        ({"vector_store_id": "vs_missing"}, openai.NotFoundError, None),
        ({"file_ids": ["FILE"], "model": "no-such-model"}, openai.NotFoundError, "model"),
        ({"file_ids": ["FILE"], "questions_per_passage": 0}, openai.BadRequestError, None),
        ({"file_ids": ["SHORT"]}, openai.BadRequestError, "file_ids"),
        ({"file_ids": ["FILE"], "colour": "red"}, openai.BadRequestError, None),
    ],
)
def test_bad_synth_requests_are_openai_errors(
    server: RunningServer, body: dict[str, object], error: type[Exception], param: str | None
) -> None:
    client = client_for(server)
    ids = {"FILE": upload(client, RIVERS), "SHORT": upload(client, "Too short.", "short.txt")}
    if "file_ids" in body:
        body = {**body, "file_ids": [ids.get(f, f) for f in body["file_ids"]]}  # type: ignore[attr-defined]
    with pytest.raises(error) as raised:
        call(client, "POST", SYNTH_JOBS, body)
    assert isinstance(raised.value, openai.APIStatusError)
    if param is not None:
        assert raised.value.body["param"] == param  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        call(client, "GET", f"{SYNTH_JOBS}/synthjob-missing")


def test_a_cancelled_job_stops_and_stays_cancelled(server: RunningServer) -> None:
    client = client_for(server)
    body = {"model": "smollm2-135m-instruct", "file_ids": [upload(client, RIVERS * 4)]}
    job = call(client, "POST", SYNTH_JOBS, body)
    cancelled = call(client, "POST", f"{SYNTH_JOBS}/{job['id']}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    time.sleep(3)
    again = call(client, "GET", f"{SYNTH_JOBS}/{job['id']}")
    assert again["status"] == "cancelled" and again["output_file_id"] is None


def test_a_killed_server_resumes_the_job_where_it_stopped(tmp_path: Path, database: str) -> None:
    on = f'database_url = "{database}"\n' if "://" in database else ""  # else the home's file
    config = on + 'preload = ["smollm2-135m-instruct"]\nn_threads = 2\ncontext_length = 2048\n'
    home = tmp_path / "home"
    running = start_server(home, config)
    try:
        client = client_for(running)
        body = {
            "model": "smollm2-135m-instruct",
            "file_ids": [upload(client, RIVERS)],
            "questions_per_passage": 2,
        }
        job = call(client, "POST", SYNTH_JOBS, body)
        total = job["passages"]["total"]  # type: ignore[index]
        assert total >= 2
        deadline = time.monotonic() + 300
        while call(client, "GET", f"{SYNTH_JOBS}/{job['id']}")["passages"]["completed"] < 1:  # type: ignore[index]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        running.process.kill()  # SIGKILL: no chance to finish or flush anything
        running.process.wait()
    finally:
        stop_server(running)
    before = call_offline(home, str(job["id"]))
    assert before["status"] == "running" and 1 <= before["passages"]["completed"] < total  # type: ignore[index, operator]

    restarted = start_server(home, config)
    try:
        client = client_for(restarted)
        done = wait_job(client, str(job["id"]), until=("succeeded", "failed"))
        assert done["status"] == "succeeded", done["error"]
        assert done["passages"] == {"total": total, "completed": total}
    finally:
        stop_server(restarted)


def call_offline(home: Path, job_id: str) -> dict[str, object]:
    """The job as the database holds it, read while no server runs."""
    from ember.store import Store

    store = Store(home_database(home))
    try:
        job = store.synth.get(job_id)
    finally:
        store.close()
    assert job is not None
    return job
