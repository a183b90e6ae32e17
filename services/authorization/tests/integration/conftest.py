"""The authorization handlers against the real local PostgreSQL, in a private schema.

A private schema (dropped afterwards, through the DSN's search_path) keeps this run's
authorizations, holds and outbox apart from anything else using the same database, so an
expiry scan here only ever sees this run's pre-authorizations. Each test uses fresh cards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.repositories import PostgresRepositories
from authorization.bootstrap import MIGRATIONS
from authorization.domain.issuer import Behaviour, SimulatorCard
from authorization.service_layer.expiry import PreauthExpiry
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.card import fingerprint, luhn_check_digit
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.db import create_pool, migrate
from sanalpos_common.messaging import idempotent
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    CapturePayment,
    EncryptedCard,
    FraudDecision,
    PaymentScored,
    RefundPayment,
    ReviewDecision,
    ReviewResolved,
    VoidPayment,
)
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url

BASE_DSN = os.environ.get("AUTHORIZATION_DATABASE_URL", local_database_url("authorization"))
PAN_RING = Keyring.from_json(DEV_PAN_KEYRING)
CVC_RING = rotate_cvc_keys(None, datetime.now(UTC))
MERCHANT = "mer_lifecycle"
PREAUTH_EXPIRY = timedelta(minutes=10)
LIMIT_MAJOR = 1_000  # 1,000.00 TRY per fresh card


@pytest.fixture(scope="session")
async def private_pool() -> AsyncIterator[asyncpg.Pool]:
    schema = f"authorization_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await create_pool(f"{BASE_DSN}?search_path={schema}", max_size=12)
    try:
        await migrate(pool, "authorization", MIGRATIONS)
        yield pool
    finally:
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@dataclass
class Clock:
    """Test time: starts now, moves only when a test moves it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def fresh_pan() -> str:
    partial = "4" + f"{uuid.uuid4().int % 10**14:014d}"
    return partial + luhn_check_digit(partial)


