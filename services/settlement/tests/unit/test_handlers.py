"""The settlement handlers, routed through the service's own table, with in-memory stores and
a unit of work that has no database: the ledger entries, batches and merchant profiles."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

import pytest
from pydantic import BaseModel

from sanalpos_common.fees import fee_plan
from sanalpos_common.messaging.consumer import NonRetryable
from sanalpos_common.schemas.events import (
    MerchantUpdated,
    PaymentCaptured,
    PaymentRefunded,
    PaymentVoided,
)
from sanalpos_common.testing import RecordingUnitOfWork, deliver
from settlement.adapters.batches import CaptureBooking, CapturedPayment
from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    Direction,
    Entry,
    Kind,
    LedgerTransaction,
    merchant_payable,
)
from settlement.domain.merchants import MerchantProfile
from settlement.service_layer.handlers import SettlementHandlers

MERCHANT = "mer_unit"
PAYABLE = merchant_payable(MERCHANT)
MONDAY_NOON = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # 12:00 in Istanbul
TUESDAY_NOON = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Batch:
    id: uuid.UUID
    merchant_id: str
    currency: str
    day: date
    closes_at: datetime
    open: bool = True


@dataclass
class FakeLedger:
    transactions: dict[uuid.UUID, tuple[LedgerTransaction, uuid.UUID]] = field(default_factory=dict)

    async def record(self, transaction: LedgerTransaction, batch_id: uuid.UUID) -> bool:
        if transaction.id in self.transactions:
            return False
        self.transactions[transaction.id] = (transaction, batch_id)
        return True

    async def get(self, transaction_id: uuid.UUID) -> LedgerTransaction | None:
        found = self.transactions.get(transaction_id)
        return None if found is None else found[0]

    def of(self, payment_id: uuid.UUID, kind: Kind) -> tuple[LedgerTransaction, uuid.UUID]:
        [found] = [
            t
            for t in self.transactions.values()
            if (t[0].payment_id, t[0].kind) == (payment_id, kind)
        ]
        return found


@dataclass
class FakeMerchants:
    profiles: dict[str, tuple[MerchantProfile, str, bool]] = field(default_factory=dict)

    async def apply(self, profile: MerchantProfile, name: str, active: bool) -> bool:
        held = self.profiles.get(profile.merchant_id)
        if held is not None and held[0].version >= profile.version:
            return False
        self.profiles[profile.merchant_id] = (profile, name, active)
        return True

    async def profile(self, merchant_id: str) -> MerchantProfile:
        held = self.profiles.get(merchant_id)
        return MerchantProfile(merchant_id) if held is None else held[0]


@dataclass
class FakeBatches:
    batches: dict[uuid.UUID, Batch] = field(default_factory=dict)

    async def open_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> uuid.UUID:
        for batch in self.batches.values():
            if batch.open and (batch.merchant_id, batch.currency, batch.day) == (
                merchant_id,
                currency,
                day,
            ):
                return batch.id
        batch = Batch(uuid.uuid4(), merchant_id, currency, day, closes_at)
        self.batches[batch.id] = batch
        return batch.id

    async def lock_if_open(self, batch_id: uuid.UUID) -> bool:
        return self.batches[batch_id].open

    async def open_batches_of(self, merchant_id: str) -> list[tuple[uuid.UUID, date]]:
        return [
            (b.id, b.day) for b in self.batches.values() if b.open and b.merchant_id == merchant_id
        ]

    async def reschedule(self, schedule: list[tuple[uuid.UUID, datetime]]) -> None:
        for batch_id, closes_at in schedule:
            self.batches[batch_id] = dataclasses.replace(
                self.batches[batch_id], closes_at=closes_at
            )

    def close(self, batch_id: uuid.UUID) -> None:
        self.batches[batch_id] = dataclasses.replace(self.batches[batch_id], open=False)


@dataclass
class FakePayments:
    payments: dict[uuid.UUID, CapturedPayment] = field(default_factory=dict)
    early_voids: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    async def add_captured(self, payment: CapturedPayment) -> None:
        assert payment.payment_id not in self.payments
        self.payments[payment.payment_id] = payment

    async def get(self, payment_id: uuid.UUID) -> CapturedPayment | None:
        return self.payments.get(payment_id)

    async def mark_voided(self, payment_id: uuid.UUID) -> None:
        self.payments[payment_id] = dataclasses.replace(self.payments[payment_id], status="voided")

    async def remember_early_void(self, payment_id: uuid.UUID, message_id: uuid.UUID) -> None:
        self.early_voids.setdefault(payment_id, message_id)

    async def take_early_void(self, payment_id: uuid.UUID) -> bool:
        return self.early_voids.pop(payment_id, None) is not None


@dataclass
class FakeCaptures:
    """CaptureRepository's two statements over the other fakes, with the same outcomes."""

    repos: FakeRepositories

    async def before_capture(
        self, payment_id: uuid.UUID, merchant_id: str
    ) -> tuple[bool, MerchantProfile]:
        booked = payment_id in self.repos.payment_store.payments
        return booked, await self.repos.merchant_store.profile(merchant_id)

    async def book(
        self,
        transaction: LedgerTransaction,
        *,
        batch_currency: str,
        day: date,
        payment_currency: str,
        gross: int,
        installments: int,
    ) -> CaptureBooking | None:
        batches = self.repos.batch_store.batches.values()
        key = (transaction.merchant_id, batch_currency, day)
        found = [b.id for b in batches if b.open and (b.merchant_id, b.currency, b.day) == key]
        if not found:
            return None
        batch_id = found[0]
        if not await self.repos.ledger_store.record(transaction, batch_id):
            return CaptureBooking(batch_id, recorded=False, early_void=False)
        payments = self.repos.payment_store
        await payments.add_captured(
            CapturedPayment(
                payment_id=transaction.payment_id,
                merchant_id=transaction.merchant_id,
                currency=payment_currency,
                batch_id=batch_id,
                capture_transaction_id=transaction.id,
                gross=gross,
                fee=transaction.fee,
                status="captured",
                installments=installments,
            )
        )
        early_void = await payments.take_early_void(transaction.payment_id)
        return CaptureBooking(batch_id, recorded=True, early_void=early_void)

    async def add_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> None:
        await self.repos.batch_store.open_batch(merchant_id, currency, day, closes_at)


