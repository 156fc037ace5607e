"""Per-target health: an EWMA of measured latency, a circuit breaker and the verdict of the
last active health check.

The breaker opens after ``failure_threshold`` consecutive failures; after ``cooldown_s`` it
lets one probe through (half-open): a success closes it, a failure opens it again. The
active check (``ember.route.probe``, for providers with ``health_check_s``) is a separate
signal: a failed check takes the target out of rotation until a check passes, and a check
that passes after a failed one closes the breaker too, so a server that came back is used
at once rather than after the breaker's cooldown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class TargetHealth:
    failure_threshold: int = 3
    cooldown_s: float = 10.0
    alpha: float = 0.3
    ewma_ms: float | None = None
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    checked_ok: bool = True  # no active check yet counts as passing
    check_detail: str = ""  # why the last active check failed, in Ember's words
    clock: object = field(default=time.monotonic, repr=False)

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def available(self) -> bool:
        """May a request be sent now? (Claims the half-open probe when it is due.)"""
        if self.state == "closed":
            return True
        if self.state == "open" and self._now() - self.opened_at >= self.cooldown_s:
            self.state = "half_open"
            self.probing = False
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def is_open(self) -> bool:
        """Open and not yet due for a probe (does not claim anything)."""
        if self.state == "open":
            return self._now() - self.opened_at < self.cooldown_s
        return self.state == "half_open" and self.probing

    def record_success(self, latency_ms: float) -> None:
        self.ewma_ms = (
            latency_ms
            if self.ewma_ms is None
            else self.alpha * latency_ms + (1 - self.alpha) * self.ewma_ms
        )
        self.failures = 0
        self.state = "closed"
        self.probing = False

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failure_threshold:
            self.state = "open"
            self.opened_at = self._now()
            self.probing = False

    def record_check(self, ok: bool, detail: str = "") -> None:
        """The verdict of an active health check (``ember.route.probe``)."""
        if ok and not self.checked_ok:
            self.failures = 0
            self.state = "closed"
            self.probing = False
        self.checked_ok = ok
        self.check_detail = "" if ok else detail
