"""The merchant's summary report, from the read model (settlement's fees arrive there with
payment.settled). A report covers the payments *created* in the period, with everything known
about them now: their outcome, refunds and fees. Money stays per currency, in minor units;
rates are exact decimal strings and basis points, never floats."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from intake.adapters.payment_search import PaymentReports
from intake.adapters.payouts import PayoutReadModel
from intake.domain.payout_timing import PayoutRow, payout_timing
from intake.domain.queries import ReportQuery
from intake.service_layer.search import utc_instant
from sanalpos_common.business_day import DEFAULT_TIME_ZONE

_COUNTS = (
    "payments",
    "volume",
    "approved_count",
    "approved_volume",
    "declined_count",
    "fraud_declined_count",
    "captured_volume",
    "refund_count",
    "refunded_amount",
    "settled_count",
    "fee_amount",
    "net_amount",
)


_NET_FX = ("currency", "settled_count", "converted_count", "net_amount", "fx_markup_amount")


def rate(part: int, whole: int) -> tuple[str | None, int | None]:
    """(decimal string with 4 places, basis points), both rounded half up; None of nothing."""
    if whole <= 0:
        return None, None
    exact = Decimal(part) / Decimal(whole)
    text = str(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    bps = int((exact * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return text, bps


def average(total: int, count: int) -> int | None:
    if count <= 0:
        return None
    return int((Decimal(total) / Decimal(count)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def instant(bound: date | datetime, zone: ZoneInfo) -> datetime:
    """A bare date is midnight at the start of that day in the merchant's time zone."""
    if isinstance(bound, datetime):
        return utc_instant(bound)
    return utc_instant(datetime.combine(bound, time.min, tzinfo=zone))


def resolve_period(
    start: date | datetime, end: date | datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """[from, to) as instants; `to` not after `from` is an empty period (an empty report)."""
    return instant(start, zone), instant(end, zone)


def net_volume(counts: Mapping[str, int]) -> int:
    """Captured, less what was refunded and the fees known so far (fees come at batch close)."""
    return counts["captured_volume"] - counts["refunded_amount"] - counts["fee_amount"]


def figures(row: Mapping[str, Any], reasons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One group's (or one currency's) figures from its summed counts."""
    counts = {name: int(row[name]) for name in _COUNTS}
    decided = counts["approved_count"] + counts["declined_count"]
    approval, approval_bps = rate(counts["approved_count"], decided)
    fraud, fraud_bps = rate(counts["fraud_declined_count"], decided)
    return {
        "currency": row["currency"],
        **counts,
        "pending_count": counts["payments"] - decided,
        "approval_rate": approval,
        "approval_rate_bps": approval_bps,
        "fraud_decline_rate": fraud,
        "fraud_decline_rate_bps": fraud_bps,
        "decline_reasons": [
            {"reason": r["reason"], "count": int(r["count"])}
            for r in sorted(reasons, key=lambda r: (-int(r["count"]), r["reason"]))
        ],
        "average_ticket": average(counts["approved_volume"], counts["approved_count"]),
        "net_volume": net_volume(counts),
    }


def totals_per_currency(rows: Iterable[Any], reasons: Iterable[Any]) -> list[dict[str, Any]]:
    """Sums groups per currency (never across currencies), then recomputes the rates."""
    summed: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = summed.setdefault(row["currency"], {"currency": row["currency"]})
        for name in _COUNTS:
            into[name] = into.get(name, 0) + int(row[name])
    merged: dict[tuple[str, str], int] = {}
    for r in reasons:
        key = (r["currency"], r["reason"])
        merged[key] = merged.get(key, 0) + int(r["count"])
    return [
        figures(
            summed[currency],
            [
                {"reason": reason, "count": n}
                for (cur, reason), n in merged.items()
                if cur == currency
            ],
        )
        for currency in sorted(summed)
    ]


def groups(rows: Sequence[Any], reasons: Sequence[Any]) -> list[dict[str, Any]]:
    by_group: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in reasons:
        by_group.setdefault((r["key"], r["currency"]), []).append(r)
    return [
        {"key": row["key"], **figures(row, by_group.get((row["key"], row["currency"]), []))}
        for row in rows
    ]


async def summary_report(
    pool: asyncpg.Pool, merchant_id: str, query: ReportQuery
) -> dict[str, Any]:
    reports = PaymentReports(pool)
    zone = zone_of(await reports.time_zone(merchant_id))
    start, end = resolve_period(query.from_, query.to, zone)
    rows, reasons = await reports.summary(merchant_id, query.group_by, start, end, zone.key)
    return {
        "object": "report.summary",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "time_zone": zone.key,
        "group_by": query.group_by,
        "groups": groups(rows, reasons),
        "totals": totals_per_currency(rows, reasons),
        "payout_timing": await timing_of_payouts(pool, merchant_id, start, end, zone),
        # --- multi-currency (issue 13, fx) ---
        "net_after_fees_and_fx": [
            {name: (r[name] if name == "currency" else int(r[name])) for name in _NET_FX}
            for r in await reports.net_after_fees_and_fx(merchant_id, start, end)
        ],
    }


async def timing_of_payouts(
    pool: asyncpg.Pool, merchant_id: str, start: datetime, end: datetime, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The payouts whose value date is a local day the period covers whole."""
    first = start.astimezone(zone).date()
    if start.astimezone(zone).time() != time.min:
        first += timedelta(days=1)
    after_last = end.astimezone(zone).date()
    if after_last <= first:
        return []
    rows = await PayoutReadModel(pool).with_value_dates(merchant_id, first, after_last)
    return payout_timing(
        PayoutRow(
            r["currency"].strip(),
            r["status"],
            r["amount"],
            r["value_date"],
            json.loads(r["lines"]) if isinstance(r["lines"], str) else r["lines"],
        )
        for r in rows
    )
