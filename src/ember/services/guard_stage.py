"""The guard as a pipeline stage: PII and injection checks on the way in, restore on the way out.

On every request the stage analyses each message, records what it found in
``ctx.attributes["guard"]`` (counts per PII type, injection scores: the audit log keeps them),
and applies the policy in force for the model:

* PII ``allow``: detect and record only (the default for local engines);
* ``redact``: messages reach the engine with typed placeholders, and the answer (streamed or
  not) gets the values back through the request's vault;
* ``block``: the request is refused with 400 ``content_policy_violation``;
* ``local_only``: marks the request so the router keeps it off remote providers.

Injection ``flag`` records the verdict; ``block`` refuses when the score reaches the threshold.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

from ember.errors import ContentPolicyViolationError
from ember.guard.analyzer import Analyzer
from ember.guard.vault import PiiVault
from ember.services.pipeline import OutputFilter, RequestContext
from ember.settings import GuardPolicy, Settings


class GuardStage:
    name = "guard"

    def __init__(self, settings: Settings, analyzer: Analyzer, scanner: Any | None = None) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.scanner = scanner

    def policy_for(self, model: str) -> GuardPolicy:
        return self.settings.guard_policies.get(model, self.settings.guard)

    async def on_request(self, ctx: RequestContext) -> None:
        # A per-key policy (set by the keys stage, ember.services.gateway) wins over the model's.
        key_policy = ctx.attributes.get("guard_policy")
        policy = key_policy if isinstance(key_policy, GuardPolicy) else self.policy_for(ctx.model)
        await asyncio.to_thread(self._inspect, ctx, policy)

    def _inspect(self, ctx: RequestContext, policy: GuardPolicy) -> None:
        counts: Counter[str] = Counter()
        spans_by_message = []
        injection: dict[str, float] = {}
        for index, message in enumerate(ctx.messages):
            text = message.content or ""
            spans = self.analyzer.analyze(text) if text else []
            spans_by_message.append(spans)
            counts.update(span.type for span in spans)
            if self.scanner is not None and text and message.role in ("user", "tool"):
                source = "tool" if message.role == "tool" else "user"
                verdict = self.scanner.scan(text, source=source)
                injection[f"messages[{index}]"] = round(float(verdict.score), 4)
        guard = ctx.attributes.setdefault("guard", {})
        guard["pii"] = dict(counts)
        guard["pii_action"] = policy.pii
        if injection:
            guard["injection"] = injection
        worst = max(injection.values(), default=0.0)
        if policy.injection == "block" and worst >= policy.injection_threshold:
            raise ContentPolicyViolationError(
                "The request looks like a prompt-injection or jailbreak attempt and was "
                f"blocked by policy (score {worst:.2f}).",
                param="messages",
            )
        if not counts:
            return
        if policy.pii == "block":
            found = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
            raise ContentPolicyViolationError(
                f"The request contains personal data ({found}) and the policy blocks it.",
                param="messages",
            )
        if policy.pii == "local_only":
            ctx.attributes["local_only"] = True
        if policy.pii == "redact":
            vault = PiiVault()
            ctx.messages = [
                replace(m, content=vault.redact(m.content, spans)) if spans and m.content else m
                for m, spans in zip(ctx.messages, spans_by_message, strict=True)
            ]
            ctx.attributes["vault"] = vault

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        vault = ctx.attributes.get("vault")
        return vault.stream_restorer() if isinstance(vault, PiiVault) else None

    async def on_complete(self, ctx: RequestContext) -> None:
        return None
