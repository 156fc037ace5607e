"""The ``ember`` command: serve, chat, run, models, audit, doctor.

Every command loads settings the same way as the server (flags > ``EMBER_*`` > ``ember.toml``)
and calls services; none of them reimplements what the services do.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import Annotated

import typer
from rich.console import Console

from ember import __version__
from ember.cli import audit as audit_cli
from ember.cli import data as data_cli
from ember.cli import db as db_cli
from ember.cli import doctor as doctor_cli
from ember.cli import ground as ground_cli
from ember.cli import guard as guard_cli
from ember.cli import keys as keys_cli
from ember.cli import mcp as mcp_cli
from ember.cli import models as models_cli
from ember.cli import plugins as plugins_cli
from ember.cli import tune as tune_cli
from ember.core.types import ChatMessage, SamplingParams
from ember.errors import EmberError
from ember.services.container import Services
from ember.services.generation_types import ChatRequest, ContentDelta, ToolCallDelta
from ember.settings import load_settings

app = typer.Typer(
    name="ember",
    help="Ember: open models on your own machine, behind the OpenAI API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models_cli.app, name="models")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(guard_cli.app, name="guard")
app.add_typer(ground_cli.stores_app, name="stores")
app.command("ingest")(ground_cli.ingest)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(mcp_cli.app, name="mcp")
app.command("agent")(mcp_cli.agent)
app.command("usage")(keys_cli.usage)
app.add_typer(tune_cli.app, name="tune")
app.command("ask")(ground_cli.ask)
app.add_typer(data_cli.app, name="data")
app.command("doctor")(doctor_cli.doctor)
app.command("plugins")(plugins_cli.plugins)
app.add_typer(db_cli.app, name="db")
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"ember {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    """Ember: open models on your own machine, behind the OpenAI API."""


def _fail(exc: EmberError) -> typer.Exit:
    err_console.print(f"[red]Error:[/red] {exc.message}", markup=True, highlight=False)
    return typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Model that `default` points to (and is preloaded).")
    ] = None,
) -> None:
    """Start the OpenAI-compatible server (default 127.0.0.1:8000)."""
    import uvicorn

    from ember.api.app import create_app

    overrides: dict[str, object] = {"host": host, "port": port}
    if model is not None:
        overrides["default_model"] = model
    try:
        settings = load_settings(**overrides)
    except ValueError as exc:
        err_console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    doctor_cli.refuse_unless_ready(settings)  # a broken install fails here, not per request
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    console.print(
        f"Ember {__version__} serving [bold]{settings.default_model}[/bold] on "
        f"http://{settings.host}:{settings.port}/v1 (data in {settings.home})"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


async def _stream_answer(services: Services, request: ChatRequest) -> AsyncIterator[str]:
    prepared = await services.text.prepare_chat(request, endpoint="cli")
    async for event in services.text.run(prepared):
        if isinstance(event, ContentDelta):
            yield event.text
        elif isinstance(event, ToolCallDelta):
            yield f"\n[tool call] {event.call.name}({event.call.arguments})\n"


def _params(max_tokens: int | None, temperature: float, seed: int | None) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)


@app.command()
def run(
    model: Annotated[str, typer.Argument(help="Model id or alias, e.g. `default`.")],
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt; read from standard input when omitted.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens to generate.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible output.")] = None,
) -> None:
    """Answer one prompt and print the answer as it is generated."""
    parts = [prompt] if prompt else []
    if not sys.stdin.isatty():
        piped = sys.stdin.read().strip()
        if piped:
            parts.append(piped)
    if not parts:
        err_console.print("[red]Error:[/red] give a prompt as an argument or on standard input.")
        raise typer.Exit(2)
    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.append(ChatMessage(role="user", content="\n\n".join(parts)))
    request = ChatRequest(
        model=model, messages=messages, params=_params(max_tokens, temperature, seed)
    )

    async def go() -> None:
        services = Services.build(load_settings())
        try:
            async for text in _stream_answer(services, request):
                sys.stdout.write(text)
                sys.stdout.flush()
            sys.stdout.write("\n")
        finally:
            await services.close()

    try:
        asyncio.run(go())
    except EmberError as exc:
        raise _fail(exc) from exc


@app.command()
def chat(
    model: Annotated[str, typer.Option(help="Model id or alias.")] = "default",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens per answer.")] = 1024,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
) -> None:
    """Chat in the terminal, answers streamed. /reset clears the history, /exit leaves."""
    history: list[ChatMessage] = [ChatMessage(role="system", content=system)] if system else []

    async def go() -> None:
        services = Services.build(load_settings())
        try:
            with console.status("Loading the model..."):
                await services.manager.get(services.registry.resolve(model))
            console.print(f"Chatting with [bold]{model}[/bold]. /reset, /exit.")
            while True:
                try:
                    line = await asyncio.to_thread(console.input, "[bold green]> [/]")
                except (EOFError, KeyboardInterrupt):
                    break
                if line.strip() in ("/exit", "/quit"):
                    break
                if line.strip() == "/reset":
                    del history[1 if system else 0 :]
                    continue
                if not line.strip():
                    continue
                history.append(ChatMessage(role="user", content=line))
                request = ChatRequest(
                    model=model,
                    messages=list(history),
                    params=_params(max_tokens, temperature, None),
                )
                answer = ""
                async for text in _stream_answer(services, request):
                    answer += text
                    console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
                console.print()
                # GB 45438-2025 explicit label: always in the terminal chat.
                console.print(services.settings.aigc_notice_text, style="dim", markup=False)
                history.append(ChatMessage(role="assistant", content=answer))
        finally:
            await services.close()

    try:
        asyncio.run(go())
    except EmberError as exc:
        raise _fail(exc) from exc
