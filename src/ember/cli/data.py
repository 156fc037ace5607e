"""``ember data synth``: question/answer training data from documents, written by a local model.

It talks to the running server with the official ``openai`` client: documents come from a
vector store (``--store``, by name or id: each file's parsed text) or from uploaded files
(``--file``); the model answers under a JSON schema; ``ember.adapt.synth`` cuts passages,
checks and deduplicates the pairs. The result is OpenAI chat JSONL, written to ``--output``
and, with ``--upload``, stored as a ``fine-tune`` file whose id is printed for a job.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

import openai
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ember.adapt.synth import QA_SCHEMA, QAPair, keep_good, parse_pairs, passages, prompt
from ember.cli.tune import BaseUrl, api_errors, server_client

app = typer.Typer(help="Prepare training data.", no_args_is_help=True)


def _store_texts(client: openai.OpenAI, store: str) -> list[str]:
    stores = list(client.vector_stores.list(limit=100))
    match = next((s for s in stores if store in (s.id, s.name)), None)
    if match is None:
        raise typer.BadParameter(
            f"no vector store named or with id '{store}'", param_hint="--store"
        )
    texts = []
    for item in client.vector_stores.files.list(vector_store_id=match.id, limit=100):
        parts = client.vector_stores.files.content(item.id, vector_store_id=match.id)
        texts.append("\n\n".join(part.text or "" for part in parts))
    return texts


@app.command()
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    store: Annotated[
        str | None, typer.Option(help="A vector store's name or id: its files' text.")
    ] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", help="An uploaded file id (repeatable).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="The model that writes.")] = "default",
    per_passage: Annotated[int, typer.Option(help="Questions asked per passage.")] = 3,
    max_passages: Annotated[int, typer.Option(help="Stop after this many passages.")] = 200,
    system: Annotated[
        str | None, typer.Option(help="A system message for every training example.")
    ] = None,
    upload: Annotated[bool, typer.Option(help="Upload the result as a fine-tune file.")] = False,
    base_url: BaseUrl = None,
) -> None:
    """Turn documents into validated, deduplicated question/answer pairs (chat JSONL)."""
    if not store and not file:
        raise typer.BadParameter("give --store or --file")
    console = Console(stderr=True, highlight=False)
    with api_errors():
        client = server_client(base_url)
        texts = _store_texts(client, store) if store else []
        texts += [client.files.content(f).text for f in file or []]
        chunks = [p for text in texts for p in passages(text)][:max_passages]
        found: list[QAPair] = []
        columns = (TextColumn("writing pairs"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("synth", total=len(chunks))
            for chunk in chunks:
                response_format: Any = {
                    "type": "json_schema",
                    "json_schema": {"name": "qa_pairs", "schema": QA_SCHEMA, "strict": True},
                }
                reply = client.chat.completions.create(
                    model=model,
                    messages=prompt(chunk, per_passage),  # type: ignore[arg-type]
                    response_format=response_format,
                    temperature=0.3,
                    max_tokens=120 * per_passage,
                    seed=len(found),
                )
                found += parse_pairs(reply.choices[0].message.content or "", chunk)
                progress.advance(task)
        kept, dropped = keep_good(found)
        output.write_text("".join(pair.to_chat_line(system) + "\n" for pair in kept))
        out = Console(highlight=False)
        out.print(f"{len(kept)} pairs from {len(chunks)} passages written to {output}")
        for reason, count in sorted(dropped.items()):
            out.print(f"dropped {count}: {reason}")
        if upload and kept:
            data = output.read_bytes()
            uploaded = client.files.create(
                file=(output.name, io.BytesIO(data)), purpose="fine-tune"
            )
            out.print(f"uploaded as {uploaded.id}")
