"""``ember keys`` and ``ember usage``: API keys, their limits, and who used what.

They work on the store directly (the same database the server reads), so a running server
sees a new or revoked key within two seconds.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ember.errors import EmberError
from ember.route.keys import create_key, revoke_key, update_key
from ember.settings import load_settings
from ember.store import Store

app = typer.Typer(help="API keys: create (shown once), list, update, revoke.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _store() -> Store:
    return Store(load_settings().database)


# The limits ``create`` and ``update`` both take.
BudgetUsd = Annotated[float | None, typer.Option(help="USD budget per month.")]
BudgetUsdDay = Annotated[float | None, typer.Option(help="USD budget per day.")]
BudgetTokens = Annotated[int | None, typer.Option(help="Token budget per month.")]
BudgetTokensDay = Annotated[int | None, typer.Option(help="Token budget per day.")]
Rpm = Annotated[int | None, typer.Option(help="Requests per minute.")]
Tpm = Annotated[int | None, typer.Option(help="Tokens per minute.")]
Policy = Annotated[
    str | None,
    typer.Option(help=r'Guard policy: a \[guard_policies."NAME"] table or a PII action.'),
]


def _model_list(models: str | None) -> list[str] | None:
    return [m.strip() for m in models.split(",") if m.strip()] if models else None


def _fail(exc: EmberError) -> typer.Exit:
    err_console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
    return typer.Exit(1)


@app.command()
def create(
    name: Annotated[str, typer.Option(help="The key's name: its tenant in logs and usage.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model names it may use (default: all).")
    ] = None,
    budget_usd: BudgetUsd = None,
    budget_usd_day: BudgetUsdDay = None,
    budget_tokens: BudgetTokens = None,
    budget_tokens_day: BudgetTokensDay = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    policy: Policy = None,
) -> None:
    """Create a key and print it (the only time it is shown; only a salted hash is kept)."""
    settings = load_settings()
    store = Store(settings.database)
    try:
        key, record = create_key(
            store,
            settings,
            name=name,
            models=_model_list(models),
            policy=policy,
            budget_usd_month=budget_usd,
            budget_usd_day=budget_usd_day,
            budget_tokens_month=budget_tokens,
            budget_tokens_day=budget_tokens_day,
            rpm=rpm,
            tpm=tpm,
        )
    except EmberError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    err_console.print(f"Created key [bold]{record.name}[/bold] ({record.id}). Store it now:")
    console.print(key, highlight=False)


# ``ember keys update --clear`` names: the options' names, and the fields they set.
_CLEARABLE = {
    "models": "models",
    "policy": "policy",
    "budget-usd": "budget_usd_month",
    "budget-usd-day": "budget_usd_day",
    "budget-tokens": "budget_tokens_month",
    "budget-tokens-day": "budget_tokens_day",
    "rpm": "rpm",
    "tpm": "tpm",
}


@app.command()
def update(
    key: Annotated[str, typer.Argument(help="The key's name or id.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model names it may use.")
    ] = None,
    budget_usd: BudgetUsd = None,
    budget_usd_day: BudgetUsdDay = None,
    budget_tokens: BudgetTokens = None,
    budget_tokens_day: BudgetTokensDay = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    policy: Policy = None,
    clear: Annotated[
        str | None,
        typer.Option(help="Comma-separated limits to remove: " + ", ".join(_CLEARABLE) + "."),
    ] = None,
) -> None:
    """Change a key's models, policy, budgets or rate limits (options left out stay)."""
    changes: dict[str, object] = {
        name: value
        for name, value in (
            ("models", _model_list(models)),
            ("policy", policy),
            ("budget_usd_month", budget_usd),
            ("budget_usd_day", budget_usd_day),
            ("budget_tokens_month", budget_tokens),
            ("budget_tokens_day", budget_tokens_day),
            ("rpm", rpm),
            ("tpm", tpm),
        )
        if value is not None
    }
    for option in (c.strip() for c in (clear or "").split(",") if c.strip()):
        if option not in _CLEARABLE:
            err_console.print(
                f"[red]Error:[/red] --clear takes {', '.join(_CLEARABLE)}; not {option}.",
                highlight=False,
            )
            raise typer.Exit(2)
        changes[_CLEARABLE[option]] = None
    if not changes:
        err_console.print("[red]Error:[/red] nothing to change.", highlight=False)
        raise typer.Exit(2)
    settings = load_settings()
    store = Store(settings.database)
    try:
        record = update_key(store, settings, key, changes)
    except EmberError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    console.print(f"Updated {record.name} ({record.id}).")


def _limit(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}"


@app.command("list")
def list_keys() -> None:
    """List keys with their limits (never the keys themselves)."""
    store = _store()
    try:
        records = store.list_keys()
    finally:
        store.close()
    table = Table(
        "name",
        "id",
        "models",
        "policy",
        "USD day/month",
        "tokens day/month",
        "rpm",
        "tpm",
        "status",
    )
    for r in records:
        table.add_row(
            r.name,
            r.id,
            ",".join(r.models) if r.models else "all",
            r.policy or "-",
            f"{_limit(r.budget_usd_day)}/{_limit(r.budget_usd_month)}",
            f"{_limit(r.budget_tokens_day)}/{_limit(r.budget_tokens_month)}",
            _limit(r.rpm),
            _limit(r.tpm),
            "revoked" if r.revoked_at else "active",
        )
    console.print(table)


@app.command()
def revoke(key: Annotated[str, typer.Argument(help="The key's name or id.")]) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    store = _store()
    try:
        record = revoke_key(store, key)
    except EmberError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    console.print(f"Revoked {record.name} ({record.id}).")


def usage(
    group_by: Annotated[
        str, typer.Option(help="Comma-separated: key, model, target, day.")
    ] = "key,model",
    days: Annotated[float, typer.Option(help="Look back this many days.")] = 30,
    key: Annotated[str | None, typer.Option(help="Only this key's usage (by name).")] = None,
) -> None:
    """Show requests, tokens, cost, cache hits, refusals and latency, grouped."""
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    unknown = [g for g in groups if g not in ("key", "model", "target", "day")]
    if unknown:
        err_console.print(f"[red]Error:[/red] unknown group {', '.join(unknown)}.")
        raise typer.Exit(2)
    store = _store()
    try:
        rows = store.usage_report(groups, since=time.time() - days * 86400, tenant=key)  # type: ignore[arg-type]
    finally:
        store.close()
    table = Table(
        *groups,
        "requests",
        "prompt tok",
        "completion tok",
        "cost USD",
        "cache hits",
        "refusals",
        "avg ms",
    )
    for row in rows:
        table.add_row(
            *[row.group[g] or "-" for g in groups],
            str(row.requests),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            f"{row.cost_usd:.6f}",
            str(row.cache_hits),
            str(row.refusals),
            f"{row.avg_latency_ms:.1f}",
        )
    console.print(table)
