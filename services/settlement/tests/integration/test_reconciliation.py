"""Reconciliation in the settlement service, in-process on real Kafka and PostgreSQL:
captures, voids and refunds arrive on their topics, authorization's clearing file on its own
(authorization.clearing-reported.v1, as authorization's clearing job publishes it). A clean
day reports zero mismatches; deliberate ones (a capture missing from the ledger, an amount
that differs, a duplicate line, a ledger capture no file lists, a tampered payout) are found,
stored with their reasons, listed by the ops API and the CLI, and counted in the metric."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.events import (
    ClearingKind,
    ClearingLine,
    ClearingReported,
    PaymentRefunded,
    PaymentVoided,
)
from sanalpos_common.testing import wait_for
from settlement.entrypoints.cli import recon_main
from settlement.service_layer.reconciliation import Reconciler

from .test_payouts import ADMIN, Service, capture, close, new_merchant, run, service

__all__ = ["service"]  # the module's fixture, shared with the payout tests
TODAY = datetime.now(ZoneInfo("Europe/Istanbul")).date()


def line(kind: ClearingKind, payment_id: uuid.UUID, amount: int, refund_id: Any = None) -> Any:
    return ClearingLine(
        kind=kind,
        payment_id=payment_id,
        refund_id=refund_id,
        amount=amount,
        occurred_at=datetime.now(UTC),
    )


async def publish_file(
    service: Service, merchant_id: str, lines: list[ClearingLine], version: int = 1
) -> None:
    def total(kind: ClearingKind) -> dict[str, int]:
        amounts = [x.amount for x in lines if x.kind is kind]
        return {f"{kind.value}_count": len(amounts), f"{kind.value}_amount": sum(amounts)}

    report = ClearingReported(
        merchant_id=merchant_id,
        currency="TRY",
        clearing_date=TODAY,
        version=version,
        part=1,
        part_count=1,
        lines=tuple(lines),
        generated_at=datetime.now(UTC),
        **total(ClearingKind.CAPTURE),
        **total(ClearingKind.REFUND),
        **total(ClearingKind.VOID),
    )
    await service.publish(topics.CLEARING_REPORTED, report, merchant_id)
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM clearing_files WHERE merchant_id = $1 AND version = $2 "
            "AND completed_at IS NOT NULL",
            merchant_id,
            version,
        ),
        timeout=30,
    )


async def refund(
    service: Service, merchant_id: str, payment_id: uuid.UUID, amount: int
) -> uuid.UUID:
    refund_id = uuid.uuid4()
    event = PaymentRefunded(
        refund_id=refund_id,
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        reason="returned goods",
    )
    await service.publish(topics.PAYMENT_REFUNDED, event, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM ledger_transactions WHERE payment_id = $1 AND kind = 'refund'",
            payment_id,
        ),
        timeout=30,
    )
    return refund_id


async def void(service: Service, merchant_id: str, payment_id: uuid.UUID, amount: int) -> None:
    event = PaymentVoided(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        after_capture=True,
    )
    await service.publish(topics.PAYMENT_VOIDED, event, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM ledger_transactions WHERE payment_id = $1 AND kind = 'reversal'",
            payment_id,
        ),
        timeout=30,
    )


async def cli(argv: list[str]) -> int:
    """`sanalpos recon ...` (its own event loop, so in a thread)."""
    return await asyncio.to_thread(recon_main, argv)


async def recon(service: Service, merchant_id: str, day: date = TODAY) -> dict[str, Any]:
    result: dict[str, Any] = await service.post(
        "/admin/recon/run", {"date": day.isoformat(), "merchant_id": merchant_id}
    )
    return result


async def test_a_clean_day_reports_zero(service: Service) -> None:
    merchant_id = await new_merchant(service)
    sale = await capture(service, merchant_id, 10_000)
    other = await capture(service, merchant_id, 7_500)
    refund_id = await refund(service, merchant_id, sale, 2_500)
    cancelled = await capture(service, merchant_id, 1_200)
    await void(service, merchant_id, cancelled, 1_200)
    await publish_file(
        service,
        merchant_id,
        [
            line(ClearingKind.CAPTURE, sale, 10_000),
            line(ClearingKind.CAPTURE, other, 7_500),
            line(ClearingKind.REFUND, sale, 2_500, refund_id),
            line(ClearingKind.CAPTURE, cancelled, 1_200),
            line(ClearingKind.VOID, cancelled, 1_200),
        ],
    )

    # The daily trigger: a complete file not reconciled yet; once run, it is not run again.
    reconciler = Reconciler(service.pool, "settlement", settle_s=0)
    daily = [o for o in await reconciler.run_due() if o.merchant_id == merchant_id]
    assert [(o.recon_date, o.clearing_version, o.mismatches) for o in daily] == [(TODAY, 1, [])]
    assert [o for o in await reconciler.run_due() if o.merchant_id == merchant_id] == []

    result = await recon(service, merchant_id)
    assert result["mismatch_count"] == 0
    [run_] = result["runs"]
    assert (run_["currency"], run_["clearing_version"], run_["mismatches"]) == ("TRY", 1, [])
    runs = (
        await service.http.get(
            "/admin/recon/runs", params={"merchant_id": merchant_id}, headers=ADMIN
        )
    ).json()
    assert [(r["trigger"], r["mismatch_count"]) for r in runs] == [("manual", 0), ("daily", 0)]


async def test_deliberate_mismatches_are_found_stored_listed_and_counted(
    service: Service,
    schema_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    merchant_id = await new_merchant(service)
    differs = await capture(service, merchant_id, 10_000)
    booked_only = await capture(service, merchant_id, 3_000)
    refunded = await capture(service, merchant_id, 5_000)
    refund_id = await refund(service, merchant_id, refunded, 1_000)
    never_booked = uuid.uuid4()  # cleared by authorization, never read by settlement
    await publish_file(
        service,
        merchant_id,
        [
            line(ClearingKind.CAPTURE, differs, 12_000),
            line(ClearingKind.CAPTURE, refunded, 5_000),
            line(ClearingKind.REFUND, refunded, 1_000, refund_id),
            line(ClearingKind.REFUND, refunded, 1_000, refund_id),
            line(ClearingKind.CAPTURE, never_booked, 4_000),
        ],
    )

    result = await recon(service, merchant_id)
    found = {
        (m["kind"], m["source"], m["reference"], m["expected_amount"], m["actual_amount"])
        for m in result["runs"][0]["mismatches"]
    }
    assert found == {
        ("amount_differs", "ledger", str(differs), 12_000, 10_000),
        ("duplicate", "clearing", str(refunded), None, 2),
        ("missing", "ledger", str(never_booked), 4_000, None),
        ("missing", "clearing", str(booked_only), None, 3_000),
    }
    assert result["mismatch_count"] == 4

    listed = (
        await service.http.get(
            "/admin/recon/mismatches", params={"merchant_id": merchant_id}, headers=ADMIN
        )
    ).json()
    assert sorted(m["reason"] for m in listed) == sorted(
        [
            f"capture of payment {differs}: cleared 12000, ledger 10000",
            f"refund {refund_id} of payment {refunded} is 2 times in the clearing file",
            f"capture of payment {never_booked} (4000) is cleared but not in the ledger",
            f"ledger capture of payment {booked_only} (3000) is in no clearing file",
        ]
    )
    missing = (
        await service.http.get(
            "/admin/recon/mismatches",
            params={"merchant_id": merchant_id, "kind": "missing"},
            headers=ADMIN,
        )
    ).json()
    assert {m["reference"] for m in missing} == {str(never_booked), str(booked_only)}
    metrics = (await service.http.get("/metrics")).text
    gauge = {
        ln.split("{")[1].split("}")[0]: float(ln.rsplit(" ", 1)[1])
        for ln in metrics.splitlines()
        if ln.startswith("sanalpos_settlement_recon_mismatches{")
    }
    assert gauge['kind="missing"'] >= 2 and gauge['kind="duplicate"'] >= 1
    assert gauge['kind="amount_differs"'] >= 1

    monkeypatch.setenv("SETTLEMENT_DATABASE_URL", schema_dsn)
    assert await cli(["mismatches", "--merchant", merchant_id, "--date", TODAY.isoformat()]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {m["reference"] for m in printed} == {
        str(differs),
        str(refunded),
        str(never_booked),
        str(booked_only),
    }

    # Authorization re-runs the day with the file put right: the new version replaces the old,
    # and the next run reports only what is still wrong (the ledger's own capture, unlisted).
    await publish_file(
        service,
        merchant_id,
        [
            line(ClearingKind.CAPTURE, differs, 10_000),
            line(ClearingKind.CAPTURE, refunded, 5_000),
            line(ClearingKind.REFUND, refunded, 1_000, refund_id),
            line(ClearingKind.CAPTURE, booked_only, 3_000),
        ],
        version=2,
    )
    assert await cli(["run", "--merchant", merchant_id, "--date", TODAY.isoformat()]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["mismatch_count"], printed["runs"][0]["clearing_version"]) == (0, 2)


async def test_payouts_are_matched_to_their_batches_and_the_ledger(service: Service) -> None:
    merchant_id = await new_merchant(service)
    await capture(service, merchant_id, 20_000)
    batch = await close(service, merchant_id)
    value_date = date.fromisoformat(batch["value_date"])
    [payout] = (await run(service, merchant_id, batch["value_date"]))["payouts"]

    clean = await recon(service, merchant_id, value_date)
    assert [(r["mismatch_count"]) for r in clean["runs"]] == [0]

    # A payout line tampered with: it no longer adds up to the payout nor to its batch.
    await service.pool.execute(
        "UPDATE payout_lines SET amount = amount - 1 WHERE payout_id = $1",
        uuid.UUID(payout["id"]),
    )
    found = (await recon(service, merchant_id, value_date))["runs"][0]["mismatches"]
    assert {(m["kind"], m["source"], m["expected_amount"], m["actual_amount"]) for m in found} == {
        ("amount_differs", "payouts", payout["amount"] - 1, payout["amount"]),
        ("amount_differs", "payouts", batch["totals"]["net_amount"], payout["amount"] - 1),
    }


async def test_a_day_whose_clearing_file_never_came_is_reconciled_without_it(
    service: Service,
) -> None:
    merchant_id = await new_merchant(service)
    sale = await capture(service, merchant_id, 6_000)
    zone = ZoneInfo("Europe/Istanbul")
    tomorrow = datetime.combine(TODAY + timedelta(days=1), time(0), zone)

    def reconciler(at: datetime) -> Reconciler:
        return Reconciler(service.pool, "settlement", settle_s=0, clock=lambda: at)

    # An hour after midnight authorization's file may still come: nothing yet.
    early = await reconciler(tomorrow + timedelta(hours=1)).run_due()
    assert [o for o in early if o.merchant_id == merchant_id] == []
    late = reconciler(tomorrow + timedelta(hours=3))
    [outcome] = [o for o in await late.run_due() if o.merchant_id == merchant_id]
    assert (outcome.recon_date, outcome.clearing_version) == (TODAY, None)
    assert [(m.kind, m.source, m.reference) for m in outcome.mismatches] == [
        ("missing", "clearing", sale)
    ]
    assert [o for o in await late.run_due() if o.merchant_id == merchant_id] == []
