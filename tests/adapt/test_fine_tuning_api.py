"""Fine-tuning jobs through the real server and the official client, on the tiny model."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ember.store import Store
from tests.adapt.tiny_llama import build_tiny_llama
from tests.conftest import RunningServer, client_for, home_database, start_server, stop_server

TINY = "tiny-llama"
DEADLINE_S = 240


def config(model_dir: Path) -> str:
    return f"""
preload = []
n_threads = 1
context_length = 2048
fine_tuning_threads = 1

[models.{TINY}]
path = "{model_dir}"
engine = "transformers"
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Path:
    return tmp_path_factory.mktemp("ft-home")


@pytest.fixture(scope="module")
def server_config(tmp_path_factory: pytest.TempPathFactory, backend: str) -> str:
    return backend + config(build_tiny_llama(tmp_path_factory.mktemp("models") / TINY))


@pytest.fixture(scope="module")
def server(home: Path, server_config: str) -> Iterator[RunningServer]:
    running = start_server(home, server_config)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return client_for(server)


def jsonl(lines: list[Any]) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


def chat(question: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


TRAINING = [chat(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(30)]


def upload(client: openai.OpenAI, data: bytes, purpose: str = "fine-tune") -> str:
    return client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


def create(client: openai.OpenAI, file_id: str, n_epochs: int = 10, **ember: Any) -> Any:
    options = {"seq_len": 64, "checkpoint_every": 5, "max_steps": 20, **ember}
    return client.fine_tuning.jobs.create(
        model=TINY,
        training_file=file_id,
        suffix="sums",
        seed=3,
        method={
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    "n_epochs": n_epochs,
                    "batch_size": 2,
                    "learning_rate_multiplier": 25,
                }
            },
        },
        extra_body={"ember": options},
    )


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(client: openai.OpenAI, job_id: str, *statuses: str) -> Any:
    def check() -> Any:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status == "failed":
            raise AssertionError(f"job failed: {job.error}")
        return job if job.status in statuses else None

    return wait_for(check, f"{job_id} to be {statuses}")


def all_events(client: openai.OpenAI, job_id: str) -> list[Any]:
    return list(client.fine_tuning.jobs.list_events(job_id, limit=1000))


def losses(client: openai.OpenAI, job_id: str) -> dict[int, float]:
    """Loss by step; a step replayed after a resume keeps its last value."""
    by_step: dict[int, float] = {}
    for event in reversed(all_events(client, job_id)):  # oldest first
        if event.type == "metrics" and event.data and "train_loss" in event.data:
            by_step[event.data["step"]] = event.data["train_loss"]
    return by_step


def latest_step(client: openai.OpenAI, job_id: str) -> int:
    return max(losses(client, job_id), default=0)


def resumed_at(client: openai.OpenAI, job_id: str) -> int | None:
    """The step the newest worker resumed from, once it says so."""
    for event in all_events(client, job_id):  # newest first
        if event.message.startswith("Resumed from the checkpoint at step "):
            return int(event.message.rsplit(" ", 1)[1])
    return None


def newest_step(client: openai.OpenAI, job_id: str) -> int:
    """The step of the newest training event (a resumed worker's, after a resume)."""
    for event in all_events(client, job_id):  # newest first
        if event.type == "metrics" and event.data and "step" in event.data:
            return int(event.data["step"])
    return 0


def worker_pid(home: Path, job_id: str) -> int | None:
    store = Store(home_database(home))
    try:
        job = store.get_fine_tuning_job(job_id)
        return job.worker_pid if job else None
    finally:
        store.close()


