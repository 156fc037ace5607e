"""The console's Fine-tuning page in a real browser, on a real LoRA job of a tiny model.

A job created from a script (the openai client) shows in the console; its loss curve grows
while the page refreshes itself; Pause (which checkpoints), Resume and Cancel work from the
page, and the checkpoint offers "chat with this model".
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import openai
import pytest
from playwright.sync_api import Browser, expect

from tests.adapt.tiny_llama import build_tiny_llama
from tests.conftest import RunningServer, client_for, start_server, stop_server
from tests.console_browser import chromium, open_console

TINY = "tiny-llama"
TRAINING = [
    {
        "messages": [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
        ]
    }
    for i in range(30)
]


@pytest.fixture(scope="module")
def tune_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    model = build_tiny_llama(tmp_path_factory.mktemp("models") / TINY)
    config = f"""
preload = []
n_threads = 1
context_length = 2048
fine_tuning_threads = 1

[models.{TINY}]
path = "{model}"
engine = "transformers"
"""
    running = start_server(tmp_path_factory.mktemp("console-tune"), config)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def points(count: int) -> re.Pattern[str]:
    return re.compile(rf"^{count}$")


def test_loss_curve_grows_and_the_job_is_paused_resumed_and_cancelled(
    browser: Browser, tune_server: RunningServer
) -> None:
    client: openai.OpenAI = client_for(tune_server)
    data = "\n".join(json.dumps(line) for line in TRAINING).encode()
    training = client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=TINY,
        training_file=training.id,
        suffix="sums",
        seed=3,
        extra_body={"ember": {"seq_len": 64, "checkpoint_every": 100000, "max_steps": 400}},
    )
    with open_console(browser, tune_server.base_url) as console:
        page = console.page
        page.click("#nav a[href='#/tuning']")
        page.get_by_role("button", name=job.id).click()
        curve = page.locator("#loss-curve circle")
        expect(curve.nth(2)).to_be_attached(timeout=120_000)  # three steps, drawn live
        page.get_by_role("button", name="Pause").click()
        detail = page.locator("#job-detail")
        expect(detail.locator("p").first).to_have_text(re.compile("paused$"), timeout=60_000)
        # A pause checkpoints (the only checkpoint: none falls due within max_steps): it is
        # listed, and can be chatted with.
        expect(page.locator("#checkpoints tbody tr")).to_have_count(1, timeout=60_000)
        expect(page.locator("#checkpoints")).to_contain_text(
            f"ft:{TINY}:sums:{job.id.removeprefix('ftjob-')}:ckpt-step-"
        )
        paused_at = curve.count()
        console.screenshot("tuning-paused")
        page.get_by_role("button", name="Resume").click()
        expect(curve.nth(paused_at + 2)).to_be_attached(timeout=120_000)  # growing again
        page.get_by_role("button", name="Cancel").click()
        expect(detail.locator("p").first).to_have_text(re.compile("cancelled$"), timeout=60_000)
        expect(page.locator("#events")).to_contain_text("Resumed from the checkpoint at step")
        console.screenshot("tuning")
        page.locator("#checkpoints button").first.click()
        expect(page.locator("#chat-model")).to_have_value(re.compile(r":ckpt-step-\d+$"))
        console.assert_clean()
    client.close()


def test_a_job_created_from_the_console_after_its_data_check(
    browser: Browser, tune_server: RunningServer
) -> None:
    data = "\n".join(json.dumps(line) for line in TRAINING).encode()
    with open_console(browser, tune_server.base_url) as console:
        page = console.page
        page.click("#nav a[href='#/tuning']")
        page.get_by_text("New job").click()
        page.set_input_files(
            "#ft-training-upload",
            files=[{"name": "sums.jsonl", "mimeType": "application/jsonl", "buffer": data}],
        )
        expect(page.locator("#ft-training option:checked")).to_contain_text("sums.jsonl")
        page.select_option("#ft-model", TINY)
        page.fill("#ft-suffix", "console")
        page.click("#ft-check")
        expect(page.locator("#ft-findings")).to_contain_text("30 examples (30 openai)")
        page.click("#ft-start")
        detail = page.locator("#job-detail")
        expect(detail.locator("p").first).to_have_text(re.compile(rf"^{TINY} · (queued|running)$"))
        expect(page.locator("#events")).to_contain_text("Validated training file: 30 examples")
        page.get_by_role("button", name="Cancel").click()
        expect(detail.locator("p").first).to_have_text(re.compile("cancelled$"), timeout=60_000)
        console.assert_clean()


def test_a_synthetic_data_job_moves_passage_by_passage_and_is_cancelled(
    browser: Browser, tune_server: RunningServer
) -> None:
    # Sixty paragraphs of about 800 characters: dozens of passages (1200 characters at most
    # each), so the job is still running when Cancel is pressed.
    document = "\n\n".join(
        " ".join(
            f"Day {i}, entry {j} of the harbor log: the ferry Kestrel left the pier at "
            f"{6 + (i + j) % 5} o'clock and came back with {20 + i + j} passengers."
            for j in range(7)
        )
        for i in range(60)
    )
    with open_console(browser, tune_server.base_url) as console:
        page = console.page
        page.click("#nav a[href='#/tuning']")
        page.get_by_role("tab", name="Synthetic data").click()
        page.set_input_files(
            "#synth-upload",
            files=[{"name": "log.txt", "mimeType": "text/plain", "buffer": document.encode()}],
        )
        expect(page.locator("#synth-files option:checked")).to_contain_text("log.txt")
        page.select_option("#synth-model", TINY)
        page.click("#synth-start")
        row = page.locator("#synth-jobs tbody tr").first
        # The tiny model answers each passage under the JSON schema; the count follows it.
        expect(row.locator(".count")).to_have_text(
            re.compile(r"^[1-9]\d* / [1-9]\d+$"), timeout=120_000
        )
        console.screenshot("tuning-synth-running")
        row.get_by_role("button", name="Cancel").click()
        expect(row.locator(".status")).to_have_text("cancelled", timeout=30_000)
        expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
        console.assert_clean()
