"""What each key has reserved and spent: the rows behind budgets and rate limits.

``key_reservations`` holds a row per request made with a key that has a limit: when it
started (``at``), and what it may cost (the worst case, at reservation) or did cost (once
settled). Every limit is a sum over a window of these rows: requests and tokens in the last
minute, dollars and tokens since the start of the day and of the month (UTC). ``carried``
rows hold what a key spent before this table existed (from the request log), counted in
budgets and not in per-minute limits.

:meth:`LedgerTables.reserve` checks and inserts in one transaction that holds the key's
lock: an advisory lock on the key's name on PostgreSQL (replicas sharing a database wait
for each other, and only for the same key), SQLite's write lock otherwise. So no number of
replicas or threads lets more through than a limit allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

# Rows older than this (seconds before the current month's start) are no longer read.
KEEP_BEFORE_MONTH_S = 86400.0


@dataclass(frozen=True)
class Limits:
    """A key's limits; None: no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    usd_day: float | None = None
    usd_month: float | None = None
    tokens_day: int | None = None
    tokens_month: int | None = None


@dataclass(frozen=True)
class Window:
    """What a key has used, by window, when a reservation was asked for."""

    requests_minute: int
    tokens_minute: int
    oldest_in_minute: float | None
    usd_day: float
    usd_month: float
    tokens_day: int
    tokens_month: int


@dataclass(frozen=True)
class Refusal:
    """Which limit a reservation would break (``limit`` is one of :class:`Limits`' fields)."""

    limit: str
    window: Window


class LedgerTables:
    """Reads and writes of ``key_reservations`` (reached as ``Store.ledger``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve(
        self,
        tenant: str,
        limits: Limits,
        *,
        usd: float,
        tokens: int,
        now: float,
        day_start: float,
        month_start: float,
    ) -> int | Refusal:
        """Hold ``usd`` and ``tokens`` for a request of ``tenant`` unless a limit would be
        broken: the new reservation's id, or which limit refused it."""

        with self.engine.begin() as conn:
            self._lock(conn, tenant)
            window = self._window(conn, tenant, now, day_start, month_start)
            refused = _broken(limits, window, usd, tokens)
            if refused is not None:
                return Refusal(refused, window)
            return int(
                conn.execute(
                    text(
                        "INSERT INTO key_reservations (tenant, at, usd, tokens)"
                        " VALUES (:t, :at, :usd, :tokens) RETURNING id"
                    ),
                    {"t": tenant, "at": now, "usd": usd, "tokens": tokens},
                ).scalar_one()
            )

    def settle(self, reservation_id: int, *, usd: float, tokens: int) -> None:
        """Replace a reservation's worst case with what the request used."""

        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE key_reservations SET usd = :usd, tokens = :tokens WHERE id = :id"),
                {"usd": usd, "tokens": tokens, "id": reservation_id},
            )

    def recount(self, tenant: str, now: float) -> None:
        """Start ``tenant``'s rows afresh from the request log: what it spent this month,
        as carried rows. For a key that gets limits after running without any: no
        reservations were written meanwhile, so a budget set now would not count them."""
        with self.engine.begin() as conn:
            self._lock(conn, tenant)
            conn.execute(text("DELETE FROM key_reservations WHERE tenant = :t"), {"t": tenant})
            carry_spending(conn, now, tenant=tenant)

    def prune(self, month_start: float) -> int:
        """Delete rows no window reads any more; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text("DELETE FROM key_reservations WHERE at < :before"),
                {"before": month_start - KEEP_BEFORE_MONTH_S},
            )
            return int(result.rowcount or 0)

    @staticmethod
    def _lock(conn: Connection, tenant: str) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ember-key:{tenant}"}
            )
        else:  # the first statement of the transaction: SQLite's write lock, before reading
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @staticmethod
    def _window(
        conn: Connection, tenant: str, now: float, day_start: float, month_start: float
    ) -> Window:
        minute = now - 60.0
        row = conn.execute(
            text(
                "SELECT"
                " COALESCE(SUM(CASE WHEN at > :minute AND carried = 0 THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN at > :minute AND carried = 0 THEN tokens ELSE 0 END), 0),"
                " MIN(CASE WHEN at > :minute AND carried = 0 THEN at END),"
                " COALESCE(SUM(CASE WHEN at >= :day THEN usd ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN at >= :month THEN usd ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN at >= :day THEN tokens ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN at >= :month THEN tokens ELSE 0 END), 0)"
                " FROM key_reservations WHERE tenant = :t AND at >= :since"
            ),
            {
                "t": tenant,
                "minute": minute,
                "day": day_start,
                "month": month_start,
                "since": min(minute, month_start),
            },
        ).one()
        return Window(
            requests_minute=int(row[0]),
            tokens_minute=int(row[1]),
            oldest_in_minute=None if row[2] is None else float(row[2]),
            usd_day=float(row[3]),
            usd_month=float(row[4]),
            tokens_day=int(row[5]),
            tokens_month=int(row[6]),
        )


def _broken(limits: Limits, window: Window, usd: float, tokens: int) -> str | None:
    if limits.rpm is not None and window.requests_minute >= limits.rpm:
        return "rpm"
    if limits.tpm is not None and window.tokens_minute + tokens > limits.tpm:
        return "tpm"
    for name, limit, spent, need in (
        ("usd_day", limits.usd_day, window.usd_day, usd),
        ("usd_month", limits.usd_month, window.usd_month, usd),
        ("tokens_day", limits.tokens_day, window.tokens_day, tokens),
        ("tokens_month", limits.tokens_month, window.tokens_month, tokens),
    ):
        if limit is not None and spent + need > limit:
            return name
    return None


def carry_spending(conn: Connection, now: float, *, tenant: str | None = None) -> None:
    """Seed ``key_reservations`` with what each key (or only ``tenant``) spent this month
    before it existed (the request log's costs, cache hits excluded): a row for the month
    before today and one for today, so budgets hold across the upgrade."""
    day_start, month_start = period_starts(now)
    only = " AND tenant = :tenant" if tenant is not None else ""
    for start, end in ((month_start, day_start), (day_start, now + 1.0)):
        conn.execute(
            text(
                "INSERT INTO key_reservations (tenant, at, usd, tokens, carried)"
                " SELECT tenant, :start, SUM(cost_usd), SUM(prompt_tokens + completion_tokens), 1"
                " FROM request_log WHERE tenant IS NOT NULL AND cache_hit = 0"
                f" AND created_at >= :start AND created_at < :end{only} GROUP BY tenant"
            ),
            {"start": start, "end": end, "tenant": tenant},
        )


def period_starts(now: float) -> tuple[float, float]:
    """The Unix times at which the UTC day and the UTC month of ``now`` began."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()
