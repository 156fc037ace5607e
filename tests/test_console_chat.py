"""The console's chat page in a real browser, with the ``fake`` engine (no model): conversations
kept on the server (listed by title, reopened after a reload, deleted), MCP items shown as
cards, the MCP server picker, and a refused request that keeps what was typed.

No API keys are configured (a single-user install: no sign-in). The approval round trip with
a model that calls a tool is in ``test_console_agent.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import RunningServer, start_server, stop_server
from tests.console_browser import ConsolePage, chromium, open_console
from tests.mcp_servers import http_mcp_server, mcp_toml

TOP = 'preload = ["echo"]\nn_threads = 1\ndefault_model = "echo"\n'
FAKE_MODEL = """
[models.echo]
path = "echo"
engine = "fake"
context_length = 2048
"""


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with http_mcp_server() as url:
        running = start_server(
            tmp_path_factory.mktemp("console-chat"), mcp_toml(url, top=TOP) + FAKE_MODEL
        )
        yield running
        stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, chat_server: RunningServer) -> Iterator[ConsolePage]:
    with open_console(browser, chat_server.base_url) as page:
        page.page.wait_for_selector("#prompt")
        yield page
        page.assert_clean()


def _items(server: RunningServer, conversation_id: str) -> list[dict[str, object]]:
    page = httpx.get(
        f"{server.v1}/conversations/{conversation_id}/items", params={"order": "asc"}
    ).json()
    items: list[dict[str, object]] = page["data"]
    return items


def test_conversations_are_kept_on_the_server_reopened_and_deleted(
    console: ConsolePage, chat_server: RunningServer
) -> None:
    page = console.page
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#prompt", "first question")
    page.press("#prompt", "Enter")
    expect(page.locator(".msg.assistant").last).to_have_text(re.compile("You said: first question"))
    expect(page.locator("#send")).to_be_enabled()  # the turn is over, not just its text
    page.fill("#prompt", "second question")
    page.press("#prompt", "Enter")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    expect(page.locator(".msg.assistant").last).to_contain_text("You said: second question")
    current = page.locator("#conversations button.conv[aria-current=true]")
    expect(current).to_have_text("first question")
    conversation_id = current.get_attribute("data-id")
    assert conversation_id
    texts = [item["content"][0]["text"] for item in _items(chat_server, conversation_id)]  # type: ignore[index]
    assert texts == [
        "first question",
        "You said: first question",
        "second question",
        "You said: second question",
    ]

    # A reload reopens it from the server; nothing was kept in the browser but its id.
    page.reload()
    expect(page.locator(".msg")).to_have_count(4)
    expect(page.locator(".msg.user").first).to_have_text(re.compile("first question"))
    expect(page.locator(".msg.assistant").last).to_contain_text("You said: second question")

    page.click("#new-chat")
    expect(page.locator(".msg")).to_have_count(0)
    page.fill("#prompt", "another topic")
    page.press("#prompt", "Enter")
    expect(page.locator(".msg.assistant")).to_have_text(re.compile("You said: another topic"))
    expect(page.locator("#send")).to_be_enabled()
    titles = page.locator("#conversations button.conv")
    expect(titles.nth(0)).to_have_text("another topic")  # newest first
    expect(titles.nth(1)).to_have_text("first question")
    console.screenshot("chat-conversations")
    titles.nth(1).click()
    expect(page.locator(".msg")).to_have_count(4)

    # By keyboard: the list is one Tab stop; arrows move, Delete deletes (after confirming).
    titles.nth(1).focus()
    page.keyboard.press("ArrowUp")
    expect(titles.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Delete")
    expect(page.locator("#conversations button.conv", has_text="first question")).to_have_count(0)
    expect(page.locator(".msg")).to_have_count(0)  # it was open: the page starts afresh
    gone = httpx.get(f"{chat_server.v1}/conversations/{conversation_id}")
    assert gone.status_code == 404
    page.reload()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#conversations button.conv").first).to_have_text("another topic")


def test_mcp_items_are_cards_and_an_approval_request_has_buttons(
    console: ConsolePage, chat_server: RunningServer
) -> None:
    page = console.page
    title = "Tools <b>bold</b>"
    seeded = httpx.post(
        f"{chat_server.v1}/conversations",
        json={
            "metadata": {"title": title},
            "items": [
                {"type": "message", "role": "user", "content": "add and record"},
                {
                    "type": "mcp_list_tools",
                    "id": "mcpl_1",
                    "server_label": "local",
                    "tools": [{"name": "add", "input_schema": {}}],
                },
                {
                    "type": "mcp_call",
                    "id": "mcp_1",
                    "server_label": "local",
                    "name": "add",
                    "arguments": '{"a": 17, "b": 25}',
                    "output": "42",
                },
                {
                    "type": "mcp_call",
                    "id": "mcp_2",
                    "server_label": "local",
                    "name": "add",
                    "arguments": '{"a": "<script>x</script>"}',
                    "error": "Input should be a valid integer",
                },
                {
                    "type": "mcp_approval_request",
                    "id": "mcpr_1",
                    "server_label": "web",
                    "name": "record",
                    "arguments": '{"note": "buy milk"}',
                },
            ],
        },
    )
    assert seeded.status_code == 200, seeded.text
    page.reload()
    page.locator("#conversations button.conv", has_text=title).click()
    listing = page.locator(".tool-card.mcp_list_tools")
    expect(listing).to_contain_text("Tools of local")
    expect(listing).to_contain_text("add")
    calls = page.locator(".tool-card.mcp_call")
    expect(calls).to_have_count(2)
    expect(calls.nth(0).locator("header")).to_have_text("local · add")
    expect(calls.nth(0)).to_contain_text('"a": 17')
    expect(calls.nth(0)).to_contain_text("42")
    expect(calls.nth(1).locator(".error")).to_have_text("Input should be a valid integer")
    expect(calls.nth(1)).to_contain_text("<script>x</script>")
    approval = page.locator(".tool-card.approval")
    expect(approval.locator("header")).to_have_text("Approve the call web · record?")
    expect(approval).to_contain_text('"note": "buy milk"')
    expect(approval.locator("button.approve")).to_be_enabled()
    assert page.locator("#messages script, #messages b").count() == 0
    console.screenshot("chat-tool-cards")

    # Denying continues the response; the fake engine cannot take tools, so the API's
    # refusal is shown and the request stays open, its buttons still there.
    approval.locator("button.deny").click()
    expect(page.locator("#chat-error .error")).to_contain_text("does not support tools")
    expect(approval.locator("button.deny")).to_be_enabled()
    assert [item["type"] for item in _items(chat_server, seeded.json()["id"])][-1] == (
        "mcp_approval_request"
    )


def test_the_mcp_server_picker_and_a_refused_request_keep_what_was_typed(
    console: ConsolePage,
) -> None:
    page = console.page
    servers = page.locator("#mcp-servers label")
    expect(servers).to_have_text(["local", "web (asks before each call)"])
    page.get_by_label("local").check()
    page.click("#new-chat")
    page.fill("#prompt", "What is 2 plus 3?")
    page.press("#prompt", "Enter")
    expect(page.locator("#chat-error .error")).to_contain_text("does not support tools")
    expect(page.locator("#prompt")).to_have_value("What is 2 plus 3?")
    expect(page.locator(".msg")).to_have_count(0)
    # The draft and the ticked server survive a reload.
    page.reload()
    expect(page.locator("#prompt")).to_have_value("What is 2 plus 3?")
    expect(page.get_by_label("local")).to_be_checked()
    page.get_by_label("local").uncheck()
    page.press("#prompt", "Enter")
    expect(page.locator(".msg.assistant")).to_have_text(re.compile("You said: What is 2 plus 3?"))
    expect(page.locator("#prompt")).to_have_value("")
