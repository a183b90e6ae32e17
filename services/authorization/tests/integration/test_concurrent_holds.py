"""Holds on one card under concurrent payments, against the real authorization database."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from authorization.adapters.issuer_simulator import IssuerSimulator
from authorization.adapters.repositories import PostgresRepositories
from authorization.bootstrap import MIGRATIONS
from authorization.domain.issuer import Behaviour, SimulatorCard
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common import topics
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.card import fingerprint
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.db import create_pool, migrate, unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import EncryptedCard, FraudDecision, PaymentScored
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url

PAN_RING = Keyring.from_json(DEV_PAN_KEYRING)
CVC_RING = rotate_cvc_keys(None, datetime.now(UTC))


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    url = os.environ.get("AUTHORIZATION_DATABASE_URL", local_database_url("authorization"))
    pool = await create_pool(url, max_size=12)
    await migrate(pool, "authorization", MIGRATIONS)
    yield pool
    await pool.close()


def scored(
    pan: str, amount: int, decision: FraudDecision = FraudDecision.APPROVE, capture: bool = False
) -> object:
    payment_id = uuid.uuid4()
    card = EncryptedCard(
        pan_ciphertext=encrypt(PAN_RING, pan.encode(), pan_aad("mer_conc", payment_id)),
        cvc_ciphertext=encrypt(CVC_RING, b"123", cvc_aad("mer_conc", payment_id)),
        fingerprint=fingerprint(b"k", pan),
        bin=pan[:8],
        last4=pan[-4:],
        exp_month=12,
        exp_year=2031,
        brand="visa",
    )
    payload = PaymentScored(
        payment_id=payment_id,
        merchant_id="mer_conc",
        score=10,
        decision=decision,
        reasons=(),
        amount=amount,
        currency="TRY",
        capture=capture,
        installments=1,
        card=card,
    )
    return new_envelope(topics.PAYMENT_SCORED, payload, correlation_id=payment_id, producer="test")


async def test_two_payments_never_spend_the_same_limit(pool: asyncpg.Pool) -> None:
    # A fresh card with a 1,000.00 TRY limit; ten concurrent 300.00 payments: exactly three fit.
    pan = "4" + str(uuid.uuid4().int)[:14]
    from sanalpos_common.crypto.card import luhn_check_digit

    pan += luhn_check_digit(pan)
    issuer = IssuerSimulator(b"test-issuer-key", default_limit_major=50_000)
    async with pool.acquire() as conn:
        await issuer.seed(conn, (SimulatorCard(pan, Behaviour.APPROVE, 1_000),))
    handlers = AuthorizationHandlers(issuer, PostgresRepositories(), PAN_RING, CVC_RING).table()

    async def authorize(envelope: object) -> None:
        async with unit_of_work(pool, producer="authorization") as uow:
            await handlers(uow, topics.PAYMENT_SCORED, envelope)  # type: ignore[arg-type]

    envelopes = [scored(pan, 30_000) for _ in range(10)]
    await asyncio.gather(*(authorize(e) for e in envelopes))

    ids = [e.correlation_id for e in envelopes]  # type: ignore[attr-defined]
    rows = await pool.fetch(
        "SELECT status, response_code FROM authorizations WHERE payment_id = ANY($1)", ids
    )
    codes = sorted(r["response_code"] for r in rows)
    assert codes == ["00"] * 3 + ["51"] * 7
    available = await pool.fetchval(
        "SELECT available FROM account_balances WHERE card_ref = $1 AND currency = 'TRY'",
        issuer.card_ref(pan),
    )
    assert available == 100_000 - 3 * 30_000
    holds = await pool.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM holds WHERE card_ref = $1", issuer.card_ref(pan)
    )
    assert holds == 90_000


async def test_sale_captures_at_once_and_fraud_decline_never_reaches_the_issuer(
    pool: asyncpg.Pool,
) -> None:
    issuer = IssuerSimulator(b"test-issuer-key", default_limit_major=50_000)
    handlers = AuthorizationHandlers(issuer, PostgresRepositories(), PAN_RING, CVC_RING).table()
    sale = scored("4111111111111111", 5_000, capture=True)
    blocked = scored("4111111111111111", 5_000, decision=FraudDecision.DECLINE)
    for envelope in (sale, blocked):
        async with unit_of_work(pool, producer="authorization") as uow:
            await handlers(uow, topics.PAYMENT_SCORED, envelope)  # type: ignore[arg-type]
    sale_row = await pool.fetchrow(
        "SELECT status, response_code, auth_code FROM authorizations WHERE payment_id = $1",
        sale.correlation_id,
    )  # type: ignore[attr-defined]
    assert (
        sale_row["status"] == "captured"
        and sale_row["response_code"] == "00"
        and sale_row["auth_code"]
    )
    hold = await pool.fetchrow(
        "SELECT status, captured_amount FROM holds WHERE payment_id = $1", sale.correlation_id
    )  # type: ignore[attr-defined]
    assert hold["status"] == "captured" and hold["captured_amount"] == 5_000
    blocked_row = await pool.fetchrow(
        "SELECT status, response_code FROM authorizations WHERE payment_id = $1",
        blocked.correlation_id,
    )  # type: ignore[attr-defined]
    assert blocked_row["status"] == "declined" and blocked_row["response_code"] == "59"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM holds WHERE payment_id = $1", blocked.correlation_id
        )
        == 0
    )  # type: ignore[attr-defined]
    emitted = await pool.fetch(
        "SELECT topic FROM outbox WHERE message_key = ANY($1::text[]) ORDER BY id",
        [str(sale.correlation_id), str(blocked.correlation_id)],  # type: ignore[attr-defined]
    )
    assert [r["topic"] for r in emitted] == [
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
        topics.PAYMENT_DECLINED,
    ]


async def test_an_expired_security_code_declines_cleanly_without_an_issuer_call(
    pool: asyncpg.Pool,
) -> None:
    """A payment.scored whose CVC key is past its TTL is declined N7 once, not retried or
    dead-lettered, and no hold is placed; decrypting again after a reload is not needed."""
    issuer = IssuerSimulator(b"test-issuer-key", default_limit_major=50_000)
    later = datetime.now(UTC) + timedelta(hours=3)  # the CVC key's 2 h TTL has passed
    handlers = AuthorizationHandlers(
        issuer,
        PostgresRepositories(),
        PAN_RING,
        rotate_cvc_keys(CVC_RING, later),
        clock=lambda: later,
    ).table()
    envelope = scored("4111111111111111", 5_000, capture=True)
    async with unit_of_work(pool, producer="authorization") as uow:
        await handlers(uow, topics.PAYMENT_SCORED, envelope)  # type: ignore[arg-type]
    payment_id = envelope.correlation_id  # type: ignore[attr-defined]
    row = await pool.fetchrow(
        "SELECT status, response_code, auth_code FROM authorizations WHERE payment_id = $1",
        payment_id,
    )
    assert (row["status"], row["response_code"], row["auth_code"]) == ("declined", "N7", None)
    assert await pool.fetchval("SELECT count(*) FROM holds WHERE payment_id = $1", payment_id) == 0
    declined = await pool.fetchrow(
        "SELECT topic, payload FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_DECLINED,
        str(payment_id),
    )
    assert declined is not None
    body = json.loads(declined["payload"])["payload"]
    assert (body["response_code"], body["reason"], body["declined_by"]) == (
        "N7",
        "security code expired",
        "issuer",
    )
