"""Installment payouts in the settlement service, in-process on real Kafka and PostgreSQL: a
merchant on the `per_installment` payout plan (merchant.updated), a 3-installment sale
captured on Kafka, its batch closed and the payout job run over HTTP. The sale becomes three
dated parts adding up to its net; the payout job on the first part's value date pays only
the first part, and reconciliation finds the payout clean."""

from __future__ import annotations

import uuid
from datetime import date, time

from sanalpos_common import topics
from sanalpos_common.schemas.events import MerchantUpdated, PaymentCaptured
from sanalpos_common.testing import wait_for
from settlement.domain.installments import add_months
from settlement.domain.value_dates import BusinessCalendar

from .test_payouts import Service, close, new_merchant, run, service

__all__ = ["service"]  # the module's fixture, shared with the payout tests
TR = BusinessCalendar("TR")


async def per_installment_merchant(service: Service) -> str:
    merchant_id = await new_merchant(service)
    profile = MerchantUpdated(
        merchant_id=merchant_id,
        name="Taksit Shop",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="volume",
        version=2,
        payout_delay_days=1,
        payout_plan="per_installment",
    )
    await service.publish(topics.MERCHANT_UPDATED, profile, merchant_id)
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1 AND payout_plan = 'per_installment'",
            merchant_id,
        ),
        timeout=30,
    )
    return merchant_id


async def capture(service: Service, merchant_id: str, amount: int, installments: int) -> uuid.UUID:
    payment_id = uuid.uuid4()
    event = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        installments=installments,
        auth_code="123456",
    )
    await service.publish(topics.PAYMENT_CAPTURED, event, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM settlement_payments WHERE payment_id = $1", payment_id
        ),
        timeout=30,
    )
    return payment_id


async def test_a_three_installment_sale_is_paid_in_three_dated_parts(service: Service) -> None:
    merchant_id = await per_installment_merchant(service)
    sale = await capture(service, merchant_id, 30_000, 3)
    fee = await service.pool.fetchval(
        "SELECT fee_amount FROM settlement_payments WHERE payment_id = $1", sale
    )
    batch = await close(service, merchant_id)
    batch_date = date.fromisoformat(batch["batch_date"])
    net = 30_000 - fee
    assert batch["totals"]["net_amount"] == net

    parts = await service.pool.fetch(
        "SELECT payment_id, part, parts, value_date, amount, payout_id FROM payout_schedule "
        "WHERE batch_id = $1 ORDER BY part",
        uuid.UUID(batch["id"]),
    )
    expected_dates = [TR.add_business_days(add_months(batch_date, k), 0) for k in (1, 2, 3)]
    base = net // 3
    assert [(r["payment_id"], r["part"], r["parts"], r["value_date"]) for r in parts] == [
        (sale, k, 3, expected_dates[k - 1]) for k in (1, 2, 3)
    ]
    assert [r["amount"] for r in parts] == [net - 2 * base, base, base]
    assert all(r["payout_id"] is None for r in parts)

    # The batch's own value date (T+1) pays nothing: the parts are months away.
    early = await run(service, merchant_id, batch["value_date"])
    assert (early["payouts"], early["holds"]) == ([], [])

    first = expected_dates[0]
    [payout] = (await run(service, merchant_id, first.isoformat()))["payouts"]
    assert payout["amount"] == net - 2 * base
    assert [(x["batch_id"], x["amount"], x["value_date"]) for x in payout["lines"]] == [
        (batch["id"], net - 2 * base, first.isoformat())
    ]
    paid = await service.pool.fetch(
        "SELECT part FROM payout_schedule WHERE batch_id = $1 AND payout_id = $2",
        uuid.UUID(batch["id"]),
        uuid.UUID(payout["id"]),
    )
    assert [r["part"] for r in paid] == [1]
    # A second run for the same date pays nothing more; the next part is due a month later.
    assert (await run(service, merchant_id, first.isoformat()))["payouts"] == []
    [second] = (await run(service, merchant_id, expected_dates[1].isoformat()))["payouts"]
    assert second["amount"] == base

    recon = await service.post(
        "/admin/recon/run", {"date": first.isoformat(), "merchant_id": merchant_id}
    )
    assert [r["mismatches"] for r in recon["runs"]] == [[]]
