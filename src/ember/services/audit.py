"""The audit stage: one record per inference request on the store's hash chain.

It is the first stage, so its ``on_request`` sees the messages as the client sent them (before
a guard rewrites them) and its ``on_complete`` runs last, after every other stage has left its
verdicts in ``ctx.guard.findings``. What is hashed, and what the chain proves, is explained in
``ember.store.audit``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ember.services.pipeline import OutputFilter, RequestContext
from ember.store import AuditEntry, Store
from ember.store.audit import canonical_json, sha256_text


class AuditStage:
    """Appends every finished request (hashes, verdicts, optionally raw text) to the log."""

    name = "audit"

    def __init__(self, store: Store, *, raw_text: bool = False) -> None:
        self.store = store
        self.raw_text = raw_text

    async def on_request(self, ctx: RequestContext) -> None:
        # The input as received: a canonical JSON list of the messages.
        ctx.audit_input = canonical_json([asdict(m) for m in ctx.messages])

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        return None

    async def on_complete(self, ctx: RequestContext) -> None:
        # Queued, not awaited here: the log writer chains it in the order requests finish and
        # a disconnecting client cannot cancel it (``CommitStage`` waits for the commit).
        input_text = ctx.audit_input or "[]"
        verdicts: dict[str, Any] = ctx.guard.findings
        self.store.queue_audit(
            AuditEntry(
                request_id=ctx.request_id,
                tenant=ctx.tenant,
                endpoint=ctx.endpoint,
                model=ctx.model,
                route=ctx.route.target,
                status=ctx.status,
                verdicts=verdicts,
                input_sha256=sha256_text(input_text),
                output_sha256=sha256_text(ctx.output_text),
                input_text=input_text if self.raw_text else None,
                output_text=ctx.output_text if self.raw_text else None,
            )
        )
