"""The per-installment payout schedule (domain/installments.py)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.domain.installments import (
    SettledSale,
    add_months,
    batch_schedule,
    installment_parts,
    split,
)
from settlement.domain.value_dates import BusinessCalendar

TR = BusinessCalendar("TR")


def test_the_first_part_takes_the_remainder() -> None:
    assert split(1_000, 3) == [334, 333, 333]
    assert split(999, 3) == [333, 333, 333]
    assert split(2, 3) == [2, 0, 0]
    assert split(5_000, 1) == [5_000]


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=12))
def test_parts_add_up_to_the_net_exactly_and_differ_by_less_than_n(net: int, n: int) -> None:
    parts = split(net, n)
    assert len(parts) == n and sum(parts) == net
    assert max(parts) - min(parts) < n
    assert parts[0] == max(parts)


def test_a_negative_net_or_no_part_is_refused() -> None:
    with pytest.raises(ValueError):
        split(-1, 2)
    with pytest.raises(ValueError):
        split(10, 0)


def test_months_keep_the_day_or_take_the_last_of_a_shorter_month() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)


def test_the_kth_part_is_due_k_months_after_the_batch_on_a_business_day() -> None:
    payment = uuid.uuid4()
    # 2026-03-20: +1 month is Mon 20 April (a business day), +2 is Wed 20 May, +3 is Sat 20
    # June -> Mon 22 June.
    parts = installment_parts(payment, 30_001, 3, date(2026, 3, 20), TR)
    assert [(p.part, p.parts, p.value_date, p.amount) for p in parts] == [
        (1, 3, date(2026, 4, 20), 10_001),
        (2, 3, date(2026, 5, 20), 10_000),
        (3, 3, date(2026, 6, 22), 10_000),
    ]


def test_a_holiday_moves_a_part_to_the_next_business_day() -> None:
    # 2026-03-23 + 1 month = Thu 23 April, National Sovereignty and Children's Day -> Fri 24.
    [part] = installment_parts(uuid.uuid4(), 500, 1, date(2026, 3, 23), TR)
    assert part.value_date == date(2026, 4, 24)


def test_a_batch_schedule_adds_up_to_the_batch_net_with_refunds_at_the_value_date() -> None:
    sale, other = SettledSale(uuid.uuid4(), 9_700, 3), SettledSale(uuid.uuid4(), 4_850, 1)
    refunds = -1_000
    batch_net = sale.net + other.net + refunds
    parts = batch_schedule(date(2026, 3, 20), date(2026, 3, 23), batch_net, [sale, other], TR)
    assert sum(p.amount for p in parts) == batch_net
    assert [(p.payment_id, p.amount) for p in parts if p.value_date == date(2026, 4, 20)] == [
        (sale.payment_id, 3_234),
        (other.payment_id, 4_850),
    ]
    [rest] = [p for p in parts if p.payment_id is None]
    assert (rest.value_date, rest.amount) == (date(2026, 3, 23), refunds)
    # Nothing else in the batch: no extra line.
    alone = batch_schedule(date(2026, 3, 20), date(2026, 3, 23), sale.net, [sale], TR)
    assert [p.payment_id for p in alone] == [sale.payment_id] * 3