@dataclass
class FakeRepositories:
    ledger_store: FakeLedger = field(default_factory=FakeLedger)
    merchant_store: FakeMerchants = field(default_factory=FakeMerchants)
    batch_store: FakeBatches = field(default_factory=FakeBatches)
    payment_store: FakePayments = field(default_factory=FakePayments)

    def ledger(self, uow: object) -> FakeLedger:
        return self.ledger_store

    def merchants(self, uow: object) -> FakeMerchants:
        return self.merchant_store

    def batches(self, uow: object) -> FakeBatches:
        return self.batch_store

    def payments(self, uow: object) -> FakePayments:
        return self.payment_store

    def captures(self, uow: object) -> FakeCaptures:
        return FakeCaptures(self)


@pytest.fixture
def repos() -> FakeRepositories:
    return FakeRepositories()


async def handle(
    repos: FakeRepositories, payload: BaseModel, at: datetime = MONDAY_NOON
) -> RecordingUnitOfWork:
    table = SettlementHandlers(repos).table()  # type: ignore[arg-type]
    uow = await deliver(table, payload, producer="settlement", occurred_at=at)
    assert uow.outbox == []  # settlement books; it announces only when a batch closes
    return uow


def captured(
    amount: int = 10_000, installments: int = 1, payment_id: uuid.UUID | None = None
) -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=payment_id or uuid.uuid4(),
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        installments=installments,
        auth_code="A1B2C3",
        authorized_amount=amount,
    )


