"""Ledger days: every kind to its statement line, lines adding up to the payable's movement,
days chained opening to closing. Synthetic entries stand in for the kinds other parts of
issue 13 add (FX, disputes)."""

from __future__ import annotations

import time
import uuid
from datetime import date

import pytest

from sanalpos_common.fees import FeePlan
from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    Direction,
    Entry,
    capture_transaction,
    merchant_payable,
    refund_transaction,
    reversal_transaction,
)
from settlement.domain.ledger_days import (
    KindTotal,
    Line,
    changed,
    entry_totals,
    figures,
    kind_totals,
    line_of,
    split,
    summarize_days,
)
from settlement.domain.payouts import (
    paid_transaction,
    payout_transaction,
    returned_transaction,
)
from settlement.service_layer.ledger_days import LedgerDayJob

PLAN = FeePlan("test", mdr_bps=200, installment_bps=0)
M = "mer_stmt"
PAYABLE = merchant_payable(M)
D1, D2, D3 = date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)


def lines(totals: list[KindTotal]) -> dict[Line, int]:
    out: dict[Line, int] = {}
    for total in totals:
        for line, amount in split(total).items():
            out[line] = out.get(line, 0) + amount
    return {k: v for k, v in out.items() if v}


def test_a_capture_shows_its_gross_as_sales_and_its_commission_as_fees() -> None:
    capture = capture_transaction(uuid.uuid4(), M, 10_000, "TRY", 1, PLAN)
    [total] = kind_totals(capture)
    assert (total.payable, total.fee_revenue) == (9_800, 200)
    assert lines([total]) == {Line.SALES: 10_000, Line.FEES: -200}


def test_a_reversal_takes_the_sale_and_gives_the_fee_back() -> None:
    capture = capture_transaction(uuid.uuid4(), M, 10_000, "TRY", 1, PLAN)
    reversal = reversal_transaction(capture)
    assert lines(kind_totals(reversal)) == {Line.SALES: -10_000, Line.FEES: 200}
    assert lines(kind_totals(capture) + kind_totals(reversal)) == {}


def test_refunds_and_payouts_have_their_own_lines_and_paid_moves_nothing() -> None:
    refund = refund_transaction(uuid.uuid4(), uuid.uuid4(), M, 2_500, "TRY")
    payout_id = uuid.uuid4()
    assert lines(kind_totals(refund)) == {Line.REFUNDS: -2_500}
    assert lines(kind_totals(payout_transaction(payout_id, M, 7_000, "TRY"))) == {
        Line.PAYOUTS: -7_000
    }
    assert lines(kind_totals(returned_transaction(payout_id, M, 7_000, "TRY"))) == {
        Line.PAYOUTS: 7_000
    }
    assert kind_totals(paid_transaction(payout_id, M, 7_000, "TRY")) == []


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("fx_conversion", Line.FX),
        ("fx_markup", Line.FX),
        ("dispute_hold", Line.DISPUTES),
        ("dispute_release", Line.DISPUTES),
        ("dispute_loss", Line.DISPUTES),
        ("dispute_fee", Line.DISPUTES),
        ("capture", Line.SALES),
        ("reversal", Line.SALES),
        ("refund", Line.REFUNDS),
        ("payout", Line.PAYOUTS),
        ("payout_returned", Line.PAYOUTS),
        ("installment_magic", Line.OTHER),
    ],
)
def test_every_kind_has_a_line_and_an_unknown_one_lands_in_other(kind: str, line: Line) -> None:
    assert line_of(kind) is line


def test_a_conversion_moves_each_currency_on_the_fx_line() -> None:
    entries = [
        Entry(PAYABLE, Direction.DEBIT, 1_000, "EUR"),
        Entry("fx:clearing", Direction.CREDIT, 1_000, "EUR"),
        Entry("fx:clearing", Direction.DEBIT, 36_512, "TRY"),
        Entry(PAYABLE, Direction.CREDIT, 36_512, "TRY"),
    ]
    totals = entry_totals("fx_conversion", M, entries)
    assert {t.currency: split(t) for t in totals} == {
        "EUR": {Line.FX: -1_000},
        "TRY": {Line.FX: 36_512},
    }


