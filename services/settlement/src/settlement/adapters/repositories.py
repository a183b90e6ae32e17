"""The Postgres stores, each opened on the unit of work's connection."""

from __future__ import annotations

from sanalpos_common.db import UnitOfWork
from settlement.adapters.batches import BatchRepository, CaptureRepository, PaymentRepository
from settlement.adapters.ledger_repository import LedgerRepository
from settlement.adapters.merchants import MerchantRepository


class PostgresRepositories:
    def ledger(self, uow: UnitOfWork) -> LedgerRepository:
        return LedgerRepository(uow.conn)

    def merchants(self, uow: UnitOfWork) -> MerchantRepository:
        return MerchantRepository(uow.conn)

    def batches(self, uow: UnitOfWork) -> BatchRepository:
        return BatchRepository(uow.conn)

    def payments(self, uow: UnitOfWork) -> PaymentRepository:
        return PaymentRepository(uow.conn)

    def captures(self, uow: UnitOfWork) -> CaptureRepository:
        return CaptureRepository(uow.conn)
