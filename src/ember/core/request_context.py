"""What the stages of one generation know about it: the typed request context.

A request (chat, completion, response, grounded answer) becomes one :class:`RequestContext`
when the planner (``ember.services.planner``) takes it. Each stage reads and writes its own
typed part: who is asking (:class:`Caller`, from the HTTP layer's key check), what the
guard found and decided (:class:`GuardState`), where the request went (:class:`RouteState`),
whether the cache answered or should keep the answer (:class:`CacheState`), what the key's
budget reserved, and what the audit and usage records need at the end. Nothing travels in a
dict of strings or a context variable.

:class:`OutputFilter` is the small protocol every stage's output transformation follows
(restoring redacted values, releasing guarded clauses, adding the AIGC notice).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ember.core.types import ChatMessage, Usage

if TYPE_CHECKING:
    from ember.settings import GuardPolicy


class OutputFilter(Protocol):
    """Transforms streamed output; may hold text back until ``flush`` at the end."""

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the HTTP layer authenticated them, and their cache wishes."""

    tenant: str | None = None
    key: Any = None  # the stored key's record (``ember.route.keys.KeyRecord``), if any
    no_cache: bool = False  # Cache-Control: no-cache
    cache_opt_in: bool = False  # "ember": {"cache": true}

    @property
    def owner(self) -> str | None:
        """The tenant whose files, vector stores, responses and jobs this caller creates and
        sees. None for the operator (no keys configured, or a key of the ``api_keys``
        setting, tenant ``config``), who sees every tenant's."""
        return None if self.tenant in (None, "config") else self.tenant

    def may_see(self, owner: str | None) -> bool:
        """Whether a resource created by ``owner`` exists for this caller: a tenant sees its
        own only (not another tenant's, nor the operator's)."""
        return self.owner is None or owner == self.owner


ANONYMOUS = Caller()


@dataclass
class GuardState:
    """What the guard found in the request and what it decided.

    ``findings`` is what the audit record keeps: counts per PII type, injection scores,
    moderation verdicts, the PII action, what stopped an answer.
    """

    findings: dict[str, Any] = field(default_factory=dict)
    policy: GuardPolicy | None = None  # the policy in force (the key's, else the model's)
    key_policy: GuardPolicy | None = None  # set by the keys stage; wins over the model's
    local_only: bool = False  # personal data a remote target must not see
    vault: Any = None  # the PII vault that redacted the request (``ember.guard.vault``)
    conversation: list[ChatMessage] | None = None  # the messages as sent, before redaction
    deferred: Future[dict[str, Any]] | None = None  # verdicts still computed beside generation
    output_guards: list[Any] = field(default_factory=list)  # ``OutputGuard`` per choice


@dataclass
class RouteState:
    """Where the request went: a local model, a remote target, or the cache."""

    target: str | None = None  # "local/MODEL", "PROVIDER/MODEL" or "cache"
    reason: str | None = None  # why the router chose it
    attempts: list[Any] = field(default_factory=list)  # failed targets before the served one
    cost_usd: float = 0.0


@dataclass
class CacheState:
    """Whether the cache answered, and where to keep a cacheable answer."""

    hit: bool = False
    # (exact key, semantic bucket, query vector) when the answer should be stored.
    store: tuple[str, str, tuple[float, ...] | None] | None = None


@dataclass
class RequestContext:
    """What the stages know about one request."""

    endpoint: str
    model: str
    messages: list[ChatMessage] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    status: str = "ok"  # "ok", "refused", "error"
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex}")
    output_text: str = ""  # every choice's text and tool-call arguments, as sent
    max_tokens: int | None = None  # the completion tokens asked for, when bounded
    caller: Caller = ANONYMOUS
    guard: GuardState = field(default_factory=GuardState)
    route: RouteState = field(default_factory=RouteState)
    cache: CacheState = field(default_factory=CacheState)
    reservation: Any = None  # the key's budget hold (``ember.route.limits.Reservation``)
    max_tokens_cap: int | None = None  # a budgeted key bounds an unbounded answer
    structured_output: bool = False  # JSON mode or tool calls: no visible AIGC notice
    finish_reason: str | None = None  # the last choice's, which a cached answer replays
    audit_input: str | None = None  # the request as the audit record hashes it

    @property
    def tenant(self) -> str | None:
        return self.caller.tenant

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started