def test_bad_lines_are_refused_with_their_numbers(client: openai.OpenAI) -> None:
    bad = jsonl(
        [TRAINING[0], "{oops", TRAINING[1], {"messages": [{"role": "user", "content": "q"}]}]
    )
    file_id = upload(client, bad)
    with pytest.raises(openai.BadRequestError) as caught:
        create(client, file_id)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "invalid_training_file"
    assert error["param"] == "training_file"
    assert "line 2: not valid JSON" in error["message"]
    assert "line 4: no assistant message" in error["message"]
    assert "line 1" not in error["message"] and "line 3" not in error["message"]
    assert list(client.fine_tuning.jobs.list()) == []  # nothing was queued


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"training_file": "file-nope"}, 400, "training_file"),
        ({"model": "no-such-model"}, 404, "model"),
        ({"method": {"type": "reinforcement"}}, 400, "method.type"),
        ({"method": {"type": "dpo"}}, 400, "training_file"),  # chat lines are not preferences
        ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0}}}}, 400, None),
        ({"suffix": "bad suffix!"}, 400, None),
        ({"ember": {"lora": {"rank": 0}}}, 400, None),
        ({"ember": {"unknown": 1}}, 400, None),
        (  # bounds on a number that may also be "auto" (was a 500)
            {
                "method": {
                    "type": "reinforcement",
                    "supervised": {"hyperparameters": {"n_epochs": "auto", "batch_size": "auto"}},
                }
            },
            400,
            "method.type",
        ),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
            400,
            None,
        ),
    ],
)
def test_invalid_requests_are_openai_errors(
    server: RunningServer, client: openai.OpenAI, change: dict[str, Any], status: int, param: Any
) -> None:
    body = {"model": TINY, "training_file": upload(client, jsonl(TRAINING)), **change}
    response = httpx.post(f"{server.v1}/fine_tuning/jobs", json=body, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param


def test_a_training_file_needs_the_fine_tune_purpose(client: openai.OpenAI) -> None:
    file_id = upload(client, jsonl(TRAINING), purpose="assistants")
    with pytest.raises(openai.BadRequestError, match="purpose 'fine-tune'"):
        create(client, file_id)


def test_unknown_job_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.cancel("ftjob-nope")


def test_job_trains_evaluates_and_its_model_answers(
    server: RunningServer, client: openai.OpenAI
) -> None:
    job = create(client, upload(client, jsonl(TRAINING)))
    assert job.status == "queued"
    assert job.model == TINY and job.seed == 3
    assert job.method.supervised.hyperparameters.n_epochs == 10
    assert job.model_extra["ember"]["lora"]["rank"] == 8
    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
    done = wait_status(client, job.id, "succeeded")
    assert done.fine_tuned_model == f"ft:{TINY}:sums:{job.id.removeprefix('ftjob-')}"
    assert done.trained_tokens > 0 and done.finished_at >= done.created_at

    ember = done.model_extra["ember"]
    summary = ember["data_summary"]
    assert summary["examples"] == 27 and summary["total_steps"] == 20  # 3 held out
    ppl = ember["perplexity"]
    assert ppl["after"]["validation"] < ppl["before"]["validation"]
    assert ppl["before"]["general"] > 0 and ppl["after"]["general"] > 0

    curve = losses(client, job.id)
    assert sorted(curve) == list(range(1, 21))
    assert curve[20] < curve[1]
    messages = [e.message for e in all_events(client, job.id)]
    assert any(m.startswith("Data: 27 training examples") for m in messages)
    assert any(m.startswith("Perplexity before training") for m in messages)
    assert any(m.startswith("Estimated training time: about") for m in messages)
    assert messages[0] == "The job has successfully completed"  # newest first

    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert [c.step_number for c in checkpoints] == [20, 15, 10]  # the three kept on disk
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-20"

    assert done.fine_tuned_model in {m.id for m in client.models.list()}
    answer = client.chat.completions.create(
        model=done.fine_tuned_model,
        messages=[{"role": "user", "content": "What is 4 plus 4?"}],
        max_tokens=8,
        temperature=0,
    )
    assert answer.model == done.fine_tuned_model
    assert answer.usage is not None and answer.usage.completion_tokens > 0

    # A checkpoint still on disk answers under its listed name; a pruned one does not exist.
    at_step_10 = checkpoints[-1].fine_tuned_model_checkpoint
    early = client.chat.completions.create(
        model=at_step_10,
        messages=[{"role": "user", "content": "What is 4 plus 4?"}],
        max_tokens=4,
        temperature=0,
    )
    assert early.model == at_step_10 and early.choices[0].message.content is not None
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=f"{done.fine_tuned_model}:ckpt-step-5",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
        )
    assert [j.id for j in client.fine_tuning.jobs.list(limit=1)] == [job.id]

    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)


