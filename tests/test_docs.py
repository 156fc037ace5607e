"""Docs that cannot drift: settings, CLI commands and README commands are checked here."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ember.cli.main import app
from ember.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{name}` | `EMBER_{name.upper()}` |" in text, f"document the setting {name}"


def test_every_setting_has_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} needs a description"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)```", readme, flags=re.S)
    assert "make serve\n" in blocks
    assert "make test\n" in blocks
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_has_help_and_is_documented() -> None:
    runner = CliRunner()
    cli_doc = (ROOT / "docs" / "CLI.md").read_text()
    commands = [
        [],
        ["serve"],
        ["doctor"],
        ["plugins"],
        ["run"],
        ["chat"],
        ["models"],
        ["models", "list"],
        ["models", "show"],
        ["models", "pull"],
        ["models", "rm"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "tail"],
        ["audit", "export"],
        ["guard"],
        ["guard", "scan"],
        ["guard", "redact"],
        ["guard", "recognizers"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["usage"],
        ["tune"],
        *(["tune", c] for c in ("create", "follow", "list", "show", "cancel", "pause", "resume")),
        ["tune", "export"],
        ["data"],
        ["data", "synth"],
        ["mcp"],
        ["mcp", "list"],
        ["mcp", "call"],
        ["agent"],
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
        if command:
            assert f"ember {' '.join(command)}" in cli_doc, f"document `ember {' '.join(command)}`"
