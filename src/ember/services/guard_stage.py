"""The guard as a pipeline stage: PII and injection checks on the way in, restore on the way out.

On every request the stage analyses each message, records what it found in
``ctx.guard.findings`` (counts per PII type, injection scores: the audit log keeps them),
and applies the policy in force for the model:

* PII ``allow``: detect and record only (the default for local engines);
* ``redact``: messages reach the engine with typed placeholders, and the answer (streamed or
  not) gets the values back through the request's vault; the vault is kept (encrypted, with
  an expiry: :class:`VaultStore`) so the conversation's next turn reuses its placeholders;
* ``block``: the request is refused with 400 ``content_policy_violation``;
* ``local_only``: marks the request so the router keeps it off remote providers.

Injection ``flag`` records the verdict; ``block`` refuses when the score reaches the threshold.
Moderation ``flag`` records scores; ``moderation = "block"`` refuses a flagged request and
``output_moderation = "block"`` stops a flagged answer with ``finish_reason: "content_filter"``
(an :class:`OutputGuard` releases the answer a clause at a time). Under PII ``block`` an answer
that writes personal data is stopped the same way.

Cost: each message is analysed once (a :class:`ScanCache` keyed by the text's hash, so the
history a chat client resends every turn is not scanned again). Work whose result cannot
change what reaches the engine does not hold the request up: under PII ``allow`` the whole
PII pass (patterns and the model-based recognizers, spaCy and jieba), and under injection
``flag`` the injection scan, run on a worker thread during generation; their verdicts join
``ctx.guard.findings`` in ``on_complete``, before the audit record is written, and
routing waits for the PII verdict (:func:`settle_deferred_pii`) before it may choose a remote
target. Under ``redact``, ``block`` and ``local_only`` the PII pass runs inline, since its
result decides what the engine sees.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ember.core.request_context import OutputFilter, RequestContext
from ember.core.types import ChatMessage
from ember.errors import ContentPolicyViolationError
from ember.guard.aigc import NoticeFilter
from ember.guard.analyzer import Analyzer
from ember.guard.moderation import ModerationModel, ModerationResult
from ember.guard.output_guard import FilterChain, OutputGuard
from ember.guard.scan_cache import ScanCache
from ember.guard.spans import Span, resolve_overlaps
from ember.guard.vault import PiiVault
from ember.guard.vault_store import VaultStore, conversation_key
from ember.settings import GuardPolicy, Settings

# How long on_complete waits for the deferred verdicts before recording what it has.
_DEFERRED_WAIT_S = 30.0


class GuardStage:
    name = "guard"

    def __init__(
        self,
        settings: Settings,
        analyzer: Analyzer,
        scanner: Any | None = None,
        moderation: ModerationModel | None = None,
        vaults: VaultStore | None = None,
    ) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.scanner = scanner
        self.moderation = moderation
        self.vaults = vaults
        self.spans_cache: ScanCache[list[Span]] = ScanCache()
        self.injection_cache: ScanCache[float] = ScanCache()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard")

    def spans_of(self, text: str, *, nlp: bool) -> list[Span]:
        """One half of the analysis of ``text`` (pattern or NLP recognizers), cached."""
        part = "nlp" if nlp else "patterns"
        return self.spans_cache.get_or_compute(
            text, part, lambda t: self.analyzer.analyze(t, nlp=nlp)
        )

    def full_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Both halves for each text, settled together."""
        nlp = self.analyzer.has_nlp
        return [
            resolve_overlaps(
                self.spans_of(text, nlp=False) + (self.spans_of(text, nlp=True) if nlp else [])
            )
            if text
            else []
            for text in texts
        ]

    def _injection_score(self, text: str, source: str) -> float:
        scanner = self.scanner
        assert scanner is not None
        return self.injection_cache.get_or_compute(
            text, f"injection:{source}", lambda t: float(scanner.scan(t, source=source).score)
        )

    def policy_for(self, model: str) -> GuardPolicy:
        return self.settings.guard_policies.get(model, self.settings.guard)

    async def on_request(self, ctx: RequestContext) -> None:
        # A per-key policy (set by the keys stage, ember.services.key_stage) wins over the model's.
        policy = ctx.guard.key_policy or self.policy_for(ctx.model)
        await asyncio.to_thread(self._inspect, ctx, policy)

    def _injection_scores(self, messages: Sequence[ChatMessage]) -> dict[str, float]:
        if self.scanner is None:
            return {}
        return {
            f"messages[{index}]": round(
                self._injection_score(
                    message.content, "tool" if message.role == "tool" else "user"
                ),
                4,
            )
            for index, message in enumerate(messages)
            if message.content and message.role in ("user", "tool")
        }

    def _inspect(self, ctx: RequestContext, policy: GuardPolicy) -> None:
        messages = list(ctx.messages)
        texts = [message.content or "" for message in messages]
        guard = ctx.guard.findings
        guard["pii_action"] = policy.pii
        defer_injection = policy.injection == "flag"
        if not defer_injection and (injection := self._injection_scores(messages)):
            guard["injection"] = injection
            worst = max(injection.values())
            if worst >= policy.injection_threshold:
                raise ContentPolicyViolationError(
                    "The request looks like a prompt-injection or jailbreak attempt and was "
                    f"blocked by policy (score {worst:.2f}).",
                    param="messages",
                )
        if policy.moderation == "block" and self.moderation is not None:
            for message in messages:
                if message.role != "user" or not message.content:
                    continue
                flagged = _flagged(self.moderation.classify(message.content), policy)
                if flagged:
                    guard["moderation"] = {"input": flagged}
                    raise ContentPolicyViolationError(
                        f"The request was flagged by moderation ({', '.join(flagged)}) and "
                        "the policy blocks it.",
                        param="messages",
                    )
        ctx.guard.policy = policy
        # Under ``allow`` nothing the recognizers find changes what reaches the engine, so the
        # whole PII pass runs beside generation (routing settles it before a remote target).
        defer_pii = policy.pii == "allow"
        spans_by_message = [[] for _ in texts] if defer_pii else self.full_spans(texts)
        if defer_pii or defer_injection:
            ctx.guard.deferred = self._worker.submit(
                self._deferred, messages, pii=defer_pii, injection=defer_injection
            )
        counts: Counter[str] = Counter(span.type for spans in spans_by_message for span in spans)
        guard["pii"] = dict(counts)
        if not counts:
            return
        if policy.pii == "block":
            found = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
            raise ContentPolicyViolationError(
                f"The request contains personal data ({found}) and the policy blocks it.",
                param="messages",
            )
        if policy.pii == "local_only":
            ctx.guard.local_only = True
        if policy.pii == "redact":
            # A later turn of a conversation keeps the placeholders of the earlier ones.
            earlier = None
            if self.vaults is not None and len(messages) > 1:
                earlier = self.vaults.load(conversation_key(messages[:-1]))
            vault = earlier or PiiVault()
            ctx.guard.conversation = messages
            ctx.messages = [
                replace(m, content=vault.redact(m.content, spans)) if spans and m.content else m
                for m, spans in zip(ctx.messages, spans_by_message, strict=True)
            ]
            ctx.guard.vault = vault

    def output_filter(self, ctx: RequestContext) -> OutputFilter | None:
        filters: list[OutputFilter] = []
        vault = ctx.guard.vault
        if isinstance(vault, PiiVault):
            filters.append(vault.stream_restorer())
        policy = ctx.guard.policy
        check = self._output_check(policy) if policy is not None else None
        if check is not None:
            output_guard = OutputGuard(check)
            ctx.guard.output_guards.append(output_guard)
            filters.append(output_guard)
        if policy is not None and policy.aigc_notice and not ctx.structured_output:
            filters.append(
                NoticeFilter(self.settings.aigc_notice_text, self.settings.aigc_notice_position)
            )
        if not filters:
            return None
        return filters[0] if len(filters) == 1 else FilterChain(filters)

    def _output_check(self, policy: GuardPolicy) -> Callable[[str], str | None] | None:
        """What stops an answer under ``policy``: flagged moderation, personal data."""
        moderation = self.moderation if policy.output_moderation == "block" else None
        pii = policy.pii == "block"
        if moderation is None and not pii:
            return None

        def check(text: str) -> str | None:
            if moderation is not None and (flagged := _flagged(moderation.classify(text), policy)):
                return f"moderation: {', '.join(flagged)}"
            if pii and (spans := self.analyzer.analyze(text, nlp=False)):
                return f"personal data: {', '.join(sorted({s.type for s in spans}))}"
            return None

        return check

    def _deferred(
        self, messages: Sequence[ChatMessage], *, pii: bool, injection: bool
    ) -> dict[str, Any]:
        """The verdicts ``_inspect`` left to the worker thread."""
        found: dict[str, Any] = {}
        if pii:
            texts = [message.content or "" for message in messages]
            spans = self.full_spans(texts)
            found["pii"] = dict(Counter(span.type for each in spans for span in each))
        if injection and (scores := self._injection_scores(messages)):
            found["injection"] = scores
        return found

    async def on_complete(self, ctx: RequestContext) -> None:
        guard = ctx.guard.findings
        vault = ctx.guard.vault
        sent, ctx.guard.conversation = ctx.guard.conversation, None
        if self.vaults is not None and isinstance(vault, PiiVault) and sent and ctx.status == "ok":
            answer = ChatMessage(role="assistant", content=ctx.output_text)
            self.vaults.save(conversation_key([*sent, answer]), vault)
        guards, ctx.guard.output_guards = ctx.guard.output_guards, []
        blocked = [g.reason for g in guards if g.blocked]
        if blocked:
            guard["output_blocked"] = blocked
        policy = ctx.guard.policy
        if policy is not None and self.moderation is not None and ctx.output_text:
            result = self.moderation.classify(ctx.output_text)
            guard["moderation_output"] = _top_scores(result)
        deferred, ctx.guard.deferred = ctx.guard.deferred, None
        if deferred is None:
            return
        # Waited for synchronously: generation usually outlasts the NLP pass, and an awaited
        # thread could be cancelled with a disconnecting client before the audit record.
        try:
            guard.update(deferred.result(timeout=_DEFERRED_WAIT_S))
        except Exception:
            guard["incomplete"] = True


async def settle_deferred_pii(ctx: RequestContext) -> None:
    """Wait for the PII pass an ``allow`` policy runs beside generation, and record its finding.

    Routing must see every finding (names included) before it may pick a remote target; if
    the pass fails, the request is treated as sensitive.
    """
    deferred = ctx.guard.deferred
    if deferred is None:
        return
    try:
        found = await asyncio.wrap_future(deferred)
    except Exception:
        ctx.guard.local_only = True
        return
    if "pii" in found:
        guard = ctx.guard.findings
        guard["pii"] = {**guard.get("pii", {}), **found["pii"]}


def _flagged(result: ModerationResult, policy: GuardPolicy) -> list[str]:
    """The categories at or above the policy's moderation threshold."""
    return sorted(
        name
        for name, score in result.category_scores.items()
        if score >= policy.moderation_threshold
    )


def _top_scores(result: ModerationResult, keep: int = 3) -> dict[str, float]:
    """The highest non-zero category scores, for the audit record."""
    ranked = sorted(result.category_scores.items(), key=lambda kv: -kv[1])
    return {name: score for name, score in ranked[:keep] if score > 0}
