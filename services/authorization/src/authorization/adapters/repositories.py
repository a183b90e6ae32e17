"""The Postgres stores, each opened on the unit of work's connection."""

from __future__ import annotations

from authorization.adapters.authorization_repository import AuthorizationRepository
from authorization.adapters.challenge_repository import ChallengeRepository
from authorization.adapters.payment_gate import PaymentGate
from authorization.adapters.review_repository import ReviewRepository
from sanalpos_common.db import UnitOfWork


class PostgresRepositories:
    def authorizations(self, uow: UnitOfWork) -> AuthorizationRepository:
        return AuthorizationRepository(uow.conn)

    def reviews(self, uow: UnitOfWork) -> ReviewRepository:
        return ReviewRepository(uow.conn)

    def challenges(self, uow: UnitOfWork) -> ChallengeRepository:
        return ChallengeRepository(uow.conn)

    def gate(self, uow: UnitOfWork) -> PaymentGate:
        return PaymentGate(uow.conn)
