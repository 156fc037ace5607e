"""Usage reports, and ``usage_daily``: the request log summed by day, key, model and target.

Every inference request leaves a ``request_log`` row, whether it came from a script, the
console or the CLI's server. Summing a month of a busy log at each look at the usage page
reads every row (a million rows: seconds on SQLite), so the log writer
(``ember.store.writer``) also adds each batch of rows to ``usage_daily`` in the same
transaction: one row per UTC day, tenant (key name; '' for none), model and route target
('' for none) holding the sums a report needs (requests, tokens, cost, cache hits,
refusals, latency). The two can never disagree: both are written, or neither.

A report over the last N days reads whole days from ``usage_daily`` and the part of the
first day after ``since`` from the request log (at most a day of rows, by the
``request_log_created`` index), then adds the two. :func:`usage_report_raw` answers the same
question from the log alone; the tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, case, func, insert, select, text
from sqlalchemy.orm import Session

from ember.store.tables import RequestLogRow, UsageDailyRow

UsageGroup = Literal["key", "model", "target", "day"]


@dataclass
class UsageRow:
    """One group of a usage report and its sums."""

    group: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    refusals: int = 0
    latency_ms_sum: float = 0.0

    @property
    def avg_latency_ms(self) -> float:
        return self.latency_ms_sum / self.requests if self.requests else 0.0

    def add(self, other: UsageRow) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.cache_hits += other.cache_hits
        self.refusals += other.refusals
        self.latency_ms_sum += other.latency_ms_sum


def utc_day(seconds: float) -> str:
    """``YYYY-MM-DD`` (UTC) of a Unix time, as ``usage_daily.day`` holds it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def _day_start(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


def day_sql(dialect: str, seconds: Any) -> Any:
    """The SQL expression of :func:`utc_day` over a Unix time column, in ``dialect``."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", func.to_timestamp(seconds)), "YYYY-MM-DD")
    return func.date(seconds, "unixepoch")


# -- writing ---------------------------------------------------------------------------------

_UPSERT = text(
    "INSERT INTO usage_daily (day, tenant, model, target, requests, prompt_tokens,"
    " completion_tokens, cost_usd, cache_hits, refusals, latency_ms_sum)"
    " VALUES (:day, :tenant, :model, :target, :requests, :prompt_tokens, :completion_tokens,"
    " :cost_usd, :cache_hits, :refusals, :latency_ms_sum)"
    " ON CONFLICT (day, tenant, model, target) DO UPDATE SET"
    " requests = usage_daily.requests + excluded.requests,"
    " prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,"
    " cost_usd = usage_daily.cost_usd + excluded.cost_usd,"
    " cache_hits = usage_daily.cache_hits + excluded.cache_hits,"
    " refusals = usage_daily.refusals + excluded.refusals,"
    " latency_ms_sum = usage_daily.latency_ms_sum + excluded.latency_ms_sum"
)


def add_to_daily(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Add request-log rows (as the writer inserts them) to ``usage_daily``."""
    sums: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (utc_day(row["created_at"]), row["tenant"] or "", row["model"], row["target"] or "")
        total = sums.setdefault(
            key,
            {
                "day": key[0],
                "tenant": key[1],
                "model": key[2],
                "target": key[3],
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
                "cache_hits": 0,
                "refusals": 0,
                "latency_ms_sum": 0.0,
            },
        )
        total["requests"] += 1
        total["prompt_tokens"] += row["prompt_tokens"]
        total["completion_tokens"] += row["completion_tokens"]
        total["cost_usd"] += row["cost_usd"]
        total["cache_hits"] += int(row["cache_hit"])
        total["refusals"] += int(row["status"] == "refused")
        total["latency_ms_sum"] += row["latency_ms"]
    if sums:
        # In key order: writers on several replicas lock the rows they add to in one order.
        session.connection().execute(_UPSERT, [sums[key] for key in sorted(sums)])


def backfill_daily(conn: Connection) -> None:
    """Sum the whole request log into an empty ``usage_daily`` (the migration that adds it)."""
    log = RequestLogRow
    # One object per grouped expression: PostgreSQL matches GROUP BY to the select list by
    # its text, bind parameters included.
    day = day_sql(conn.dialect.name, log.created_at)
    tenant = func.coalesce(log.tenant, "")
    target = func.coalesce(log.target, "")
    query = select(
        day,
        tenant,
        log.model,
        target,
        func.count(),
        func.coalesce(func.sum(log.prompt_tokens), 0),
        func.coalesce(func.sum(log.completion_tokens), 0),
        func.coalesce(func.sum(log.cost_usd), 0.0),
        func.coalesce(func.sum(log.cache_hit), 0),
        func.coalesce(func.sum(case((log.status == "refused", 1), else_=0)), 0),
        func.coalesce(func.sum(log.latency_ms), 0.0),
    ).group_by(day, tenant, log.model, target)
    columns = [
        "day",
        "tenant",
        "model",
        "target",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "cache_hits",
        "refusals",
        "latency_ms_sum",
    ]
    conn.execute(insert(UsageDailyRow).from_select(columns, query))


# -- reading ---------------------------------------------------------------------------------


def _rows(result: Sequence[Any], group_by: Sequence[UsageGroup]) -> list[UsageRow]:
    n = len(group_by)
    return [
        UsageRow(
            group={name: str(row[i] or "") for i, name in enumerate(group_by)},
            requests=int(row[n] or 0),
            prompt_tokens=int(row[n + 1] or 0),
            completion_tokens=int(row[n + 2] or 0),
            cost_usd=float(row[n + 3] or 0.0),
            cache_hits=int(row[n + 4] or 0),
            refusals=int(row[n + 5] or 0),
            latency_ms_sum=float(row[n + 6] or 0.0),
        )
        for row in result
    ]


def usage_report_raw(
    session: Session,
    group_by: Sequence[UsageGroup],
    *,
    since: float | None = None,
    until: float | None = None,
    tenant: str | None = None,
) -> list[UsageRow]:
    """The report from the request log alone: every row in ``[since, until)``."""
    log = RequestLogRow
    columns: dict[str, Any] = {
        "key": func.coalesce(log.tenant, ""),
        "model": log.model,
        "target": func.coalesce(log.target, ""),
        "day": day_sql(session.get_bind().dialect.name, log.created_at),
    }
    keys = [columns[name].label(name) for name in group_by]
    query = select(
        *keys,
        func.count(),
        func.sum(log.prompt_tokens),
        func.sum(log.completion_tokens),
        func.sum(log.cost_usd),
        func.sum(log.cache_hit),
        func.sum(case((log.status == "refused", 1), else_=0)),
        func.sum(log.latency_ms),
    )
    if since is not None:
        query = query.where(log.created_at >= since)
    if until is not None:
        query = query.where(log.created_at < until)
    if tenant is not None:
        query = query.where(log.tenant == tenant)
    if keys:
        query = query.group_by(*keys)
    return [row for row in _rows(session.execute(query).all(), group_by) if row.requests]


def _daily(
    session: Session, group_by: Sequence[UsageGroup], *, from_day: str | None, tenant: str | None
) -> list[UsageRow]:
    daily = UsageDailyRow
    columns: dict[str, Any] = {
        "key": daily.tenant,
        "model": daily.model,
        "target": daily.target,
        "day": daily.day,
    }
    keys = [columns[name].label(name) for name in group_by]
    query = select(
        *keys,
        func.sum(daily.requests),
        func.sum(daily.prompt_tokens),
        func.sum(daily.completion_tokens),
        func.sum(daily.cost_usd),
        func.sum(daily.cache_hits),
        func.sum(daily.refusals),
        func.sum(daily.latency_ms_sum),
    )
    if from_day is not None:
        query = query.where(daily.day >= from_day)
    if tenant is not None:
        query = query.where(daily.tenant == tenant)
    if keys:
        query = query.group_by(*keys)
    return [row for row in _rows(session.execute(query).all(), group_by) if row.requests]


def usage_report(
    session: Session,
    group_by: Sequence[UsageGroup],
    *,
    since: float | None = None,
    tenant: str | None = None,
) -> list[UsageRow]:
    """Usage since ``since`` (all time when None), grouped, sorted by group: whole days
    from ``usage_daily``, the rest of the first day from the request log."""
    parts: list[UsageRow] = []
    from_day = None
    if since is not None:
        first = utc_day(since)
        from_day = utc_day(_day_start(first) + 86400)
        if _day_start(first) < since:  # a part of a day: from the log
            parts += usage_report_raw(
                session, group_by, since=since, until=_day_start(from_day), tenant=tenant
            )
        else:
            from_day = first
    parts += _daily(session, group_by, from_day=from_day, tenant=tenant)
    merged: dict[tuple[str, ...], UsageRow] = {}
    for part in parts:
        key = tuple(part.group[name] for name in group_by)
        if key in merged:
            merged[key].add(part)
        else:
            merged[key] = part
    return [merged[key] for key in sorted(merged)]
