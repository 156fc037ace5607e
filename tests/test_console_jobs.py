"""The console's job pages in a real browser: a new fine-tuning job, synthetic data, pulls.

A real server with the ``fake`` engine (no model is trained or asked here) and a real HTTP hub
on 127.0.0.1 (``tests/fake_hub.py``). The new-job form shows the data check's findings before
a job can start, and the API's own refusal when it cannot; a synthetic-data job's failure is
shown with the API's reason; a model pull shows its progress, its failure in the middle of the
download, and the pulled model in the list. The real LoRA job and a synthetic-data job a real
model works on are in ``test_console_tuning.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import RunningServer, start_server, stop_server
from tests.console_browser import ConsolePage, chromium, open_console
from tests.fake_hub import TINY_BYTES, TINY_REPO, FakeHub, standard_hub

ADMIN = "jobs-admin-secret"
FLAKY_REPO, FLAKY_FILE = "acme/flaky-GGUF", "flaky.Q8_0.gguf"
GOOD = "\n".join(
    json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    for q, a in [("Hi?", "Hello."), ("2+2?", "4.")]
)
BAD = GOOD + '\n{"messages": [}\n{"prompt": "old format"}\n'
PASSAGES = "\n\n".join(
    f"The harbor log for day {i} records that the ferry Kestrel left at {6 + i % 5} in the "
    f"morning and returned before noon with {20 + i} passengers aboard."
    for i in range(12)
)


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[FakeHub]:
    hub = standard_hub()
    hub.add_repo(FLAKY_REPO, {FLAKY_FILE: TINY_BYTES})
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def jobs_server(
    tmp_path_factory: pytest.TempPathFactory, fake_hub: FakeHub
) -> Iterator[RunningServer]:
    config = f"""
preload = []
admin_key = "{ADMIN}"
hub_url = "{fake_hub.url}"

