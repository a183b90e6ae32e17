"""The pure matching of reconciliation (domain/reconciliation.py)."""

from __future__ import annotations

import uuid

from sanalpos_common.schemas.events import ClearingKind
from settlement.domain.ledger import Kind
from settlement.domain.reconciliation import (
    ClearingItem,
    FileTotals,
    LedgerItem,
    MismatchKind,
    PayoutCheck,
    PayoutLineCheck,
    Source,
    match_clearing,
    match_payouts,
)


def _booked(item: ClearingItem, amount: int | None = None) -> LedgerItem:
    kind = {"capture": Kind.CAPTURE, "void": Kind.REVERSAL, "refund": Kind.REFUND}[item.kind]
    return LedgerItem(item.ledger_transaction_id, kind, item.payment_id, amount or item.amount)


def _totals(lines: list[ClearingItem]) -> FileTotals:
    def of(kind: ClearingKind) -> list[int]:
        return [x.amount for x in lines if x.kind is kind]

    c, r, v = of(ClearingKind.CAPTURE), of(ClearingKind.REFUND), of(ClearingKind.VOID)
    return FileTotals(len(c), sum(c), len(r), sum(r), len(v), sum(v))


def _day() -> tuple[list[ClearingItem], dict[uuid.UUID, LedgerItem]]:
    sale, cancelled = uuid.uuid4(), uuid.uuid4()
    lines = [
        ClearingItem(ClearingKind.CAPTURE, sale, None, 10_000),
        ClearingItem(ClearingKind.REFUND, sale, uuid.uuid4(), 2_500),
        ClearingItem(ClearingKind.CAPTURE, cancelled, None, 1_200),
        ClearingItem(ClearingKind.VOID, cancelled, None, 1_200),
    ]
    return lines, {x.ledger_transaction_id: _booked(x) for x in lines}


def test_a_clean_day_has_no_mismatch() -> None:
    lines, ledger = _day()
    cleared = set(ledger)
    assert match_clearing(lines, _totals(lines), ledger, ledger.values(), cleared) == []


def test_the_ledger_ids_are_the_ones_settlement_books() -> None:
    payment, refund = uuid.uuid4(), uuid.uuid4()
    assert ClearingItem(ClearingKind.CAPTURE, payment, None, 1).ledger_transaction_id == (
        uuid.uuid5(payment, "capture")
    )
    assert ClearingItem(ClearingKind.VOID, payment, None, 1).ledger_transaction_id == (
        uuid.uuid5(payment, "reversal")
    )
    assert ClearingItem(ClearingKind.REFUND, payment, refund, 1).ledger_transaction_id == (
        uuid.uuid5(refund, "refund")
    )


def test_missing_from_the_ledger_amount_differs_and_duplicate() -> None:
    lines, ledger = _day()
    capture, refund, _, void = lines
    del ledger[void.ledger_transaction_id]
    ledger[capture.ledger_transaction_id] = _booked(capture, 9_999)
    doubled = [*lines, refund]
    found = match_clearing(doubled, _totals(doubled), ledger, ledger.values(), set(ledger))
    assert {(m.kind, m.source, m.reference, m.expected, m.actual) for m in found} == {
        (MismatchKind.MISSING, Source.LEDGER, void.payment_id, 1_200, None),
        (MismatchKind.AMOUNT_DIFFERS, Source.LEDGER, capture.payment_id, 10_000, 9_999),
        (MismatchKind.DUPLICATE, Source.CLEARING, refund.payment_id, None, 2),
    }


def test_a_ledger_line_no_file_of_any_day_lists_is_missing_from_clearing() -> None:
    lines, ledger = _day()
    extra = LedgerItem(uuid.uuid4(), Kind.CAPTURE, uuid.uuid4(), 700)
    # A capture booked just after midnight whose line is in yesterday's file is matched.
    yesterdays = LedgerItem(uuid.uuid4(), Kind.CAPTURE, uuid.uuid4(), 800)
    of_day = [*ledger.values(), extra, yesterdays]
    found = match_clearing(
        lines, _totals(lines), ledger, of_day, {*ledger, yesterdays.transaction_id}
    )
    assert [(m.kind, m.source, m.reference, m.actual) for m in found] == [
        (MismatchKind.MISSING, Source.CLEARING, extra.payment_id, 700)
    ]


def test_file_totals_that_do_not_add_up_to_its_lines() -> None:
    lines, ledger = _day()
    wrong = FileTotals(2, 11_200, 1, 2_500, 1, 1_000)
    found = match_clearing(lines, wrong, ledger, ledger.values(), set(ledger))
    assert [(m.kind, m.source, m.expected, m.actual) for m in found] == [
        (MismatchKind.AMOUNT_DIFFERS, Source.CLEARING, 1_000, 1_200)
    ]


def test_no_file_at_all_makes_every_ledger_line_of_the_day_missing_from_clearing() -> None:
    _, ledger = _day()
    found = match_clearing([], None, {}, ledger.values(), set())
    assert len(found) == 4
    assert {(m.kind, m.source) for m in found} == {(MismatchKind.MISSING, Source.CLEARING)}


def test_payouts_lines_ledger_and_double_payment() -> None:
    batch = uuid.uuid4()
    good = PayoutCheck(uuid.uuid4(), 5_000, (PayoutLineCheck(batch, 5_000, 5_000, 1),), 5_000)
    assert match_payouts([good]) == []
    bad = PayoutCheck(
        uuid.uuid4(),
        5_000,
        (PayoutLineCheck(batch, 4_000, 5_000, 2), PayoutLineCheck(uuid.uuid4(), 500, 500, 1)),
        None,
    )
    found = match_payouts([bad])
    assert {(m.kind, m.source, m.expected, m.actual) for m in found} == {
        (MismatchKind.AMOUNT_DIFFERS, Source.PAYOUTS, 4_500, 5_000),
        (MismatchKind.MISSING, Source.LEDGER, 5_000, None),
        (MismatchKind.AMOUNT_DIFFERS, Source.PAYOUTS, 5_000, 4_000),
        (MismatchKind.DUPLICATE, Source.PAYOUTS, None, 2),
    }
    off = PayoutCheck(uuid.uuid4(), 5_000, (PayoutLineCheck(batch, 5_000, 5_000, 1),), 4_999)
    assert [(m.kind, m.source) for m in match_payouts([off])] == [
        (MismatchKind.AMOUNT_DIFFERS, Source.LEDGER)
    ]