def test_a_dispute_fee_credited_to_fee_revenue_stays_on_the_disputes_line() -> None:
    entries = [
        Entry(PAYABLE, Direction.DEBIT, 1_500, "TRY"),
        Entry(FEE_REVENUE, Direction.CREDIT, 1_500, "TRY"),
    ]
    assert lines(entry_totals("dispute_fee", M, entries)) == {Line.DISPUTES: -1_500}
    hold = [
        Entry(PAYABLE, Direction.DEBIT, 4_000, "TRY"),
        Entry(f"merchant:{M}:held", Direction.CREDIT, 4_000, "TRY"),
    ]
    assert lines(entry_totals("dispute_hold", M, hold)) == {Line.DISPUTES: -4_000}


def test_another_merchants_payable_is_not_this_ones() -> None:
    entries = [
        Entry(merchant_payable("someone_else"), Direction.CREDIT, 900, "TRY"),
        Entry(CLEARING, Direction.DEBIT, 900, "TRY"),
    ]
    assert entry_totals("capture", M, entries) == []


def test_days_chain_from_the_opening_and_lines_add_up_to_the_closing() -> None:
    capture = capture_transaction(uuid.uuid4(), M, 10_000, "TRY", 1, PLAN)
    refund = refund_transaction(uuid.uuid4(), uuid.uuid4(), M, 3_000, "TRY")
    payout = payout_transaction(uuid.uuid4(), M, 6_800, "TRY")
    eur = capture_transaction(uuid.uuid4(), M, 5_000, "EUR", 1, PLAN)
    rows = [
        (D2, t)
        for t in kind_totals(capture) + kind_totals(capture) + kind_totals(eur)  # 2 captures
    ]
    rows += [(D3, t) for t in kind_totals(refund) + kind_totals(payout)]
    rows += [(D1, KindTotal("fx_markup", "TRY", -50, 0, 1))]
    days = summarize_days({"TRY": 1_000}, rows)
    assert [(d.currency, d.day) for d in days] == [
        ("EUR", D2),
        ("TRY", D1),
        ("TRY", D2),
        ("TRY", D3),
    ]
    eur_day, try1, try2, try3 = days
    assert (eur_day.opening, eur_day.line(Line.SALES), eur_day.closing) == (0, 5_000, 4_900)
    assert (try1.opening, try1.line(Line.FX), try1.closing) == (1_000, -50, 950)
    assert try2.opening == 950 and try2.line(Line.SALES) == 20_000
    assert try2.line(Line.FEES) == -400 and try2.closing == 950 + 19_600
    assert try2.counts == {"capture": 2}
    assert try3.opening == try2.closing
    assert (try3.line(Line.REFUNDS), try3.line(Line.PAYOUTS)) == (-3_000, -6_800)
    assert try3.counts == {"refund": 1, "payout": 1}
    for day in days:
        assert day.opening + sum(day.lines.values()) == day.closing


def test_a_day_is_announced_again_only_when_a_figure_changed() -> None:
    [day] = summarize_days({}, [(D1, KindTotal("refund", "TRY", -100, 0, 1))])
    stored = {**figures(day), "version": 3, "computed_at": None}
    assert changed(day, None) is True
    assert changed(day, stored) is False
    assert changed(day, {**stored, "opening_balance": 5}) is True
    assert changed(day, {**stored, "refund_count": 2}) is True


async def test_the_job_is_ready_while_a_long_first_pass_runs_but_not_when_stuck() -> None:
    job = LedgerDayJob(pool=None, producer="settlement", interval_s=30)  # type: ignore[arg-type]
    job._started = time.monotonic() - 600
    assert (await job.readiness())[0] is False, "no pass for ten minutes"
    job._pass_started = time.monotonic() - 300
    assert (await job.readiness())[0] is True, "the first pass over a big ledger is running"
    job._pass_started = time.monotonic() - 1_000
    assert (await job.readiness())[0] is False, "a pass running for too long is stuck"
    job._pass_started, job._last_pass = None, time.monotonic() - 5
    assert (await job.readiness())[0] is True
