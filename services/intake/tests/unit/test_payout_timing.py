"""Payout timing per currency: counts and amounts by status, days from batch date to value
date over the positive lines of paid and in-transit payouts."""

from __future__ import annotations

from datetime import date

from intake.domain.payout_timing import PayoutRow, payout_timing
from intake.service_layer.reports import net_volume


def line(batch_date: str, amount: int) -> dict[str, object]:
    return {"batch_date": batch_date, "amount": amount}


def test_timing_counts_paid_and_in_transit_lines_and_skips_returned_and_negative_ones() -> None:
    rows = [
        PayoutRow(
            "TRY",
            "paid",
            900,
            date(2026, 11, 4),
            [line("2026-11-02", 1_000), line("2026-11-01", -100)],
        ),
        PayoutRow(
            "TRY",
            "in_transit",
            50,
            date(2026, 11, 9),
            [{"batch_date": date(2026, 11, 2), "amount": 50}],
        ),
        PayoutRow("TRY", "returned", 70, date(2026, 11, 30), [line("2026-11-01", 70)]),
        PayoutRow("EUR", "returned", 10, date(2026, 11, 3), [line("2026-11-02", 10)]),
    ]
    eur, try_ = payout_timing(rows)
    assert try_["currency"] == "TRY"
    assert (try_["paid_count"], try_["paid_amount"]) == (1, 900)
    assert (try_["in_transit_count"], try_["in_transit_amount"]) == (1, 50)
    assert (try_["returned_count"], try_["returned_amount"]) == (1, 70)
    assert (try_["batches_paid"], try_["average_days_to_payout"], try_["max_days_to_payout"]) == (
        2,
        "4.50",
        7,
    )
    assert (eur["returned_count"], eur["batches_paid"], eur["average_days_to_payout"]) == (
        1,
        0,
        None,
    )
    assert eur["max_days_to_payout"] is None
    assert payout_timing([]) == []


def test_net_volume_is_captured_less_refunds_and_fees() -> None:
    counts = {"captured_volume": 20_000, "refunded_amount": 3_000, "fee_amount": 250}
    assert net_volume(counts) == 16_750
