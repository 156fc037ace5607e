"""``ember plugins``: every registered plugin, of every kind, and where it came from."""

from __future__ import annotations

import typer
from rich.console import Console

from ember.plugins import plugin_failures, registered_plugins

err_console = Console(stderr=True)


def plugins() -> None:
    """List the registered plugins: kind, name, and builtin or the distribution that added it."""
    rows = [("KIND", "NAME", "FROM")] + [(p.kind, p.name, p.source) for p in registered_plugins()]
    kind_width = max(len(kind) for kind, _, _ in rows)
    name_width = max(len(name) for _, name, _ in rows)
    for kind, name, source in rows:
        typer.echo(f"{kind:<{kind_width}}  {name:<{name_width}}  {source}")
    for failure in plugin_failures():
        err_console.print(
            f"[red]Failed:[/red] plugin {failure.name} ({failure.distribution}) was skipped: "
            f"{failure.error}",
            highlight=False,
        )
