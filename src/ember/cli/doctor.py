"""``ember doctor``, and the gate ``ember serve`` passes before it starts.

A thin shell over ``ember.services.doctor``: one line per check (``OK``, ``WARN`` or
``FAIL``, what was found, and for a problem the command that fixes it), or ``--json``.
Exit status 0 when every check is ok, 1 otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated

import typer
from rich.console import Console

from ember.services.doctor import run_checks, startup_checks
from ember.services.doctor_check import Check
from ember.settings import Settings, load_settings


def _status(check: Check) -> tuple[str, str]:
    if not check.ok:
        return "FAIL", "red"
    return ("WARN", "yellow") if check.fix else ("OK", "green")


def print_checks(checks: Iterable[Check], console: Console) -> None:
    for check in checks:
        status, style = _status(check)
        line = f"{status:<4}  {check.name}: {check.detail}"
        if check.fix:
            line += f"  fix: {check.fix}"
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)


def doctor(
    quick: Annotated[
        bool, typer.Option("--quick", help="Skip the test decode of each chat model.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {check, ok, detail, fix}.")
    ] = False,
) -> None:
    """Check the CPU, the llama.cpp build, packages, embedded models and the database."""
    checks = run_checks(load_settings(), quick=quick)
    if json_output:
        typer.echo(json.dumps([check.to_dict() for check in checks], indent=2))
    else:
        print_checks(checks, Console(highlight=False))
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def refuse_unless_ready(settings: Settings) -> None:
    """For ``ember serve``: exit 1, naming each fix, when a cheap check fails."""
    failed = [check for check in startup_checks(settings) if not check.ok]
    if not failed:
        return
    console = Console(stderr=True, highlight=False)
    console.print("Ember cannot start:", style="red", markup=False)
    print_checks(failed, console)
    console.print("Run `ember doctor` for every check.", markup=False)
    raise typer.Exit(1)
