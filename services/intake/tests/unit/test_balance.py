from datetime import date

from intake.domain.balance import ClosedBatch, CurrencyBalance, balances

TODAY = date(2026, 10, 29)


def test_value_date_ahead_is_pending_and_reached_is_available() -> None:
    result = balances(
        [
            ClosedBatch("TRY", date(2026, 10, 28), 5_000),
            ClosedBatch("TRY", TODAY, 1_000),
            ClosedBatch("TRY", date(2026, 10, 30), 7_000),
            ClosedBatch("TRY", date(2026, 11, 2), 3_000),
            ClosedBatch("TRY", date(2026, 10, 30), -500),
        ],
        TODAY,
    )
    assert result == [
        CurrencyBalance(
            "TRY",
            pending=9_500,
            available=6_000,
            next_value_date=date(2026, 10, 30),
            next_value_amount=6_500,
        )
    ]


def test_each_currency_apart_and_a_negative_net_is_kept() -> None:
    result = balances(
        [ClosedBatch("USD", date(2026, 10, 1), -2_000), ClosedBatch("EUR", TODAY, 10)], TODAY
    )
    assert [(b.currency, b.pending, b.available, b.next_value_date) for b in result] == [
        ("EUR", 0, 10, None),
        ("USD", 0, -2_000, None),
    ]


def test_no_batches_no_balances() -> None:
    assert balances([], TODAY) == []


def test_disputes_hold_and_their_unbatched_moves_count_in_pending() -> None:
    """A 100.00 sale (net 98.20) closed; a dispute holds 100.00, its hold in an open batch."""
    today = date(2026, 12, 3)
    closed = [ClosedBatch("TRY", date(2026, 12, 4), 9_820)]
    [try_] = balances(closed, today, held={"TRY": 10_000}, unbatched={"TRY": -10_000})
    assert (try_.pending, try_.available, try_.held) == (-180, 0, 10_000)
    assert try_.pending + try_.available + try_.held == 9_820


def test_a_dispute_in_a_currency_with_no_batch_still_shows() -> None:
    [eur] = balances([], date(2026, 12, 3), held={"EUR": 5_000}, unbatched={"EUR": -5_000})
    assert (eur.currency, eur.pending, eur.available, eur.held) == ("EUR", -5_000, 0, 5_000)
