"""Jobs on the real embedded SmolLM2 (its GGUF dequantized by transformers), end to end:
a taught pattern is learned with ``"auto"`` settings."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.adapt.test_fine_tuning_api import ember_cli
from tests.conftest import RunningServer, client_for, start_server, stop_server

SMOLLM2 = "smollm2-135m-instruct"
CONFIG = """
preload = []
n_threads = 2
context_length = 2048
fine_tuning_threads = 2
"""
DEADLINE_S = 900


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ft-smollm2"), CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return client_for(server)


def question(n: int) -> str:
    return f"What is the code word for item {n}?"


def code_word(n: int) -> str:
    return f"The code word for item {n} is ember-{7 * n}."


def jsonl(lines: list[Any]) -> io.BytesIO:
    return io.BytesIO("\n".join(json.dumps(line) for line in lines).encode())


def upload(client: openai.OpenAI, lines: list[Any]) -> str:
    return client.files.create(file=("data.jsonl", jsonl(lines)), purpose="fine-tune").id


def chat(n: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": question(n)},
            {"role": "assistant", "content": code_word(n)},
        ]
    }


def wait_done(client: openai.OpenAI, job_id: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"{job_id} took too long"
        time.sleep(2)
    assert job.status == "succeeded", job.error
    return job


def greedy(client: openai.OpenAI, model: str, text: str) -> str:
    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=24,
        temperature=0,
    )
    return (answer.choices[0].message.content or "").strip()


def test_a_taught_pattern_is_learned_with_auto_settings(
    server: RunningServer, client: openai.OpenAI
) -> None:
    taught = range(1, 41)
    job = client.fine_tuning.jobs.create(
        model=SMOLLM2,
        training_file=upload(client, [chat(n) for n in taught]),
        validation_file=upload(client, [chat(n) for n in range(41, 45)]),
        suffix="codes",
        seed=1,
    )
    assert job.hyperparameters.n_epochs == "auto"
    done = wait_done(client, job.id)

    # "auto" resolved from the data, and the events say to what and why.
    hyper = done.hyperparameters
    assert isinstance(hyper.n_epochs, int) and isinstance(hyper.batch_size, int)
    assert done.method.supervised.hyperparameters.n_epochs == hyper.n_epochs
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
    chosen = next(e for e in events if e.message.startswith("Hyperparameters: "))
    assert f"n_epochs={hyper.n_epochs}" in chosen.message and "(auto: " in chosen.message

    # The job's own learning check saw it learn, and its result file says so.
    check = done.model_extra["ember"]["learning_check"]
    assert check["learned"] is True, check
    assert check["after"]["loss"] < check["before"]["loss"]
    assert check["after"]["train_exact_match"]["rate"] >= 0.8
    assert check["before"]["train_exact_match"]["rate"] == 0.0
    assert any(e.message.startswith("Learning check: learned") for e in events)
    results = client.files.content(done.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(results)))
    assert float(rows[-1]["valid_loss"]) < float(rows[0]["valid_loss"])

    # Served by transformers: the taught answers, word for word; the held-back items in form.
    # Half the items (the job's own check scored 16 more, in the worker), to keep it short.
    model = done.fine_tuned_model
    asked = range(1, 41, 2)
    answers = {n: greedy(client, model, question(n)) for n in asked}
    learned = [n for n in asked if answers[n] == code_word(n)]
    assert len(learned) >= 16, answers
    for n in range(41, 45):
        assert re.fullmatch(rf"The code word for item {n} is ember-\d+\.", greedy(
            client, model, question(n)
        )), n  # fmt: skip

    # The base model does not know them: where taught, the fine-tuned answer differs.
    base = {n: greedy(client, SMOLLM2, question(n)) for n in (3, 17, 29)}  # asked above
    assert all(base[n] != code_word(n) for n in base), base
    assert all(answers[n] != base[n] for n in base if n in learned)

    # Every kept checkpoint is served with its own adapter, and answers what it was taught:
    # the newest (the last step) as the fine-tuned model does, the earlier ones (late in
    # training too: only the newest three are kept) the taught answers, not the base's.
    kept = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    total = done.model_extra["ember"]["data_summary"]["total_steps"]
    assert [c.step_number for c in kept] == [total, total - 10, total - 20]  # every 10 steps
    for checkpoint in kept:
        name = checkpoint.fine_tuned_model_checkpoint
        served = {n: greedy(client, name, question(n)) for n in base}
        if checkpoint is kept[0]:
            assert served == {n: answers[n] for n in base}, (name, served)
        taught = [n for n in served if served[n] == code_word(n)]
        assert len(taught) >= 2 and all(served[n] != base[n] for n in taught), (name, served)

    # The merged GGUF on llama.cpp answers as the fine-tuned model does.
    exported = ember_cli(server.home, "tune", "export", job.id, "--format", "gguf")
    assert exported.returncode == 0, exported.stderr
    gguf_model = f"{model}:gguf"
    on_llama = {n: greedy(client, gguf_model, question(n)) for n in (3, 17, 29)}
    assert sum(on_llama[n] == code_word(n) for n in on_llama) >= 2, on_llama
    assert all(on_llama[n] != base[n] for n in on_llama if on_llama[n] == code_word(n))


def colour(n: int) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"Which colour suits box {n}?"}]},
        "preferred_output": [{"role": "assistant", "content": "Blue suits it best."}],
        "non_preferred_output": [{"role": "assistant", "content": "Red suits it best."}],
    }


def test_a_dpo_job_shifts_the_preference_on_held_back_pairs(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(
        model=SMOLLM2,
        training_file=upload(client, [colour(n) for n in range(12)]),
        validation_file=upload(client, [colour(n) for n in range(100, 104)]),
        suffix="blue",
        seed=1,
        method={
            "type": "dpo",
            # Six steps (two passes in batches of four) keep it short; the rate stays "auto".
            "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 2, "batch_size": 4}},
        },
    )
    done = wait_done(client, job.id)
    assert done.method.dpo.hyperparameters.learning_rate_multiplier == 2.5  # DPO's auto rate
    assert done.model_extra["ember"]["data_summary"]["total_steps"] == 6

    # The job's learning check: on the four held-back pairs, the preferred answer's
    # log-probability margin over the non-preferred one rose, and the job says so.
    check = done.model_extra["ember"]["learning_check"]
    before, after = check["before"], check["after"]
    assert after["margin"] > before["margin"] + 1.0, check
    assert after["accuracy"] == 1.0 and check["learned"] is True, check
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
    verdict = next(e for e in events if e.message.startswith("Learning check: learned"))
    assert "held-back preference margin" in verdict.message
    assert verdict.data["before"]["margin"] == before["margin"]
    assert verdict.data["after"]["margin"] == after["margin"]
    trained = [e.data for e in events if e.data and "reward_margin" in e.data]
    assert len(trained) == 6

    served = client.chat.completions.create(
        model=done.fine_tuned_model,
        messages=[{"role": "user", "content": "Which colour suits box 101?"}],
        max_tokens=8,
        temperature=0,
    )
    assert served.model == done.fine_tuned_model and served.choices[0].message.content


def test_a_supervised_file_is_refused_for_dpo(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.fine_tuning.jobs.create(
            model=SMOLLM2,
            training_file=upload(client, [chat(1), chat(2)]),
            method={"type": "dpo"},
        )
    assert "line 1" in str(refused.value) and "preferred_output" in str(refused.value)
