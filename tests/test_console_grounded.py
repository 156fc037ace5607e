"""The console's documents and grounded chat in a real browser, with the real models.

Files are uploaded through the Documents page (one named with markup, one carrying a script
tag, one empty and one blank, each refused with the API's reason), ingested by the real
embedding model and searched; the default model (Qwen2.5-Coder-0.5B) answers a grounded
question whose citation opens the cited passage highlighted, abstains on a question the
documents do not cover, and is stopped in the middle of a long answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.conftest import RunningServer, start_server, stop_server
from tests.console_browser import ConsolePage, chromium, open_console

CONFIG = 'preload = ["default"]\nn_threads = 2\ncontext_length = 4096\n'
REGATTA = (
    "Port Ellis Harbor Regatta results. The 2023 Harbor Regatta was won by the crew of the "
    "Kestrel, who finished the course in 3 hours 12 minutes. The Osprey came second."
)
MARKUP_NAME = "<img src=x onerror=alert(1)>.txt"
SCRIPTED = (
    "Lighthouse keeping notes. <script>window.__pwned = 1</script> The lamp of the Port Ellis "
    "lighthouse is lit at dusk and trimmed every four hours."
)


@pytest.fixture(scope="module")
def ground_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("console-ground"), CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("console-docs")
    files = {"regatta.txt": REGATTA, MARKUP_NAME: SCRIPTED, "empty.txt": "", "blank.txt": " \n\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]


@pytest.fixture
def console(browser: Browser, ground_server: RunningServer) -> Iterator[ConsolePage]:
    with open_console(browser, ground_server.base_url) as page:
        page.page.wait_for_selector("#prompt")
        yield page
        page.assert_clean()


def test_upload_search_ask_and_open_the_cited_passage(
    console: ConsolePage, documents: list[Path]
) -> None:
    page = console.page
    page.click("#nav a[href='#/documents']")
    page.fill("#store-name", "harbor")
    page.press("#store-name", "Enter")
    expect(page.locator("#store-detail h2")).to_have_text("harbor")
    page.set_input_files("#upload", [str(p) for p in documents])
    uploads = page.locator("#uploads tr")
    expect(uploads).to_have_count(4)
    # Each file's own status and the API's own reason: the empty file is refused at upload,
    # the blank one by ingestion. Names are text.
    regatta, markup, empty, blank = (uploads.nth(i) for i in range(4))
    expect(regatta.locator(".status")).to_have_text("completed", timeout=120_000)
    expect(markup.locator("td").first).to_have_text(MARKUP_NAME)
    expect(markup.locator(".status")).to_have_text("completed", timeout=120_000)
    expect(empty.locator(".status")).to_have_text("failed")
    expect(empty.locator("td").nth(2)).to_have_text("The file is empty.")
    expect(blank.locator(".status")).to_have_text("failed", timeout=120_000)
    expect(blank.locator("td").nth(2)).to_have_text("The file contains no text.")
    expect(page.locator("#store-files tr")).to_have_count(3)
    assert page.locator("#store-detail img, #store-detail script").count() == 0

    page.fill("#search-query", "lighthouse lamp")
    page.press("#search-query", "Enter")
    first = page.locator("#search-results li").first
    expect(first.locator(".score")).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(first).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("window.__pwned") is None
    console.screenshot("documents")

    page.click("#nav a[href='#/chat']")
    page.get_by_label("harbor").check()
    page.fill("#prompt", "Who won the 2023 Harbor Regatta?")
    page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".body")).to_contain_text("Kestrel", timeout=180_000)
    source = answer.locator(".citations button.cite").first
    expect(source).to_contain_text("regatta.txt")
    console.screenshot("chat-grounded")
    source.click()
    dialog = page.locator("dialog#source")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("regatta.txt")
    mark = dialog.locator("mark")
    expect(mark).to_contain_text("Kestrel")
    console.screenshot("citation-passage")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # Reopened after a reload, the conversation still has the answer and its sources.
    page.reload()
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".body")).to_contain_text("Kestrel")
    expect(answer.locator(".citations button.cite").first).to_contain_text("regatta.txt")
    expect(page.get_by_role("checkbox", name="harbor")).to_be_checked()  # kept too

    # A question about another year: an abstention, shown as one, with its reason.
    page.fill("#prompt", "Who won the 2019 Harbor Regatta?")
    page.press("#prompt", "Enter")
    abstained = page.locator(".msg.assistant").last
    expect(abstained.locator(".abstain")).to_contain_text("question_not_covered", timeout=180_000)
    expect(abstained).to_contain_text("I can't answer that from the provided documents.")
    console.screenshot("chat-abstained")


def greedy(route: Route) -> None:
    """Send the console's response request at temperature 0: the same long answer every run."""
    body = json.loads(route.request.post_data or "{}")
    route.continue_(post_data=json.dumps({**body, "temperature": 0, "max_output_tokens": 1200}))


def test_stop_ends_a_long_answer(console: ConsolePage) -> None:
    page = console.page
    page.route("**/v1/responses", greedy)
    page.fill("#prompt", "Count from 1 to 400, one number per line.")
    page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".body")).to_contain_text("3", timeout=120_000)
    expect(page.locator("#stop")).to_be_enabled()
    page.click("#stop")
    expect(answer.locator(".stopped")).to_have_text("Stopped.")
    expect(page.locator("#send")).to_be_enabled()
    expect(answer.locator(".body")).not_to_contain_text("400")
    # The stopped turn is kept in the conversation as far as it went.
    page.reload()
    expect(page.locator(".msg.user").last).to_contain_text("Count from 1 to 400")
    expect(page.locator(".msg.assistant").last.locator(".body")).to_contain_text("3")