def voided(
    payment_id: uuid.UUID, amount: int = 10_000, after_capture: bool = True
) -> PaymentVoided:
    return PaymentVoided(
        payment_id=payment_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        after_capture=after_capture,
    )


def merchant(version: int, **changes: object) -> MerchantUpdated:
    fields: dict[str, object] = {
        "merchant_id": MERCHANT,
        "name": "Unit Shop",
        "settlement_currency": "TRY",
        "time_zone": "Europe/Istanbul",
        "cutoff_time": time(18, 0),
        "fee_plan": "standard",
        "version": version,
    }
    return MerchantUpdated.model_validate(fields | changes)


async def test_a_capture_books_clearing_payable_and_fee_into_the_days_batch(
    repos: FakeRepositories,
) -> None:
    event = captured(10_000, installments=3)
    await handle(repos, event)

    transaction, batch_id = repos.ledger_store.of(event.payment_id, Kind.CAPTURE)
    fee = fee_plan("standard").fee(10_000, 3)
    assert fee > 0
    assert set(transaction.entries) == {
        Entry(CLEARING, Direction.DEBIT, 10_000, "TRY"),
        Entry(PAYABLE, Direction.CREDIT, 10_000 - fee, "TRY"),
        Entry(FEE_REVENUE, Direction.CREDIT, fee, "TRY"),
    }
    batch = repos.batch_store.batches[batch_id]
    assert (batch.merchant_id, batch.currency, batch.day) == (MERCHANT, "TRY", date(2026, 6, 1))
    payment = repos.payment_store.payments[event.payment_id]
    assert (payment.status, payment.gross, payment.fee, payment.batch_id) == (
        "captured",
        10_000,
        fee,
        batch_id,
    )
    assert payment.capture_transaction_id == transaction.id


async def test_a_repeated_capture_books_nothing_twice(repos: FakeRepositories) -> None:
    event = captured()
    await handle(repos, event)
    await handle(repos, event)
    assert len(repos.ledger_store.transactions) == 1
    assert len(repos.payment_store.payments) == 1


async def test_a_void_after_capture_reverses_every_line_in_the_open_batch(
    repos: FakeRepositories,
) -> None:
    event = captured(8_000)
    await handle(repos, event)
    await handle(repos, voided(event.payment_id, 8_000))

    capture, batch_id = repos.ledger_store.of(event.payment_id, Kind.CAPTURE)
    reversal, reversal_batch = repos.ledger_store.of(event.payment_id, Kind.REVERSAL)
    assert reversal_batch == batch_id
    assert set(reversal.entries) == {
        Entry(e.account, e.direction.opposite(), e.amount, e.currency) for e in capture.entries
    }
    assert repos.payment_store.payments[event.payment_id].status == "voided"

    await handle(repos, voided(event.payment_id, 8_000))  # a second void changes nothing
    assert len(repos.ledger_store.transactions) == 2


async def test_a_void_before_capture_books_nothing(repos: FakeRepositories) -> None:
    await handle(repos, voided(uuid.uuid4(), after_capture=False))
    assert repos.ledger_store.transactions == {}
    assert repos.payment_store.early_voids == {}


async def test_a_void_read_before_its_capture_is_applied_when_the_capture_arrives(
    repos: FakeRepositories,
) -> None:
    payment_id = uuid.uuid4()
    await handle(repos, voided(payment_id))
    assert repos.ledger_store.transactions == {}
    assert payment_id in repos.payment_store.early_voids

    await handle(repos, captured(payment_id=payment_id))

    kinds = sorted(t.kind for t, _ in repos.ledger_store.transactions.values())
    assert kinds == [Kind.CAPTURE, Kind.REVERSAL]
    assert repos.payment_store.payments[payment_id].status == "voided"
    assert repos.payment_store.early_voids == {}


