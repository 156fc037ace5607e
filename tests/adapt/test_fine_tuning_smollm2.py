"""One job on the real embedded SmolLM2 (its GGUF dequantized by transformers), end to end."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, client_for, start_server, stop_server

SMOLLM2 = "smollm2-135m-instruct"
CONFIG = """
preload = []
n_threads = 2
context_length = 2048
fine_tuning_threads = 2
"""
ANSWER = "Ember keeps every model on your own machine."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("ft-smollm2"), CONFIG)
    yield running
    stop_server(running)


def test_smollm2_fine_tunes_from_its_gguf_and_answers(server: RunningServer) -> None:
    client = client_for(server)
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Where does Ember keep models? ({i})"},
                {"role": "assistant", "content": ANSWER},
            ]
        }
        for i in range(6)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    file_id = client.files.create(file=("t.jsonl", io.BytesIO(data)), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model=SMOLLM2,
        training_file=file_id,
        suffix="where",
        seed=1,
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 5}
            },
        },
        extra_body={"ember": {"seq_len": 128, "max_steps": 4, "checkpoint_every": 2}},
    )
    deadline = time.monotonic() + 800
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, "the SmolLM2 job took too long"
        time.sleep(1)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:{SMOLLM2}:where:{job.id.removeprefix('ftjob-')}"
    ppl = job.model_extra["ember"]["perplexity"]
    assert ppl["after"]["validation"] < ppl["before"]["validation"]
    assert ppl["before"]["general"] < 100  # a real model reads English well

    answer = client.chat.completions.create(
        model=job.fine_tuned_model,
        messages=[{"role": "user", "content": "Where does Ember keep models? (9)"}],
        max_tokens=16,
        temperature=0,
    )
    assert answer.system_fingerprint == "ember-transformers"
    assert answer.choices[0].message.content