@dataclass
class Lifecycle:
    """Delivers messages to the handlers the way the consumer does (inbox + one transaction)
    and reads back what they did."""

    pool: asyncpg.Pool
    clock: Clock = field(default_factory=Clock)
    issuer: IssuerSimulator = field(default_factory=lambda: IssuerSimulator(b"test-key", 50_000))

    @property
    def handlers(self) -> AuthorizationHandlers:
        return AuthorizationHandlers(
            self.issuer,
            PostgresRepositories(),
            PAN_RING,
            CVC_RING,
            clock=self.clock,
            preauth_expiry=PREAUTH_EXPIRY,
        )

    def expiry(self, batch_size: int = 500) -> PreauthExpiry:
        return PreauthExpiry(
            self.pool,
            self.issuer,
            PostgresRepositories(),
            self.clock,
            producer="authorization",
            batch_size=batch_size,
        )

    async def deliver(self, topic: str, payload: BaseModel) -> Envelope[Any]:
        payment_id = payload.payment_id  # type: ignore[attr-defined]
        envelope = new_envelope(topic, payload, correlation_id=payment_id, producer="test")
        await idempotent(self.pool, "authorization", self.handlers.table())(topic, envelope)
        return envelope

    async def card(self, limit_major: int = LIMIT_MAJOR) -> str:
        pan = fresh_pan()
        async with self.pool.acquire() as conn:
            await self.issuer.seed(conn, (SimulatorCard(pan, Behaviour.APPROVE, limit_major),))
        return pan

    def scored(
        self,
        pan: str,
        amount: int,
        *,
        capture: bool = False,
        decision: FraudDecision = FraudDecision.APPROVE,
        payment_id: uuid.UUID | None = None,
    ) -> PaymentScored:
        payment_id = payment_id or uuid.uuid4()
        card = EncryptedCard(
            pan_ciphertext=encrypt(PAN_RING, pan.encode(), pan_aad(MERCHANT, payment_id)),
            cvc_ciphertext=encrypt(CVC_RING, b"737", cvc_aad(MERCHANT, payment_id)),
            fingerprint=fingerprint(b"k", pan),
            bin=pan[:8],
            last4=pan[-4:],
            exp_month=12,
            exp_year=2031,
            brand="visa",
        )
        return PaymentScored(
            payment_id=payment_id,
            merchant_id=MERCHANT,
            score=75 if decision is FraudDecision.REVIEW else 10,
            decision=decision,
            reasons=(),
            amount=amount,
            currency="TRY",
            capture=capture,
            installments=3,
            card=card,
        )

    async def pay(
        self, pan: str, amount: int, *, capture: bool = False, **kwargs: Any
    ) -> uuid.UUID:
        scored = self.scored(pan, amount, capture=capture, **kwargs)
        await self.deliver(topics.PAYMENT_SCORED, scored)
        return scored.payment_id

    async def capture(
        self, payment_id: uuid.UUID, amount: int, currency: str = "TRY", merchant: str = MERCHANT
    ) -> None:
        await self.deliver(
            topics.CAPTURE_PAYMENT,
            CapturePayment(
                payment_id=payment_id,
                merchant_id=merchant,
                amount=amount,
                currency=currency,
                requested_at=self.clock(),
            ),
        )

    async def void(self, payment_id: uuid.UUID) -> None:
        await self.deliver(
            topics.VOID_PAYMENT,
            VoidPayment(payment_id=payment_id, merchant_id=MERCHANT, requested_at=self.clock()),
        )

    async def refund(
        self, payment_id: uuid.UUID, amount: int, refund_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        refund_id = refund_id or uuid.uuid4()
        await self.deliver(
            topics.REFUND_PAYMENT,
            RefundPayment(
                refund_id=refund_id,
                payment_id=payment_id,
                merchant_id=MERCHANT,
                amount=amount,
                currency="TRY",
                reason="customer returned the goods",
                requested_at=self.clock(),
            ),
        )
        return refund_id

    async def resolve(self, payment_id: uuid.UUID, decision: ReviewDecision) -> None:
        await self.deliver(
            topics.REVIEW_RESOLVED,
            ReviewResolved(
                payment_id=payment_id,
                merchant_id=MERCHANT,
                decision=decision,
                resolved_by="analyst@example.com",
            ),
        )

    async def events(self, payment_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT topic, payload FROM outbox WHERE message_key = $1 ORDER BY id",
            str(payment_id),
        )
        return [(r["topic"], json.loads(r["payload"])["payload"]) for r in rows]

    async def topics_of(self, payment_id: uuid.UUID) -> list[str]:
        return [topic for topic, _ in await self.events(payment_id)]

    async def last(self, payment_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
        return (await self.events(payment_id))[-1]

    async def state(self, payment_id: uuid.UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT a.status, a.amount, a.captured_amount, a.refunded_amount, a.expires_at, "
            "h.status AS hold_status, h.captured_amount AS hold_captured, "
            "h.refunded_amount AS hold_refunded "
            "FROM authorizations a LEFT JOIN holds h USING (payment_id) WHERE a.payment_id = $1",
            payment_id,
        )
        assert row is not None, "no authorization row"
        return row

    async def available(self, pan: str) -> int | None:
        """The card's available TRY limit; None while no payment has touched it."""
        value = await self.pool.fetchval(
            "SELECT available FROM account_balances WHERE card_ref = $1 AND currency = 'TRY'",
            self.issuer.card_ref(pan),
        )
        return None if value is None else int(value)

    async def assert_balanced(self, pan: str, limit_major: int = LIMIT_MAJOR) -> None:
        """The issuer's invariant: limit = available + open holds + captured not refunded."""
        committed = await self.pool.fetchval(
            "SELECT coalesce(sum(CASE status WHEN 'held' THEN amount "
            "WHEN 'captured' THEN captured_amount - refunded_amount ELSE 0 END), 0) "
            "FROM holds WHERE card_ref = $1 AND currency = 'TRY'",
            self.issuer.card_ref(pan),
        )
        available = await self.available(pan)
        assert available is not None, "the card was never used"
        assert available + committed == limit_major * 100


@pytest.fixture
def lifecycle(private_pool: asyncpg.Pool) -> Lifecycle:
    return Lifecycle(private_pool)