def preference(i: int) -> dict[str, Any]:
    return {
        "input": {"messages": [{"role": "user", "content": f"What is {i} plus {i}?"}]},
        "preferred_output": [{"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}],
        "non_preferred_output": [{"role": "assistant", "content": "I cannot count."}],
    }


def test_auto_settings_are_resolved_and_explained(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(
        model=TINY,
        training_file=upload(client, jsonl(TRAINING)),
        seed=3,
        extra_body={"ember": {"seq_len": 64, "max_steps": 6}},
    )
    assert job.hyperparameters.n_epochs == "auto"
    assert job.method.supervised.hyperparameters.batch_size == "auto"
    done = wait_status(client, job.id, "succeeded")
    hyper = done.hyperparameters
    assert (hyper.n_epochs, hyper.batch_size, hyper.learning_rate_multiplier) == (19, 3, 10)
    assert done.method.supervised.hyperparameters.n_epochs == 19
    assert done.model_extra["ember"]["learning_rate"] == pytest.approx(2e-3)
    messages = [e.message for e in all_events(client, job.id)]
    chosen = next(m for m in messages if m.startswith("Hyperparameters: "))
    assert "n_epochs=19" in chosen and "27 examples" in chosen
    check = done.model_extra["ember"]["learning_check"]
    assert set(check["before"]) == {"loss", "perplexity", "exact_match", "train_exact_match"}
    assert check["before"]["exact_match"]["scored"] == 3
    assert check["before"]["train_exact_match"]["scored"] == 16
    assert isinstance(check["learned"], bool) and check["summary"]
    verdict = next(e for e in all_events(client, job.id) if e.message.startswith("Learning check:"))
    assert (verdict.level == "warn") is not check["learned"]
    results = client.files.content(done.result_files[0]).text.splitlines()
    assert results[0].startswith("step,train_loss,learning_rate")
    assert len(results) == 1 + 1 + 6  # header, the check before training, six steps


def test_a_dpo_job_trains_checkpoints_and_serves(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(
        model=TINY,
        training_file=upload(client, jsonl([preference(i) for i in range(12)])),
        suffix="dpo",
        seed=3,
        method={
            "type": "dpo",
            "dpo": {"hyperparameters": {"batch_size": 2, "learning_rate_multiplier": 25}},
        },
        extra_body={"ember": {"checkpoint_every": 4}},
    )
    assert job.method.type == "dpo" and job.method.dpo.hyperparameters.beta == "auto"
    done = wait_status(client, job.id, "succeeded")
    assert done.method.dpo.hyperparameters.beta == 0.1
    assert done.hyperparameters.n_epochs == 5  # auto: 64 visits of 11 pairs, at most 5
    check = done.model_extra["ember"]["learning_check"]
    assert check["after"]["margin"] > check["before"]["margin"]
    assert check["learned"] is True
    steps = losses(client, job.id)
    assert sorted(steps) == list(range(1, 31)) and steps[30] < steps[1]
    metrics = [e.data for e in all_events(client, job.id) if e.data and "reward_margin" in e.data]
    assert len(metrics) == 30
    assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id)][:2] == [30, 28]
    answer = client.chat.completions.create(
        model=done.fine_tuned_model,
        messages=[{"role": "user", "content": "What is 4 plus 4?"}],
        max_tokens=4,
        temperature=0,
    )
    assert answer.model == done.fine_tuned_model


def test_pause_resume_and_cancel(home: Path, client: openai.OpenAI) -> None:
    job = create(
        client, upload(client, jsonl(TRAINING)), n_epochs=40, max_steps=400, checkpoint_every=50
    )
    wait_for(lambda: latest_step(client, job.id) >= 2, "training to start")
    paused = client.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    wait_for(lambda: worker_pid(home, job.id) is None, "the worker to stop")
    step = latest_step(client, job.id)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert checkpoints[0].step_number == step  # a pause always checkpoints
    time.sleep(1.5)
    assert latest_step(client, job.id) == step  # nothing trains while paused
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.pause(job.id)

    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    wait_for(lambda: latest_step(client, job.id) > step + 1, "training to go on")
    messages = [e.message for e in all_events(client, job.id)]
    assert f"Resumed from the checkpoint at step {step}" in messages

    workdir = home / "fine_tuning" / job.id
    assert workdir.exists()
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert not workdir.exists()  # cancel frees everything
    stopped_at = latest_step(client, job.id)
    time.sleep(1.5)
    assert latest_step(client, job.id) == stopped_at
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.resume(job.id)


def ember_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EMBER_HOME": str(home),
        "EMBER_CONFIG": str(home / "ember.toml"),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_cli_follows_and_exports_and_the_gguf_is_served_by_llama_cpp(
    home: Path, server: RunningServer, client: openai.OpenAI, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_bytes(jsonl(TRAINING))
    created = ember_cli(
        home, "tune", "create", str(data), "--model", TINY, "--suffix", "cli", "--seed", "3",
        "--epochs", "10", "--batch-size", "2", "--lr-multiplier", "25", "--seq-len", "64",
        "--max-steps", "12", "--base-url", server.v1,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.split()[0]
    assert job_id.startswith("ftjob-")
    assert "Step 12/12" not in created.stderr  # metrics drive the bar, not printed lines
    assert "The job has successfully completed" in created.stderr
    assert f"ft:{TINY}:cli:" in created.stdout and "perplexity after (validation)" in created.stdout
    assert "learning check" in created.stdout

    listed = ember_cli(home, "tune", "list", "--base-url", server.v1)
    assert listed.returncode == 0 and job_id in listed.stdout
    missing = ember_cli(home, "tune", "show", "ftjob-nope", "--base-url", server.v1)
    assert missing.returncode == 1 and "No such fine-tuning job" in missing.stderr

    model = client.fine_tuning.jobs.retrieve(job_id).fine_tuned_model
    for fmt in ("adapter", "merged"):
        out = tmp_path / fmt
        result = ember_cli(home, "tune", "export", job_id, "--format", fmt, "--output", str(out))
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "merged" / "model.safetensors").exists()

    result = ember_cli(home, "tune", "export", job_id, "--format", "gguf")
    assert result.returncode == 0, result.stderr
    assert f"registered as {model}:gguf" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("validation perplexity"))
    fine_tuned, exported = (float(w.rstrip(",")) for w in line.split() if w[0].isdigit())
    assert abs(exported - fine_tuned) / fine_tuned < 0.05  # F16 costs (almost) nothing

    assert f"{model}:gguf" in {m.id for m in client.models.list()}
    answer = client.chat.completions.create(
        model=f"{model}:gguf",
        messages=[{"role": "user", "content": "What is 4 plus 4?"}],
        max_tokens=8,
        temperature=0,
    )
    assert answer.system_fingerprint == "ember-llamacpp"
    assert answer.usage is not None and answer.usage.completion_tokens > 0


def test_kill_9_and_server_restart_resume_the_same_loss_curve(
    home: Path, server: RunningServer, server_config: str, client: openai.OpenAI
) -> None:
    reference = create(client, upload(client, jsonl(TRAINING)), n_epochs=40, max_steps=400)
    wait_status(client, reference.id, "succeeded")
    expected = losses(client, reference.id)

    job = create(client, upload(client, jsonl(TRAINING)), n_epochs=40, max_steps=400)
    wait_for(lambda: latest_step(client, job.id) >= 7, "step 7")
    pid = worker_pid(home, job.id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (worker_pid(home, job.id) or pid) != pid, "a new worker")
    # The new worker is training (not still starting up) and has gone two steps past its
    # checkpoint: only then does the server's stop make it checkpoint again.
    resumed = wait_for(lambda: resumed_at(client, job.id), "the new worker to resume")
    wait_for(lambda: newest_step(client, job.id) >= resumed + 2, "two steps after resuming")

    stop_server(server)  # the worker checkpoints on SIGTERM; the job stays 'running'
    restarted = start_server(home, server_config)
    try:
        again = client_for(restarted)
        assert again.fine_tuning.jobs.retrieve(job.id).status in ("running", "succeeded")
        wait_status(again, job.id, "succeeded")
        assert losses(again, job.id) == expected  # bit for bit, across both interruptions
        messages = [e.message for e in all_events(again, job.id)]
        assert any("stopped unexpectedly" in m for m in messages)
        story = [m for m in messages if not m.startswith(("Step ", "Checkpoint written"))]
        assert sum(m.startswith("Resumed from the checkpoint") for m in messages) == 2, story
    finally:
        stop_server(restarted)
        shutil.rmtree(home / "fine_tuning", ignore_errors=True)
