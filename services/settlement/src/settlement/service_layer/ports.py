"""What the message handlers need from storage, as protocols: Postgres in production
(`adapters/repositories.py`), in-memory fakes in the unit tests."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Protocol

from sanalpos_common.db import UnitOfWork
from settlement.adapters.batches import CaptureBooking, CapturedPayment
from settlement.domain.ledger import LedgerTransaction
from settlement.domain.merchants import MerchantProfile


class LedgerStore(Protocol):
    async def record(self, transaction: LedgerTransaction, batch_id: uuid.UUID) -> bool: ...
    async def get(self, transaction_id: uuid.UUID) -> LedgerTransaction | None: ...


class MerchantStore(Protocol):
    async def apply(self, profile: MerchantProfile, name: str, active: bool) -> bool: ...
    async def profile(self, merchant_id: str) -> MerchantProfile: ...


class BatchStore(Protocol):
    async def open_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> uuid.UUID: ...
    async def lock_if_open(self, batch_id: uuid.UUID) -> bool: ...
    async def open_batches_of(self, merchant_id: str) -> list[tuple[uuid.UUID, date]]: ...
    async def reschedule(self, schedule: list[tuple[uuid.UUID, datetime]]) -> None: ...


class PaymentStore(Protocol):
    async def add_captured(self, payment: CapturedPayment) -> None: ...
    async def get(self, payment_id: uuid.UUID) -> CapturedPayment | None: ...
    async def mark_voided(self, payment_id: uuid.UUID) -> None: ...
    async def remember_early_void(self, payment_id: uuid.UUID, message_id: uuid.UUID) -> None: ...
    async def take_early_void(self, payment_id: uuid.UUID) -> bool: ...


class CaptureStore(Protocol):
    """A capture's reads in one statement and its writes in another (adapters/batches.py)."""

    async def before_capture(
        self, payment_id: uuid.UUID, merchant_id: str
    ) -> tuple[bool, MerchantProfile]: ...
    async def book(
        self,
        transaction: LedgerTransaction,
        *,
        batch_currency: str,
        day: date,
        payment_currency: str,
        gross: int,
        installments: int,
    ) -> CaptureBooking | None: ...
    async def add_batch(
        self, merchant_id: str, currency: str, day: date, closes_at: datetime
    ) -> None: ...


class Repositories(Protocol):
    """Opens each store on the unit of work's transaction."""

    def ledger(self, uow: UnitOfWork) -> LedgerStore: ...
    def merchants(self, uow: UnitOfWork) -> MerchantStore: ...
    def batches(self, uow: UnitOfWork) -> BatchStore: ...
    def payments(self, uow: UnitOfWork) -> PaymentStore: ...
    def captures(self, uow: UnitOfWork) -> CaptureStore: ...
