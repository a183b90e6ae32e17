"""The daily clearing file against the real database: captures, voids after capture and
refunds executed by the handlers land in it (through migration 0005's triggers), the loop
publishes a finished day once through the outbox, and an on-demand run publishes a new
version. Authorization's side of reconciliation (docs/reconciliation.md)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authorization.service_layer.clearing import ClearingJob
from sanalpos_common import topics
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE

from .conftest import MERCHANT, Lifecycle


async def _files(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    rows = await lifecycle.pool.fetch(
        "SELECT topic, payload FROM outbox WHERE message_key = $1 AND topic = $2 ORDER BY id",
        str(uuid.uuid5(MERCHANT_NAMESPACE, MERCHANT)),
        topics.CLEARING_REPORTED,
    )
    return [json.loads(r["payload"])["payload"] for r in rows]


async def test_the_clearing_file_lists_every_money_operation_of_the_day(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    sale = await lifecycle.pay(pan, 10_000, capture=True)
    preauth = await lifecycle.pay(pan, 20_000)
    await lifecycle.capture(preauth, 15_000)
    refund_id = await lifecycle.refund(preauth, 4_000)
    voided = await lifecycle.pay(pan, 3_000, capture=True)
    await lifecycle.void(voided)
    released = await lifecycle.pay(pan, 2_000)
    await lifecycle.void(released)  # a hold released before capture: no money, no line

    now = datetime.now(UTC)
    job = ClearingJob(lifecycle.pool, "authorization", time_zone="UTC", clock=lambda: now)
    before = len(await _files(lifecycle))
    (published,) = await job.publish(now.date(), MERCHANT)
    files = (await _files(lifecycle))[before:]

    assert (published.currency, published.parts, len(files)) == ("TRY", 1, 1)
    (report,) = files
    assert (report["clearing_date"], report["version"]) == (now.date().isoformat(), 1)
    mine = {
        (line["kind"], line["payment_id"], line["refund_id"], line["amount"])
        for line in report["lines"]
        if line["payment_id"] in {str(sale), str(preauth), str(voided), str(released)}
    }
    assert mine == {
        ("capture", str(sale), None, 10_000),
        ("capture", str(preauth), None, 15_000),
        ("refund", str(preauth), str(refund_id), 4_000),
        ("capture", str(voided), None, 3_000),
        ("void", str(voided), None, 3_000),
    }
    for kind in ("capture", "refund", "void"):
        of_kind = [line["amount"] for line in report["lines"] if line["kind"] == kind]
        assert (report[f"{kind}_count"], report[f"{kind}_amount"]) == (len(of_kind), sum(of_kind))

    again = await job.publish(now.date(), MERCHANT)
    assert [f.version for f in again] == [2]
    assert [f["version"] for f in (await _files(lifecycle))[before:]] == [1, 2]


async def test_the_loop_publishes_each_finished_day_once(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 5_000, capture=True)
    # As if it had been captured three days ago (the clock of the database's triggers).
    await lifecycle.pool.execute(
        "UPDATE clearing_operations SET occurred_at = occurred_at - interval '3 days' "
        "WHERE payment_id = $1",
        payment,
    )
    now = datetime.now(UTC)
    day = (now - timedelta(days=3)).date()
    job = ClearingJob(lifecycle.pool, "authorization", time_zone="UTC", clock=lambda: now)
    first = await job.publish_due()
    assert [(f.merchant_id, f.clearing_date, f.version, f.lines) for f in first] == [
        (MERCHANT, day, 1, 1)
    ]
    assert await job.publish_due() == []  # published; and today is not over yet
    (report,) = [f for f in await _files(lifecycle) if f["clearing_date"] == day.isoformat()]
    assert [line["payment_id"] for line in report["lines"]] == [str(payment)]
