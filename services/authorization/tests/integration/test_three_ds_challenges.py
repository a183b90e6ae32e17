"""3-D Secure challenges on the whole authorization service in-process: real Kafka in and
out, real Postgres (a private schema), and the ACS challenge page over HTTP. A three-second
challenge limit and a fast sweep, so the sweeper is seen declining an abandoned challenge."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from authorization.bootstrap import bootstrap
from authorization.config import AuthorizationSettings
from sanalpos_common import topics
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.runtime import serve
from sanalpos_common.schemas.events import FraudDecision, PaymentScored, ThreeDSRequest
from sanalpos_common.settings import DEV_PAN_KEYRING
from sanalpos_common.testing import free_port, start_group_at_end, wait_for

from .conftest import BASE_DSN, Lifecycle
from .test_service_over_kafka import CONSUMED_TOPICS, KAFKA, OUTPUTS, Kafka, _read_forever

RETURN_URL = "https://shop.example/orders/42/back?step=3ds"
CHALLENGE_TTL_S = 3


def fresh(prefix: str) -> str:
    partial = prefix + f"{uuid.uuid4().int % 10**7:07d}"
    return partial + luhn_check_digit(partial)


@dataclass
class Service:
    kafka: Kafka
    pool: asyncpg.Pool
    base_url: str
    builder: Lifecycle

    def scored(self, pan: str, **kwargs: Any) -> PaymentScored:
        kwargs.setdefault("capture", True)
        three_d_secure = kwargs.pop("three_d_secure", ThreeDSRequest.REQUIRED)
        reasons = kwargs.pop("reasons", ())
        scored = self.builder.scored(pan, 12_500, **kwargs)
        # No security code: the code's hourly keyring is the service's own state file.
        card = scored.card.model_copy(update={"cvc_ciphertext": None})
        return scored.model_copy(
            update={
                "card": card,
                "three_d_secure": three_d_secure,
                "return_url": RETURN_URL,
                "reasons": reasons,
            }
        )

    async def challenge(self, scored: PaymentScored) -> dict[str, Any]:
        await self.kafka.send(topics.PAYMENT_SCORED, scored)
        assert await self.kafka.topics_for(scored.payment_id, 1) == [topics.PAYMENT_ACTION_REQUIRED]
        return self.kafka.payload(scored.payment_id, topics.PAYMENT_ACTION_REQUIRED)

    async def row(self, payment_id: uuid.UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT status, attempts, code_hash, scored_payload IS NULL AS dropped, return_url "
            "FROM three_ds_challenges WHERE payment_id = $1",
            payment_id,
        )
        assert row is not None
        return row


@pytest.fixture(scope="module")
async def service() -> AsyncIterator[Service]:
    run = uuid.uuid4().hex[:10]
    schema = f"authorization_3ds_{run}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await ensure_topics(KAFKA, [*CONSUMED_TOPICS, *OUTPUTS])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    group = f"authorization-3ds-test-{run}"
    await start_group_at_end(KAFKA, group, CONSUMED_TOPICS, producer)
    reader = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
    await reader.start()
    partitions = [TopicPartition(n, p) for n in OUTPUTS for p in await producer.partitions_for(n)]
    reader.assign(partitions)
    await reader.seek_to_end(*partitions)
    for tp in partitions:
        await reader.position(tp)
    kafka = Kafka(producer)
    reading = asyncio.create_task(_read_forever(reader, kafka))
    port = free_port()
    dsn = f"{BASE_DSN}?search_path={schema}"
    settings = AuthorizationSettings(
        database_url=SecretStr(dsn),
        http_port=port,
        kafka_bootstrap_servers=KAFKA,
        consumer_group=group,
        pan_keyring=SecretStr(DEV_PAN_KEYRING),
        acs_public_url=f"http://127.0.0.1:{port}",
        three_ds_challenge_ttl_s=CHALLENGE_TTL_S,
        three_ds_expiry_scan_interval_s=0.2,
        three_ds_acs_timeout_s=0.3,
    )
    platform = await bootstrap(settings)
    server = asyncio.create_task(serve(platform.runtime), name="authorization-3ds-under-test")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)

    async def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        return False

    try:
        await wait_for(ready, timeout=30, interval=0.2)
        yield Service(kafka, pool, f"http://127.0.0.1:{port}", Lifecycle(pool=None))  # type: ignore[arg-type]
    finally:
        await pool.close()
        server.cancel()
        reading.cancel()
        for task in (server, reading):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await reader.stop()
        await producer.stop()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def form_of(page: str) -> tuple[str, str]:
    """The CSRF token and the development one-time code the page shows."""
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    code = re.search(r'id="dev-code">[^<]*?(\d{6})<', page)
    assert token is not None and code is not None, page
    return token.group(1), code.group(1)


async def open_page(client: httpx.AsyncClient, url: str) -> tuple[str, str]:
    page = await client.get(url, params={"lang": "en"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self' https://shop.example" in csp
    assert "3-D Secure verification" in page.text
    return form_of(page.text)


async def test_a_passed_challenge_authorizes_once_and_returns_the_shopper(service: Service) -> None:
    scored = service.scored(fresh("40000032"))
    asked = await service.challenge(scored)
    assert asked["action"] == "3ds" and asked["expires_at"] is not None
    url = asked["next_action_url"]
    assert url.startswith(f"{service.base_url}/acs/challenges/ch_")
    row = await service.row(scored.payment_id)
    assert row["status"] == "pending" and not row["dropped"]

    async with httpx.AsyncClient() as client:
        token, code = await open_page(client, url)
        assert code not in row["code_hash"]
        answer = {"csrf_token": token, "code": code, "action": "submit"}
        posted = await client.post(url, data=answer)
        assert posted.status_code == 303
        location = urlsplit(posted.headers["location"])
        assert (location.netloc, location.path) == ("shop.example", "/orders/42/back")
        assert parse_qs(location.query) == {"step": ["3ds"], "payment_id": [str(scored.payment_id)]}
        again = await client.post(url, data=answer)  # a double post: same answer, no new event
        assert again.status_code == 303

    got = await service.kafka.topics_for(scored.payment_id, 3)
    assert got == sorted(
        [topics.PAYMENT_ACTION_REQUIRED, topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    )
    authentication = service.kafka.payload(scored.payment_id, topics.PAYMENT_AUTHORIZED)[
        "authentication"
    ]
    assert authentication["status"] == "authenticated"
    assert (authentication["flow"], authentication["eci"]) == ("challenge", "05")
    assert authentication["liability_shift"] is True
    assert len(authentication["authentication_value"]) == 28
    recorded = await service.pool.fetchval(
        "SELECT authentication->>'eci' FROM authorizations WHERE payment_id = $1",
        scored.payment_id,
    )
    assert recorded == "05"
    row = await service.row(scored.payment_id)
    assert (row["status"], row["dropped"]) == ("authenticated", True)
    await asyncio.sleep(0.5)
    assert len(service.kafka.seen[str(scored.payment_id)]) == 3

    await service.kafka.send(topics.PAYMENT_SCORED, scored)  # redelivered score: ignored
    await asyncio.sleep(1.0)
    assert len(service.kafka.seen[str(scored.payment_id)]) == 3


async def test_wrong_codes_end_in_a_decline_by_authentication(service: Service) -> None:
    scored = service.scored(fresh("40000032"))
    url = (await service.challenge(scored))["next_action_url"]
    async with httpx.AsyncClient() as client:
        token, code = await open_page(client, url)
        wrong = "000000" if code != "000000" else "111111"
        first = await client.post(
            url, params={"lang": "en"}, data={"csrf_token": token, "code": wrong}
        )
        assert first.status_code == 422 and "Attempts left: 2" in first.text
        assert 'aria-invalid="true"' in first.text
        assert (await service.row(scored.payment_id))["attempts"] == 1
        await client.post(url, data={"csrf_token": token, "code": wrong})
        last = await client.post(url, data={"csrf_token": token, "code": wrong})
        assert last.status_code == 303
    assert sorted(await service.kafka.topics_for(scored.payment_id, 2)) == sorted(
        [topics.PAYMENT_ACTION_REQUIRED, topics.PAYMENT_DECLINED]
    )
    declined = service.kafka.payload(scored.payment_id, topics.PAYMENT_DECLINED)
    assert declined["declined_by"] == "authentication"
    assert declined["reason"] == "3-D Secure failed: wrong code, no attempts left"
    assert declined["authentication"]["status"] == "failed"
    assert declined["authentication"]["liability_shift"] is False
    assert (await service.row(scored.payment_id))["status"] == "failed"


async def test_the_failing_card_fails_even_with_the_right_code(service: Service) -> None:
    scored = service.scored(fresh("40000033"))
    url = (await service.challenge(scored))["next_action_url"]
    async with httpx.AsyncClient() as client:
        token, code = await open_page(client, url)
        assert (await client.post(url, data={"csrf_token": token, "code": code})).status_code == 303
    await service.kafka.topics_for(scored.payment_id, 2)
    declined = service.kafka.payload(scored.payment_id, topics.PAYMENT_DECLINED)
    assert declined["authentication"]["status"] == "failed"


async def test_a_form_without_its_csrf_token_changes_nothing(service: Service) -> None:
    scored = service.scored(fresh("40000032"))
    url = (await service.challenge(scored))["next_action_url"]
    async with httpx.AsyncClient() as client:
        _, code = await open_page(client, url)
        refused = await client.post(url, data={"code": code})
        assert refused.status_code == 403
    async with httpx.AsyncClient() as stranger:  # a token without its cookie
        token, _ = await open_page(stranger, url)
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, data={"csrf_token": token, "code": code})).status_code == 403
    assert (await service.row(scored.payment_id))["status"] == "pending"


async def test_cancel_and_the_time_limit_end_abandoned(service: Service) -> None:
    cancelled = service.scored(fresh("40000032"))
    left = service.scored(fresh("40000032"))
    url = (await service.challenge(cancelled))["next_action_url"]
    await service.challenge(left)
    async with httpx.AsyncClient() as client:
        token, _ = await open_page(client, url)
        posted = await client.post(url, data={"csrf_token": token, "action": "cancel"})
        assert posted.status_code == 303
    await service.kafka.topics_for(cancelled.payment_id, 2)
    declined = service.kafka.payload(cancelled.payment_id, topics.PAYMENT_DECLINED)
    assert declined["authentication"]["status"] == "abandoned"
    assert declined["reason"] == "3-D Secure abandoned: the shopper cancelled the challenge"

    await service.kafka.topics_for(left.payment_id, 2)  # the sweeper, after 3 s
    expired = service.kafka.payload(left.payment_id, topics.PAYMENT_DECLINED)
    assert expired["declined_by"] == "authentication"
    assert expired["reason"] == "3-D Secure abandoned: the challenge was not finished in time"
    assert (await service.row(left.payment_id))["status"] == "abandoned"


async def test_fraud_step_up_challenges_an_ordinary_card_and_frictionless_needs_none(
    service: Service,
) -> None:
    stepped_up = service.scored(
        fresh("41111112"),
        three_d_secure=ThreeDSRequest.AUTOMATIC,
        decision=FraudDecision.REVIEW,
        reasons=("rule:risky", "action:3ds"),
    )
    asked = await service.challenge(stepped_up)
    assert asked["action"] == "3ds"
    assert await service.pool.fetchval("SELECT count(*) FROM reviews") == 0

    frictionless = service.scored(fresh("40000031"))
    await service.kafka.send(topics.PAYMENT_SCORED, frictionless)
    await service.kafka.topics_for(frictionless.payment_id, 2)
    authorized = service.kafka.payload(frictionless.payment_id, topics.PAYMENT_AUTHORIZED)
    assert authorized["authentication"]["flow"] == "frictionless"

    unavailable = service.scored(fresh("40000035"))
    await service.kafka.send(topics.PAYMENT_SCORED, unavailable)
    assert await service.kafka.topics_for(unavailable.payment_id, 1) == [topics.PAYMENT_DECLINED]
    declined = service.kafka.payload(unavailable.payment_id, topics.PAYMENT_DECLINED)
    assert declined["authentication"]["status"] == "unavailable"


async def test_unknown_challenges_get_a_clear_page(service: Service) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{service.base_url}/acs/challenges/ch_nope")
    assert page.status_code == 404
    assert "Bu do\u011frulama bulunamad\u0131." in page.text  # Turkish by default
    assert page.headers["cache-control"] == "no-store"


async def test_two_answers_at_once_authorize_once(service: Service) -> None:
    scored = service.scored(fresh("40000032"))
    url = (await service.challenge(scored))["next_action_url"]
    async with httpx.AsyncClient() as client:
        token, code = await open_page(client, url)
        answer = {"csrf_token": token, "code": code}
        first, second = await asyncio.gather(
            client.post(url, data=answer), client.post(url, data=answer)
        )
    assert (first.status_code, second.status_code) == (303, 303)
    await service.kafka.topics_for(scored.payment_id, 3)
    await asyncio.sleep(1.0)
    got = [t for t, _ in service.kafka.seen[str(scored.payment_id)]]
    assert got.count(topics.PAYMENT_AUTHORIZED) == 1 and got.count(topics.PAYMENT_CAPTURED) == 1
    holds = await service.pool.fetchval(
        "SELECT count(*) FROM holds WHERE payment_id = $1", scored.payment_id
    )
    assert holds == 1