async def test_a_void_after_the_batch_closed_is_booked_in_the_days_open_batch(
    repos: FakeRepositories,
) -> None:
    event = captured()
    await handle(repos, event)
    _, monday = repos.ledger_store.of(event.payment_id, Kind.CAPTURE)
    repos.batch_store.close(monday)

    await handle(repos, voided(event.payment_id), at=TUESDAY_NOON)

    _, reversal_batch = repos.ledger_store.of(event.payment_id, Kind.REVERSAL)
    assert reversal_batch != monday
    assert repos.batch_store.batches[reversal_batch].day == date(2026, 6, 2)


async def test_a_void_whose_capture_transaction_is_missing_is_not_retried(
    repos: FakeRepositories,
) -> None:
    event = captured()
    await handle(repos, event)
    repos.ledger_store.transactions.clear()
    with pytest.raises(NonRetryable, match="missing"):
        await handle(repos, voided(event.payment_id))


async def test_a_refund_debits_the_merchant_and_keeps_the_fee(repos: FakeRepositories) -> None:
    sale = captured(10_000)
    await handle(repos, sale)
    refund = PaymentRefunded(
        refund_id=uuid.uuid4(),
        payment_id=sale.payment_id,
        merchant_id=MERCHANT,
        amount=2_500,
        currency="TRY",
        reason="returned",
    )
    await handle(repos, refund, at=TUESDAY_NOON)
    await handle(repos, refund, at=TUESDAY_NOON)  # a redelivery books nothing more

    transaction, batch_id = repos.ledger_store.of(sale.payment_id, Kind.REFUND)
    assert set(transaction.entries) == {
        Entry(PAYABLE, Direction.DEBIT, 2_500, "TRY"),
        Entry(CLEARING, Direction.CREDIT, 2_500, "TRY"),
    }
    assert repos.batch_store.batches[batch_id].day == date(2026, 6, 2)
    assert len(repos.ledger_store.transactions) == 2
    assert repos.payment_store.payments[sale.payment_id].status == "captured"


async def test_merchant_updates_apply_newest_first_and_reschedule_open_batches(
    repos: FakeRepositories,
) -> None:
    await handle(repos, merchant(1))
    sale = captured()
    await handle(repos, sale)
    _, batch_id = repos.ledger_store.of(sale.payment_id, Kind.CAPTURE)
    assert repos.batch_store.batches[batch_id].closes_at == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)

    await handle(repos, merchant(3, cutoff_time=time(20, 30), fee_plan="volume"))
    await handle(repos, merchant(2, fee_plan="single-payment"))  # late and older: ignored

    profile, name, active = repos.merchant_store.profiles[MERCHANT]
    assert (profile.version, profile.fee_plan, profile.cutoff) == (3, "volume", time(20, 30))
    assert (name, active) == ("Unit Shop", True)
    closes_at = repos.batch_store.batches[batch_id].closes_at
    assert closes_at.astimezone(UTC) == datetime(2026, 6, 1, 17, 30, tzinfo=UTC)


async def test_a_capture_uses_the_merchants_plan_and_batch_day(repos: FakeRepositories) -> None:
    await handle(repos, merchant(1, fee_plan="volume"))
    evening = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 19:00 local: past the 18:00 cut-off
    sale = captured(10_000)
    await handle(repos, sale, at=evening)

    transaction, batch_id = repos.ledger_store.of(sale.payment_id, Kind.CAPTURE)
    assert transaction.fee == fee_plan("volume").fee(10_000, 1)
    assert repos.batch_store.batches[batch_id].day == date(2026, 6, 2)


async def test_an_invalid_merchant_profile_is_not_retried(repos: FakeRepositories) -> None:
    with pytest.raises(NonRetryable, match="fee_plan"):
        await handle(repos, merchant(1, fee_plan="no-such-plan"))
    assert repos.merchant_store.profiles == {}
