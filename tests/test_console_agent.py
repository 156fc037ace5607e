"""The console's approval card with the real default model and a real MCP server: the model is
forced (``tool_choice``, added to the console's request on its way out, as a test may) to call
``record`` on the untrusted ``web`` server, the console shows the approval request with
Approve and Deny, and Approve continues the response in the conversation: the call runs, its
card shows the server's output, and a reload shows the same history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Route, expect

from tests.conftest import RunningServer, start_server, stop_server
from tests.console_browser import chromium, open_console
from tests.mcp_servers import http_mcp_server, mcp_toml

TOP = 'preload = ["default"]\nn_threads = 2\ncontext_length = 4096\n'


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with http_mcp_server() as url:
        running = start_server(tmp_path_factory.mktemp("console-agent"), mcp_toml(url, top=TOP))
        yield running
        stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def forced(route: Route) -> None:
    """Greedy and short; the question (not the approval) must call ``web``'s ``record``."""
    body = json.loads(route.request.post_data or "{}")
    body.update(temperature=0, max_output_tokens=40, max_tool_calls=1)
    if isinstance(body.get("input"), str):
        body["tool_choice"] = {"type": "mcp", "server_label": "web", "name": "record"}
    route.continue_(post_data=json.dumps(body))


def test_an_approval_card_approved_runs_the_call(
    browser: Browser, agent_server: RunningServer
) -> None:
    with open_console(browser, agent_server.base_url) as console:
        page = console.page
        page.wait_for_selector("#prompt")
        page.route("**/v1/responses", forced)
        page.get_by_label("web (asks before each call)").check()
        page.fill("#prompt", "Record the note 'buy milk'.")
        page.press("#prompt", "Enter")
        approval = page.locator(".tool-card.approval")
        expect(approval.locator("header")).to_have_text(
            "Approve the call web · record?", timeout=180_000
        )
        expect(page.locator(".tool-card.mcp_list_tools")).to_contain_text("record")
        expect(approval.locator("button.approve")).to_be_enabled()
        expect(page.locator(".tool-card.mcp_call")).to_have_count(0)  # nothing ran yet
        console.screenshot("chat-approval")

        approval.locator("button.approve").click()
        call = page.locator(".tool-card.mcp_call")
        expect(call.locator("header")).to_have_text("web · record", timeout=180_000)
        expect(call).to_contain_text(re.compile(r"recorded "))
        expect(approval.locator(".decision")).to_have_text("Approved.")
        expect(approval.locator("button")).to_have_count(0)
        expect(page.locator("#send")).to_be_enabled(timeout=180_000)  # the answer after it
        expect(page.locator(".msg.assistant")).to_have_count(1)
        console.screenshot("chat-approved")

        conversation = page.locator("#conversations button.conv[aria-current=true]")
        conversation_id = conversation.get_attribute("data-id")
        items = httpx.get(
            f"{agent_server.v1}/conversations/{conversation_id}/items",
            params={"order": "asc", "limit": 100},
        ).json()["data"]
        kinds = [item["type"] for item in items]
        assert kinds == [
            "message",
            "mcp_list_tools",
            "mcp_approval_request",
            "mcp_approval_response",
            "mcp_call",
            "message",
        ]
        assert items[4]["approval_request_id"] == items[2]["id"]
        note = json.loads(items[2]["arguments"])["note"]
        assert items[4]["output"].startswith("recorded ") and items[4]["output"].endswith(note)

        # After a reload the history is the server's: the request is shown as approved.
        page.reload()
        expect(page.locator(".tool-card.approval .decision")).to_have_text("Approved.")
        expect(page.locator(".tool-card.approval button")).to_have_count(0)
        expect(page.locator(".tool-card.mcp_call")).to_contain_text("recorded ")
        console.assert_clean()
