"""The guard through its surfaces: ``POST /v1/ember/guard/analyze`` on the real server, and
``ember guard scan -`` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ember.cli.main import app
from tests.conftest import SERVER_CONFIG, RunningServer, start_server, stop_server

TEXT = "张伟的手机13812345678，身份证11010519491231002X。Email john@example.com"


def test_analyze_endpoint_returns_spans(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.v1}/ember/guard/analyze", json={"text": TEXT, "language": "zh"}, timeout=60
    )
    assert response.status_code == 200, response.text
    spans = response.json()["spans"]
    found = {(s["type"], s["text"]) for s in spans}
    assert {
        ("PHONE", "13812345678"),
        ("CN_ID_CARD", "11010519491231002X"),
        ("EMAIL", "john@example.com"),
    } <= found
    for span in spans:
        assert TEXT[span["start"] : span["end"]] == span["text"]
        assert set(span) == {"type", "start", "end", "score", "text"}


def test_analyze_endpoint_filters_entities(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.v1}/ember/guard/analyze",
        json={"text": TEXT, "entities": ["EMAIL"]},
        timeout=60,
    )
    assert [s["type"] for s in response.json()["spans"]] == ["EMAIL"]


def test_analyze_endpoint_errors_in_openai_shape(server: RunningServer) -> None:
    url = f"{server.v1}/ember/guard/analyze"
    unknown = httpx.post(url, json={"text": "x", "entities": ["NOPE"]}, timeout=60)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "entities"
    bad_language = httpx.post(url, json={"text": "x", "language": "fr"}, timeout=60)
    assert bad_language.status_code == 400
    assert "error" in bad_language.json()


def test_cli_scan_stdin_prints_a_table() -> None:
    result = CliRunner().invoke(
        app, ["guard", "scan", "-", "--language", "zh"], input="手机13812345678"
    )
    assert result.exit_code == 0, result.output
    assert "PHONE" in result.output
    assert "13812345678" in result.output
    assert "1.00" in result.output or "0." in result.output


def test_cli_scan_reports_nothing_found() -> None:
    result = CliRunner().invoke(app, ["guard", "scan", "-"], input="nothing to see here")
    assert result.exit_code == 0, result.output
    assert "No PII found" in result.output


@pytest.mark.parametrize("load", ["background", "first_use"])
def test_nlp_models_loaded_later_still_find_names(tmp_path: Path, load: str) -> None:
    """With the NLP models left out of start-up, the first request still finds the names
    only they find (jieba's Chinese name, spaCy's English one)."""
    running = start_server(tmp_path / "home", f'guard_nlp_load = "{load}"\n' + SERVER_CONFIG)
    try:
        text = "昨天王建国来了。Yesterday Harriet Okonkwo-Bell met the board."
        response = httpx.post(f"{running.v1}/ember/guard/analyze", json={"text": text}, timeout=60)
        assert response.status_code == 200, response.text
        found = {(s["type"], s["text"]) for s in response.json()["spans"]}
        assert ("PERSON", "王建国") in found
        assert any(kind == "PERSON" and "Harriet" in value for kind, value in found)
    finally:
        stop_server(running)
