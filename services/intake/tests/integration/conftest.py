"""What intake's in-process integration tests share: intake bootstrapped on its database (or
on a private schema of it), an HTTP client on its ASGI app, payment rows written straight to
the table, and outcome events applied as its consumer would."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import BaseModel, SecretStr

from intake.bootstrap import bootstrap
from intake.config import IntakeSettings
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentAuthorized, PaymentCaptured
from sanalpos_common.service import Platform


async def shut_down(platform: Platform) -> None:
    for close in reversed(platform.runtime.closers):
        await close()


@contextlib.asynccontextmanager
async def running_intake() -> AsyncIterator[Platform]:
    """Intake on its configured database, as a deployed process would run."""
    platform = await bootstrap()
    try:
        yield platform
    finally:
        await shut_down(platform)


@contextlib.asynccontextmanager
async def private_intake(**settings: Any) -> AsyncIterator[Platform]:
    """Intake on a private schema of its database: the outbox rows these tests leave must
    never be published by an intake process the whole-system tests may run on the same DB.
    `settings`: other IntakeSettings fields (e.g. public_base_url)."""
    base = IntakeSettings().database_url.get_secret_value()
    schema = f"it_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f"CREATE SCHEMA {schema}")
    dsn = f"{base}{'&' if '?' in base else '?'}search_path={schema}"
    platform = await bootstrap(IntakeSettings(database_url=SecretStr(dsn), **settings))
    try:
        yield platform
    finally:
        await shut_down(platform)
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@contextlib.asynccontextmanager
async def http_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling intake's app in this process, without a socket."""
    transport = httpx.ASGITransport(app=platform.runtime.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


@pytest.fixture(scope="module")
async def platform() -> AsyncIterator[Platform]:
    """One intake per test module that asks for it, on its configured database."""
    async with running_intake() as platform:
        yield platform


@pytest.fixture(scope="module")
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(platform) as client:
        yield client


async def insert_payment_row(
    pool: asyncpg.Pool, merchant_id: str, at: datetime, **fields: Any
) -> uuid.UUID:
    """A payment row written straight to the table, created and updated `at` unless `fields`
    say otherwise; the card is a Visa with fingerprint "fp-a"."""
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "merchant_id": merchant_id,
        "amount": 1000,
        "currency": "TRY",
        "capture": True,
        "installments": 1,
        "status": "pending",
        "status_rank": 0,
        "card_brand": "visa",
        "card_bin": "411111",
        "card_last4": "1111",
        "card_exp_month": 12,
        "card_exp_year": 2031,
        "card_fingerprint": "fp-a",
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    columns = ", ".join(row)
    values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await pool.execute(
        f"INSERT INTO payments ({columns}) VALUES ({values})",  # noqa: S608 - test data
        *row.values(),
    )
    payment_id: uuid.UUID = row["id"]
    return payment_id


def authorized(
    payment_id: uuid.UUID | str, merchant_id: str, amount: int = 1000, capture: bool = False
) -> PaymentAuthorized:
    """The event authorization sends when the issuer approves (auth code A1B2C3)."""
    return PaymentAuthorized(
        payment_id=uuid.UUID(str(payment_id)),
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        auth_code="A1B2C3",
        response_code="00",
        installments=1,
        capture=capture,
    )


def captured(
    payment_id: uuid.UUID | str, merchant_id: str, amount: int, authorized_amount: int = 1000
) -> PaymentCaptured:
    """The event authorization sends once the issuer has captured `amount`."""
    return PaymentCaptured(
        payment_id=uuid.UUID(str(payment_id)),
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        installments=1,
        auth_code="A1B2C3",
        authorized_amount=authorized_amount,
    )


def outcome(topic: str, payload: Any) -> Envelope[Any]:
    """An outcome event as authorization would publish it."""
    return new_envelope(topic, payload, correlation_id=payload.payment_id, producer="authorization")


async def deliver(pool: asyncpg.Pool, topic: str, envelope: Envelope[Any]) -> None:
    """What intake's consumer does with an event, in its own transaction."""
    async with unit_of_work(pool) as uow:
        await CONSUMER_HANDLERS(uow, topic, envelope)


async def feed(pool: asyncpg.Pool, topic: str, payload: BaseModel) -> Envelope[Any]:
    envelope = outcome(topic, payload)
    await deliver(pool, topic, envelope)
    return envelope
