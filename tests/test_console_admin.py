"""The console's keys editing and documents extras in a real browser against a real server.

A key's limits are changed in the edit form on the Keys page (and a refused change shows the
API's message); on the Documents page a vector store is created with an expiry that the list
shows, a file is uploaded and ingested (by the real embedding model), and its PII opens as
counts by type and findings. The chat model is the ``fake`` engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import RunningServer, start_server, stop_server
from tests.console_browser import ConsolePage, chromium, open_console

ADMIN = "console-admin-secret"
KEY = "console-operator-key"
CONFIG = f"""
preload = ["echo"]
n_threads = 1
default_model = "echo"
admin_key = "{ADMIN}"
api_keys = ["{KEY}"]

[models.echo]
path = "echo"
engine = "fake"
context_length = 512
"""


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("console-admin"), CONFIG)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, console_server: RunningServer) -> Iterator[ConsolePage]:
    with open_console(browser, console_server.base_url, key=KEY) as page:
        yield page
        page.assert_clean()


def test_a_keys_limits_are_edited_and_a_refused_edit_says_why(
    console: ConsolePage, console_server: RunningServer
) -> None:
    created = httpx.post(
        f"{console_server.v1}/ember/keys",
        json={"name": "team-e", "rpm": 60, "budget_usd_day": 2},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    page = console.page
    page.click("#nav a[href='#/keys']")
    page.fill("#admin-key", ADMIN)
    page.press("#admin-key", "Enter")
    row = page.locator("#key-list tr[data-key='team-e']")
    expect(row).to_contain_text("60 rpm")
    row.locator("button.edit").click()
    expect(page.locator("#edit-rpm")).to_have_value("60")
    expect(page.locator("#edit-models")).to_be_focused()
    page.fill("#edit-rpm", "")  # empty: no rate limit any more
    page.fill("#edit-tpm", "500")
    page.fill("#edit-budget_usd_month", "5")
    page.fill("#edit-policy", "lenient")
    page.click("#edit-key button[type=submit]")
    expect(page.locator("#edit-key-error .error")).to_contain_text("Unknown guard policy 'lenient'")
    expect(row).to_contain_text("60 rpm")  # nothing changed
    page.fill("#edit-policy", "redact")
    page.click("#edit-key button[type=submit]")
    expect(page.locator("#key-editor")).to_be_hidden()
    expect(row).to_contain_text("500 tpm")
    expect(row).to_contain_text("$5/month")
    expect(row).to_contain_text("policy: redact")
    expect(row).not_to_contain_text("rpm")
    stored = httpx.get(
        f"{console_server.v1}/ember/keys",
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    ).json()["data"]
    team = next(k for k in stored if k["name"] == "team-e")
    assert (team["rpm"], team["tpm"], team["budget_usd_month"], team["budget_usd_day"]) == (
        None,
        500,
        5,
        2,
    )
    row.locator("button.edit").click()
    console.screenshot("keys-edit")


def test_store_expiry_and_the_pii_in_a_document(console: ConsolePage, tmp_path: Path) -> None:
    page = console.page
    page.click("#nav a[href='#/documents']")
    page.fill("#store-name", "lasting")
    page.click("#create-store button[type=submit]")
    expect(page.locator("#store-list tr", has_text="lasting")).to_contain_text("Expires: never")
    page.fill("#store-name", "contacts")
    page.fill("#store-expiry", "7")
    page.click("#create-store button[type=submit]")
    contacts = page.locator("#store-list tr", has_text="contacts")
    expect(contacts.locator(".expiry")).not_to_have_text("never")
    expect(contacts.locator(".expiry")).to_have_attribute("title", "7 days after last use")
    document = tmp_path / "contacts.md"
    document.write_text(
        "# Contact sheet\n\nMail ada@example.com or call +1 415-555-0100.\n"
        "<script>window.__pwned = 1</script> 备用手机号 13812345678。\n"
    )
    page.set_input_files("#upload", str(document))
    expect(page.locator("#uploads tr", has_text="contacts.md")).to_contain_text(
        "completed", timeout=180_000
    )
    page.click("#store-files button.pii")
    expect(page.locator("#pii-counts .pii-type")).to_have_text(["EMAIL × 1", "PHONE × 2"])
    findings = page.locator("#pii-findings tbody tr")
    expect(findings).to_have_count(3)
    expect(findings.nth(0)).to_contain_text("ada@example.com")
    expect(findings.nth(0)).to_contain_text("Contact sheet")
    assert page.evaluate("window.__pwned") is None
    console.screenshot("documents-pii")