[models.echo]
path = "echo"
engine = "fake"
"""
    running = start_server(tmp_path_factory.mktemp("console-jobs"), config)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, jobs_server: RunningServer) -> Iterator[ConsolePage]:
    with open_console(browser, jobs_server.base_url) as page:
        page.page.wait_for_selector("#prompt")
        yield page
        page.assert_clean()


def upload(name: str, text: str) -> dict[str, object]:
    return {"name": name, "mimeType": "application/jsonl", "buffer": text.encode()}


def test_a_new_job_shows_the_data_check_before_it_can_start(console: ConsolePage) -> None:
    page = console.page
    page.click("#nav a[href='#/tuning']")
    page.get_by_text("New job").click()
    page.set_input_files("#ft-training-upload", files=[upload("bad.jsonl", BAD)])  # type: ignore[list-item]
    expect(page.locator("#ft-training option:checked")).to_contain_text("bad.jsonl")
    page.click("#ft-check")
    findings = page.locator("#ft-findings")
    expect(findings).to_contain_text("The data check found problems")
    expect(findings).to_contain_text("2 examples (2 openai)")
    expect(findings).to_contain_text("2 bad lines")
    expect(findings.locator(".problems li").first).to_have_text(
        re.compile(r"^line 3: not valid JSON")
    )
    expect(findings.locator(".problems li").nth(1)).to_contain_text("line 4: unknown format")
    expect(page.locator("#ft-start")).to_be_hidden()

    page.set_input_files("#ft-training-upload", files=[upload("good.jsonl", GOOD)])  # type: ignore[list-item]
    expect(page.locator("#ft-training option:checked")).to_contain_text("good.jsonl")
    page.select_option("#ft-method", "dpo")  # a DPO check reads the chat lines as preferences
    expect(page.locator("#ft-beta")).to_have_value("auto")
    page.click("#ft-check")
    expect(findings).to_contain_text("line 1: ")
    page.select_option("#ft-method", "supervised")
    expect(page.locator("#ft-beta")).to_have_count(0)
    page.fill("#ft-n_epochs", "2")
    page.fill("#ft-suffix", "harbor")
    page.select_option("#ft-model", "echo")
    page.click("#ft-check")
    expect(findings).to_contain_text("The data check found no problem")
    expect(findings).to_contain_text("2 examples (2 openai)")
    console.screenshot("tuning-new-job")
    page.click("#ft-start")
    # The fake engine cannot be trained: the API's refusal, in its own words.
    expect(page.locator("#ft-error")).to_have_text(
        "The model 'echo' (engine fake) cannot be fine-tuned."
    )
    # A reload loses nothing the user chose.
    page.reload()
    page.click("#nav a[href='#/tuning']")
    page.get_by_text("New job").click()
    expect(page.locator("#ft-training option:checked")).to_contain_text("good.jsonl")
    expect(page.locator("#ft-suffix")).to_have_value("harbor")
    expect(page.locator("#ft-n_epochs")).to_have_value("2")
    expect(page.locator("#ft-model")).to_have_value("echo")
    expect(page.locator("#job-list")).to_contain_text("No fine-tuning jobs yet")


def test_a_synthetic_data_job_shows_its_progress_and_the_reason_it_failed(
    console: ConsolePage,
) -> None:
    page = console.page
    page.click("#nav a[href='#/tuning']")
    page.get_by_role("tab", name="Synthetic data").click()
    expect(page.locator("#synth-list")).to_contain_text("No synthetic-data jobs yet.")
    page.select_option("#synth-model", "echo")
    page.click("#synth-start")  # no documents: the API's 400, in its words
    expect(page.locator("#synth-error")).to_have_text(
        "Give `vector_store_id` or `file_ids`: the documents to write pairs from."
    )
    page.set_input_files("#synth-upload", files=[upload("harbor.txt", PASSAGES)])  # type: ignore[list-item]
    expect(page.locator("#synth-files option:checked")).to_contain_text("harbor.txt")
    page.fill("#synth-max-passages", "20")
    page.click("#synth-start")
    expect(page.locator("#synth-error")).to_be_empty()
    row = page.locator("#synth-jobs tbody tr").first
    # The fake engine writes no JSON: the job fails on its first passage, and says why.
    expect(row.locator(".status")).to_contain_text("failed", timeout=30_000)
    expect(row.locator(".error")).to_contain_text("The model 'echo' cannot constrain its output.")
    expect(row.locator(".count")).to_have_text(re.compile(r"^0 / \d+$"))
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    console.screenshot("tuning-synth")


def test_a_pull_shows_its_progress_its_failure_and_the_pulled_model(
    console: ConsolePage, fake_hub: FakeHub
) -> None:
    fake_hub.reset()
    page = console.page
    page.click("#nav a[href='#/models']")
    expect(page.locator("#pull-list")).to_contain_text("Incorrect admin key provided.")
    page.fill("#admin-key", ADMIN)
    page.press("#admin-key", "Enter")
    expect(page.locator("#pull-list")).to_contain_text("No pulls yet.")
    page.fill("#pull-repo", "acme/no-such-model")
    page.click("#pull-start")
    expect(page.locator("#pull-error")).to_have_text(
        "The repo 'acme/no-such-model' does not exist on the hub."
    )

    page.fill("#pull-repo", TINY_REPO)
    page.fill("#pull-id", "tiny-pulled")
    page.click("#pull-start")
    done = page.locator("#pulls tbody tr", has_text=TINY_REPO)
    expect(done.locator(".status")).to_have_text("done")
    expect(done.locator(".count")).to_have_text("100% · 3.1 MB / 3.1 MB")
    expect(page.locator("#model-list tr[data-model='tiny-pulled']")).to_contain_text("not loaded")

    # Every answer breaks after 1 MB and starts again from byte 0: the pull stalls at 31%,
    # retries, and fails with the hub client's reason.
    fake_hub.ignore_range, fake_hub.drop_after, fake_hub.drop_times = True, 1_000_000, None
    page.fill("#pull-repo", FLAKY_REPO)
    page.fill("#pull-id", "")
    page.click("#pull-start")
    flaky = page.locator("#pulls tbody tr", has_text=FLAKY_REPO)
    expect(flaky.locator(".status")).to_have_text("downloading")
    expect(flaky.locator(".count")).to_have_text(re.compile(r"^31% · 1\.0 MB / 3\.1 MB$"))
    expect(flaky).to_contain_text(FLAKY_FILE)
    console.screenshot("models-pull")
    expect(flaky.locator(".status .error")).to_contain_text("kept failing", timeout=60_000)
    expect(flaky.locator(".status")).to_contain_text("failed")
    expect(page.locator("#model-list tr[data-model='flaky.q8_0']")).to_have_count(0)
