"""Synthetic question/answer data: passages, checks, deduplication, and the CLI on SmolLM2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.adapt.data import parse_jsonl
from ember.adapt.synth import QAPair, keep_good, parse_pairs, passages, problem
from tests.conftest import RunningServer, client_for, start_server, stop_server

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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = 'preload = ["smollm2-135m-instruct"]\nn_threads = 2\ncontext_length = 2048\n'
    running = start_server(tmp_path_factory.mktemp("synth"), config)
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
            str(out), "--model", "smollm2-135m-instruct", "--per-passage", "3", "--upload",
            "--base-url", server.v1,
        ],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    kept = int(first.split()[0])
    assert first.endswith(f"from 1 passages written to {out}")
    parsed = parse_jsonl(out.read_bytes())
    assert not parsed.problems and len(parsed.conversations) == kept
    for conversation in parsed.conversations:
        assert (
            problem(QAPair(conversation[0]["content"], conversation[1]["content"], document))
            is None
        )
    if kept:
        uploaded = result.stdout.splitlines()[-1].removeprefix("uploaded as ")
        assert client.files.retrieve(uploaded).purpose == "fine-tune"
