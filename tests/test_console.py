"""The console (``/``) in a real browser against a real server, with the ``fake`` engine.

Chromium (Debian's package, through Playwright) signs in with an API key, streams a chat,
creates and revokes keys, reads usage, loads and unloads a model, in English and Chinese and
by keyboard alone. Model output that carries markup is rendered as text. Grounded answers,
documents and citations, which need the real models, are in ``test_console_grounded.py``.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import ROOT, RunningServer, start_server, stop_server
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
STATIC = ROOT / "src" / "ember" / "api" / "console" / "static"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("console-home"), CONFIG)
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


def test_console_is_served_beside_the_api(console_server: RunningServer) -> None:
    base = console_server.base_url
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(f"{base}/console/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(f"{base}/console/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{base}/console/..%2Fapp.py").status_code == 404
    # `/` shadows nothing: the API, health, metrics and the schema answer as before.
    assert httpx.get(f"{base}/v1/models").status_code == 401
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{base}/v1/models", headers=headers).json()["object"] == "list"
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{base}/metrics").status_code == 200
    assert httpx.get(f"{base}/v1/ember/audit", headers=headers).status_code == 401  # admin only
    assert httpx.get(f"{base}/docs").status_code == 200
    schema = httpx.get(f"{base}/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"] and "/" not in schema["paths"]


def test_assets_are_small_and_reference_no_other_host() -> None:
    assets = sorted(p for p in STATIC.iterdir() if p.is_file())
    compressed = sum(len(gzip.compress(p.read_bytes())) for p in assets)
    assert compressed < 1_000_000
    for asset in assets:
        text = asset.read_text()
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", text)
        # The only absolute URL allowed is the SVG namespace, which is never fetched.
        urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert urls == set(), asset.name


def test_a_built_wheel_carries_the_assets(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ember-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in STATIC.iterdir():
        assert f"ember/api/console/static/{asset.name}" in names


def test_sign_in_shows_the_api_error_then_opens_the_chat(
    browser: Browser, console_server: RunningServer
) -> None:
    with open_console(browser, console_server.base_url) as console:
        page = console.page
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#nav")).to_be_hidden()
        page.fill("#api-key", "not-a-key")
        page.click("#signin button[type=submit]")
        expect(page.locator("#signin .error")).to_have_text("Incorrect API key provided.")
        console.screenshot("signin-error")
        page.fill("#api-key", KEY)
        page.press("#api-key", "Enter")
        expect(page.locator("#prompt")).to_be_focused()
        expect(page.locator("#nav a[aria-current=page]")).to_have_text("Chat")
        # The key lives in this tab's session only.
        assert page.evaluate("sessionStorage.getItem('ember.apiKey')") == KEY
        assert page.evaluate("localStorage.getItem('ember.apiKey')") is None
        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        console.assert_clean()


def test_streamed_chat_renders_code_and_keeps_markup_as_text(console: ConsolePage) -> None:
    page = console.page
    expect(page.locator("#chat-model")).to_have_value("default")
    streamed = []
    page.on(
        "response",
        lambda r: (
            streamed.append(r.headers.get("content-type", ""))
            if r.url.endswith("/v1/responses")
            else None
        ),
    )
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    page.fill("#prompt", f"**look** {hostile}\n```python\nprint('hi')\n```")
    page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator("pre code")).to_have_text("print('hi')")
    expect(answer.locator("pre code")).to_have_attribute("data-lang", "python")
    expect(answer.locator("strong")).to_have_text("look")
    expect(answer).to_contain_text(f"You said: look {hostile}")
    assert streamed and streamed[0].startswith("text/event-stream")
    assert page.locator("#messages img, #messages script").count() == 0
    assert page.evaluate("window.__pwned") is None
    expect(page.locator("#prompt")).to_have_value("")
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    console.screenshot("chat-streamed")
    # The conversation goes on: the second turn sends the first one back.
    page.fill("#prompt", "second turn")
    page.press("#prompt", "Enter")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    expect(page.locator(".msg.assistant").last).to_have_text(re.compile("You said: second turn"))
    page.click("#new-chat")
    expect(page.locator(".msg")).to_have_count(0)


def test_a_refused_request_shows_the_api_message_and_keeps_the_text(
    console: ConsolePage,
) -> None:
    page = console.page
    too_long = "word " * 400  # the echo model's context is 512 tokens (bytes)
    page.fill("#prompt", too_long)
    page.click("#send")
    expect(page.locator("#chat-error .error")).to_contain_text("context")
    expect(page.locator("#prompt")).to_have_value(too_long)
    expect(page.locator(".msg")).to_have_count(0)
    console.screenshot("chat-error")
    # A draft survives a reload too (sessionStorage).
    page.fill("#prompt", "a draft")
    page.reload()
    expect(page.locator("#prompt")).to_have_value("a draft")


def test_chat_page_by_keyboard_alone(console: ConsolePage) -> None:
    page = console.page
    # The conversation list is one Tab stop (arrows move within it).
    focused = (
        "document.activeElement.classList.contains('conv') ? 'conversation' :"
        " document.activeElement.id || document.activeElement.textContent"
    )
    page.fill("#prompt", "a conversation to list")
    page.press("#prompt", "Enter")
    expect(page.locator("#conversations button.conv").first).to_be_visible()
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#prompt")).to_be_focused()  # where the page puts a keyboard user
    for _ in range(20):  # back up to the first link of the navigation
        page.keyboard.press("Shift+Tab")
        if page.evaluate(focused) == "Chat":
            break
    order = ["Chat"]
    for _ in range(20):  # and forward again, through every control, to the message box
        page.keyboard.press("Tab")
        order.append(page.evaluate(focused))
        if order[-1] == "prompt":
            break
    pages = ["Chat", "Documents", "Keys", "Usage", "Audit", "Fine-tuning", "Models"]
    assert order == [*pages, "lang", "signout", "chat-model", "new-chat", "conversation", "prompt"]
    page.keyboard.type("typed by keyboard")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    console.screenshot("chat-keyboard-focus")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text(
        re.compile(r"You said: typed by keyboard\s+second line")
    )
    expect(page.locator("#prompt")).to_be_focused()
    # Shift+Tab walks back to the navigation, and Enter on a link opens its page.
    for _ in range(20):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == "Models":
            break
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Models")


def test_both_languages(browser: Browser, console_server: RunningServer) -> None:
    with open_console(browser, console_server.base_url, locale="zh-CN", key=KEY) as console:
        page = console.page
        expect(page.locator("#nav a[href='#/chat']")).to_have_text("对话")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#send")).to_have_text("发送")
        console.screenshot("chat-zh")
        page.select_option("#lang", "en")
        expect(page.locator("#nav a[href='#/chat']")).to_have_text("Chat")
        expect(page.locator("#send")).to_have_text("Send")
        page.reload()  # the choice is kept
        expect(page.locator("#send")).to_have_text("Send")
        console.assert_clean()
    with open_console(browser, console_server.base_url, locale="en-GB") as console:
        expect(console.page.locator("#signin h1")).to_have_text("Sign in")


def test_keys_created_shown_once_listed_revoked_and_usage(
    console: ConsolePage, console_server: RunningServer
) -> None:
    page = console.page
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#nav a[href='#/keys']")
    expect(page.locator("#key-list .error")).to_have_text("Incorrect admin key provided.")
    page.fill("#admin-key", ADMIN)
    page.press("#admin-key", "Enter")
    page.fill("#key-name", "team-a")
    page.fill("#key-rpm", "60")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-key-value").text_content()
    assert secret and secret.startswith("sk-")
    row = page.locator("#key-list tr[data-key='team-a']")
    expect(row).to_contain_text("60 rpm")
    expect(row).to_contain_text("active")
    console.screenshot("keys")
    # The new key works from the openai client; its request shows in usage.
    client = openai.OpenAI(base_url=console_server.v1, api_key=secret, max_retries=0)
    reply = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "from a script"}]
    )
    assert reply.choices[0].message.content == "You said: from a script"
    page.click("#nav a[href='#/usage']")
    page.select_option("#usage-group", "key")
    page.click("#usage-form button[type=submit]")
    usage_row = page.locator("#usage-table tbody tr", has_text="team-a")
    expect(usage_row.locator("td").nth(1)).to_have_text("1")
    expect(page.locator("#usage-chart text", has_text="team-a")).to_have_count(1)
    console.screenshot("usage")
    page.click("#nav a[href='#/keys']")
    page.click("#key-list tr[data-key='team-a'] button.danger")
    expect(page.locator("#key-list tr[data-key='team-a']")).to_contain_text("revoked")


def test_models_page_unloads_and_loads(console: ConsolePage) -> None:
    page = console.page
    page.click("#nav a[href='#/models']")
    row = page.locator("#model-list tr[data-model='echo']")
    expect(row).to_contain_text("loaded")
    expect(row).to_contain_text("fake")
    row.locator("button").click()
    expect(row.locator("td").nth(2)).to_have_text("not loaded")
    console.screenshot("models")
    row.locator("button").click()
    expect(row.locator("td").nth(2)).to_have_text("loaded")


def test_fine_tuning_page_without_jobs(console: ConsolePage) -> None:
    page = console.page
    page.click("#nav a[href='#/tuning']")
    expect(page.locator("#job-list")).to_contain_text("No fine-tuning jobs yet")


def test_audit_tail_filter_export_and_verify_after_tampering(
    console: ConsolePage, console_server: RunningServer
) -> None:
    client = openai.OpenAI(base_url=console_server.v1, api_key=KEY, max_retries=0)
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "audit me"}])
    page = console.page
    page.click("#nav a[href='#/audit']")
    page.fill("#admin-key", ADMIN)
    page.press("#admin-key", "Enter")
    rows = page.locator("#audit-table tbody tr")
    expect(rows.first).to_contain_text("chat.completions")
    page.click("#audit-verify")
    expect(page.locator("#audit-verdict")).to_contain_text("The chain is intact")
    page.fill("#audit-filter", "no-such-tenant")
    expect(page.locator("#audit-table")).to_have_text("No records.")
    page.fill("#audit-filter", "")
    with page.expect_download() as download:
        page.click("#audit-export")
    exported = Path(download.value.path()).read_text().splitlines()
    assert len(exported) == rows.count()
    newest = json.loads(exported[0])
    # Edit the newest record in the database behind the server's back.
    with sqlite3.connect(console_server.home / "ember.db") as db:
        db.execute("UPDATE audit_log SET model = 'forged' WHERE seq = ?", (newest["seq"],))
    page.click("#audit-verify")
    expect(page.locator("#audit-verdict")).to_contain_text(
        f"The chain is broken at record {newest['seq']}"
    )
    forged = page.locator(f"#audit-table tr[data-seq='{newest['seq']}']")
    expect(forged).to_have_class("bad")
    expect(forged).to_contain_text("forged")
    console.screenshot("audit-broken")


def test_a_revoked_key_returns_to_sign_in(browser: Browser, console_server: RunningServer) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    created = httpx.post(f"{console_server.v1}/ember/keys", json={"name": "short"}, headers=admin)
    with open_console(browser, console_server.base_url, key=created.json()["key"]) as console:
        page = console.page
        revoked = httpx.delete(f"{console_server.v1}/ember/keys/short", headers=admin)
        assert revoked.status_code == 200
        page.click("#nav a[href='#/documents']")
        expect(page.locator("#signin .error")).to_have_text("Incorrect API key provided.")
        expect(page.locator("#nav")).to_be_hidden()
        console.assert_clean()
