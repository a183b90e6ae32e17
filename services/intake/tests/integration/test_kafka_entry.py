"""Kafka entry point against real Kafka and PostgreSQL: the request consumer, the outbox relay
and the signing-secret store run in-process on a private database schema and their own
consumer group; merchants' messages go through the real request topic, replies and dead
letters are read back from the real reply and dead-letter topics.

Every test keys its messages alike so they share a partition: when the reply to a later good
message has arrived, an earlier bad one has certainly been handled (no timed assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from jwcrypto import jwe, jwk

from intake.adapters.card_tokens import CardTokenRepository
from intake.adapters.signing_secrets import SigningSecretStore
from intake.bootstrap import MIGRATIONS
from intake.domain.request_signing import (
    MERCHANT_HEADER,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from intake.entrypoints.http import signing
from intake.entrypoints.http.problems import install_problem_handlers
from intake.entrypoints.kafka.consumer import (
    CONSUMER,
    DEAD_LETTER_TOPIC,
    RequestConsumerLoop,
    RequestHandler,
    configure_request_topic,
)
from intake.entrypoints.kafka.messages import parse_request
from intake.entrypoints.kafka.operations import REGISTRY
from intake.service_layer import request_answers
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption, generate_private_key_pem
from intake.service_layer.request_answers import KafkaRequestDeps
from sanalpos_common import topics
from sanalpos_common.crypto import Keyring
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.db import migrate
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.observability import Metrics
from sanalpos_common.settings import DEV_PAN_KEYRING, local_database_url
from sanalpos_common.testing import wait_for

from .conftest import authorized, captured, feed

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
BASE_DSN = os.environ.get("INTAKE_DATABASE_URL", local_database_url("intake"))
PAN = "4111111111111111"
ADMIN = "it-admin-token"


@dataclass
class TopicReader:
    """Reads topics from their current end, without a consumer group; keeps every record."""

    names: tuple[str, ...]
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None

    async def start(self, producer: AIOKafkaProducer) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
        await consumer.start()
        partitions = [
            TopicPartition(n, p) for n in self.names for p in await producer.partitions_for(n)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        self.consumer = consumer
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.consumer is not None
        while True:
            for batch in (await self.consumer.getmany(timeout_ms=100)).values():
                self.records.extend(batch)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            await self.consumer.stop()

    def replies(self, request_id: str) -> list[ConsumerRecord[bytes, bytes]]:
        return [
            r
            for r in list(self.records)
            if r.topic == topics.MERCHANT_REPLIES and r.key == request_id.encode()
        ]

    def dead_letters(self, request_id: str) -> list[ConsumerRecord[bytes, bytes]]:
        return [
            r
            for r in list(self.records)
            if r.topic == DEAD_LETTER_TOPIC
            and (REQUEST_ID_HEADER, request_id.encode()) in list(r.headers)
        ]


@dataclass
class EntryPoint:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    reader: TopicReader
    store: SigningSecretStore
    merchant_id: str
    secret: str
    card_token: str
    client_encryption: ClientEncryption
    key: bytes
    requests_topic: str
    deps: KafkaRequestDeps

    async def publish(
        self,
        value: bytes,
        request_id: str,
        *,
        secret: str | None = None,
        merchant_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        key: bytes | None = None,
    ) -> None:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = [
            (MERCHANT_HEADER, (merchant_id or self.merchant_id).encode()),
            (REQUEST_ID_HEADER, request_id.encode()),
            (TIMESTAMP_HEADER, str(ts).encode()),
            (
                SIGNATURE_HEADER,
                (signature or sign(secret or self.secret, request_id, ts, value)).encode(),
            ),
        ]
        await self.producer.send_and_wait(
            self.requests_topic, value=value, key=key or self.key, headers=headers
        )

    async def reply(self, request_id: str, count: int = 1) -> list[dict[str, Any]]:
        async def arrived() -> list[ConsumerRecord[bytes, bytes]]:
            found = self.reader.replies(request_id)
            return found if len(found) >= count else []

        return [json.loads(r.value or b"") for r in await wait_for(arrived, timeout=30)]

    async def dead_letter(self, request_id: str) -> ConsumerRecord[bytes, bytes]:
        async def arrived() -> list[ConsumerRecord[bytes, bytes]]:
            return self.reader.dead_letters(request_id)

        return (await wait_for(arrived, timeout=30))[0]

    async def payments(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM payments WHERE merchant_id = $1", self.merchant_id
            )
        )


def create_value(**body: Any) -> bytes:
    return json.dumps({"operation": "create", "body": body}).encode()


async def _delete_topic(name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def entry() -> AsyncIterator[EntryPoint]:
    run = uuid.uuid4().hex[:10]
    schema, merchant_id = f"kafka_entry_{run}", f"mer_kafka_{run}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await asyncpg.create_pool(
        BASE_DSN, min_size=1, max_size=6, server_settings={"search_path": schema}
    )
    assert pool is not None
    await migrate(pool, "intake", MIGRATIONS)
    await pool.execute("INSERT INTO merchants (id, name) VALUES ($1, 'Kafka IT')", merchant_id)

    # A private request topic: the clear card numbers these tests send (to see them refused)
    # must not stay on the shared one, where the canary scan would rightly find them.
    requests_topic = f"{topics.MERCHANT_REQUESTS}.it-{run}"
    await ensure_topics(KAFKA, [requests_topic, topics.MERCHANT_REPLIES, DEAD_LETTER_TOPIC])
    await configure_request_topic(KAFKA, requests_topic, retention_h=1)
    protection = CardProtection(
        Keyring.from_json(DEV_PAN_KEYRING), rotate_cvc_keys(None, datetime.now(UTC)), b"f" * 32
    )
    stored = protection.tokenize(merchant_id, PAN, 12, 2031, datetime.now(UTC))
    await CardTokenRepository(pool).add(stored)
    store = SigningSecretStore(pool, Keyring.generate("signing"), cache_ttl_s=0)
    created = await store.create(merchant_id)
    client_encryption = ClientEncryption.from_pem(generate_private_key_pem())

    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    reader = TopicReader((requests_topic, topics.MERCHANT_REPLIES, DEAD_LETTER_TOPIC))
    await reader.start(producer)
    group = f"{CONSUMER}-it-{run}"
    metrics = Metrics("intake-it")
    deps = KafkaRequestDeps(pool, protection, client_encryption, CONSUMER)
    relay = OutboxRelay(pool=pool, producer=producer, metrics=metrics, idle_poll_s=0.2)
    loop = RequestConsumerLoop(
        name=CONSUMER,
        group_id=group,
        topics=(requests_topic,),
        bootstrap_servers=KAFKA,
        handler=RequestHandler(deps, store, 300.0),
        dead_letter_producer=producer,
        metrics=metrics,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(loop.run())]
    try:
        yield EntryPoint(
            pool,
            producer,
            reader,
            store,
            merchant_id,
            created.secret,
            stored["token"],
            client_encryption,
            f"it-{run}".encode(),
            requests_topic,
            deps,
        )
    finally:
        loop.stop()
        relay.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _delete_topic(requests_topic)
        await reader.stop()
        await producer.stop()
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def token_payment(entry: EntryPoint, **extra: Any) -> dict[str, Any]:
    return {
        "amount": 12_500,
        "currency": "TRY",
        "card_token": entry.card_token,
        "initiated_by": "merchant",
        **extra,
    }


async def test_a_signed_create_makes_one_payment_and_a_reply(entry: EntryPoint) -> None:
    request_id = f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry, order_id="o-1")), request_id)

    (reply,) = await entry.reply(request_id)
    assert reply["request_id"] == request_id and reply["status"] == 202
    payment = reply["result"]
    assert payment["status"] == "pending" and payment["amount"] == 12_500
    row = await entry.pool.fetchrow(
        "SELECT * FROM payments WHERE id = $1", uuid.UUID(payment["id"])
    )
    assert row is not None and row["merchant_id"] == entry.merchant_id
    initiated = await entry.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND message_key = $2",
        topics.PAYMENT_INITIATED,
        payment["id"],
    )
    assert initiated == 1
    record = entry.reader.replies(request_id)[0]
    assert (MERCHANT_HEADER, entry.merchant_id.encode()) in list(record.headers)


async def test_same_request_id_and_body_replays_the_reply_and_pays_once(entry: EntryPoint) -> None:
    request_id = f"req-{uuid.uuid4()}"
    value = create_value(**token_payment(entry))
    before = await entry.payments()
    await entry.publish(value, request_id)
    (first,) = await entry.reply(request_id)
    await entry.publish(value, request_id, timestamp=int(time.time()) + 1)  # a merchant's resend
    _, second = await entry.reply(request_id, count=2)

    assert second == first
    assert await entry.payments() == before + 1
    assert (b"sanalpos-replayed", b"true") not in [
        (k.encode(), v) for k, v in entry.reader.replies(request_id)[0].headers
    ]
    assert ("sanalpos-replayed", b"true") in list(entry.reader.replies(request_id)[1].headers)


async def test_same_request_id_with_another_body_is_rejected(entry: EntryPoint) -> None:
    request_id = f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry)), request_id)
    await entry.reply(request_id)
    before = await entry.payments()
    await entry.publish(create_value(**token_payment(entry, amount=99)), request_id)
    _, rejected = await entry.reply(request_id, count=2)

    assert rejected["status"] == 422
    assert rejected["problem"]["type"].endswith("/request-id-reused")
    assert await entry.payments() == before


async def test_an_exact_redelivery_is_answered_once(entry: EntryPoint) -> None:
    request_id, ts = f"req-{uuid.uuid4()}", int(time.time())
    value = create_value(**token_payment(entry))
    await entry.publish(value, request_id, timestamp=ts)
    await entry.publish(value, request_id, timestamp=ts)  # same bytes, same signature
    follower = f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry)), follower)
    await entry.reply(follower)

    assert len(entry.reader.replies(request_id)) == 1


async def test_wrong_signature_is_dead_lettered_and_the_next_message_flows(
    entry: EntryPoint,
) -> None:
    before = await entry.payments()
    bad, good = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry)), bad, secret="mrsec_not-the-secret")
    await entry.publish(create_value(**token_payment(entry)), good)

    (reply,) = await entry.reply(good)
    assert reply["status"] == 202
    dead = await entry.dead_letter(bad)
    error = dict(dead.headers)["dlq.error"].decode()
    assert "signature does not match" in error
    assert entry.reader.replies(bad) == []  # no reply for a sender we could not identify
    assert await entry.payments() == before + 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown merchant", "no live signing secret"),
        ("stale timestamp", "stale or replayed"),
        ("unsigned", "missing header sanalpos-signature"),
    ],
)
async def test_unattributable_messages_are_dead_lettered_with_the_reason(
    entry: EntryPoint, case: str, reason: str
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    value = create_value(**token_payment(entry))
    if case == "unknown merchant":
        await entry.publish(value, request_id, merchant_id=f"mer_nobody_{uuid.uuid4().hex[:6]}")
    elif case == "stale timestamp":
        await entry.publish(value, request_id, timestamp=int(time.time()) - 3600)
    else:
        await entry.producer.send_and_wait(
            entry.requests_topic,
            value=value,
            key=entry.key,
            headers=[
                (MERCHANT_HEADER, entry.merchant_id.encode()),
                (REQUEST_ID_HEADER, request_id.encode()),
                (TIMESTAMP_HEADER, str(int(time.time())).encode()),
            ],
        )
    dead = await entry.dead_letter(request_id)
    assert reason in dict(dead.headers)["dlq.error"].decode()
    assert dead.value == value  # no card data in it: the original bytes are kept


async def test_a_missing_field_gets_a_problem_reply_naming_it(entry: EntryPoint) -> None:
    request_id = f"req-{uuid.uuid4()}"
    body = token_payment(entry)
    del body["amount"]
    await entry.publish(create_value(**body), request_id)

    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 422 and "result" not in reply
    problem = reply["problem"]
    assert problem["type"].endswith("/validation-error")
    assert [e["field"] for e in problem["errors"]] == ["body.amount"]


async def test_malformed_json_and_unknown_fields_get_problem_replies(entry: EntryPoint) -> None:
    malformed, unknown = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
    await entry.publish(b'{"operation": "create", "body": ', malformed)
    await entry.publish(create_value(**token_payment(entry, status="captured")), unknown)

    (reply,) = await entry.reply(malformed)
    assert reply["status"] == 400 and reply["problem"]["type"].endswith("/malformed-request")
    (reply,) = await entry.reply(unknown)
    assert reply["status"] == 422
    assert [e["field"] for e in reply["problem"]["errors"]] == ["body.status"]


async def test_a_clear_card_number_is_refused_and_never_echoed(entry: EntryPoint) -> None:
    before = await entry.payments()
    request_id = f"req-{uuid.uuid4()}"
    card = {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    await entry.publish(create_value(amount=100, currency="TRY", card=card), request_id)

    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 422
    assert reply["problem"]["type"].endswith("/card-data-not-accepted")
    assert "card_token" in reply["problem"]["detail"]
    assert "encrypted_card" in reply["problem"]["detail"]
    assert [e["field"] for e in reply["problem"]["errors"]] == ["body.card"]
    assert PAN not in json.dumps(reply)
    assert await entry.payments() == before


async def test_an_unsigned_clear_card_is_dead_lettered_without_its_value(
    entry: EntryPoint,
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    card = {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    await entry.publish(
        create_value(amount=100, currency="TRY", card=card), request_id, signature="v1,forged"
    )

    dead = await entry.dead_letter(request_id)
    assert dead.value is None
    headers = dict(dead.headers)
    assert headers["dlq.value-dropped"] == b"card data in clear"
    assert PAN.encode() not in b"".join(v for _, v in dead.headers)


async def test_encrypted_card_data_is_accepted(entry: EntryPoint) -> None:
    public = jwk.JWK(**entry.client_encryption.public_jwk())
    payload = {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    token = jwe.JWE(
        json.dumps(payload).encode(),
        recipient=public,
        protected={"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": entry.client_encryption.kid},
    )
    request_id = f"req-{uuid.uuid4()}"
    body = {"amount": 700, "currency": "TRY", "encrypted_card": token.serialize(compact=True)}
    await entry.publish(create_value(**body), request_id)

    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 202
    assert reply["result"]["card"]["last4"] == PAN[-4:]


async def test_an_unknown_card_token_is_404_and_refusals_do_not_use_up_the_id(
    entry: EntryPoint,
) -> None:
    request_id = f"req-{uuid.uuid4()}"
    value = create_value(**token_payment(entry, card_token="tok_doesnotexist1"))
    await entry.publish(value, request_id)
    (first,) = await entry.reply(request_id)
    await entry.publish(value, request_id, timestamp=int(time.time()) + 1)
    _, second = await entry.reply(request_id, count=2)

    assert first["status"] == 404 and second == first
    assert [e["field"] for e in first["problem"]["errors"]] == ["body.card_token"]
    await entry.publish(create_value(**token_payment(entry)), request_id)  # corrected, same id
    *_, third = await entry.reply(request_id, count=3)
    assert third["status"] == 202


# --- signing secrets: storage and admin API -------------------------------------------------


async def test_secrets_are_encrypted_at_rest_and_two_stay_live(entry: EntryPoint) -> None:
    rows = await entry.pool.fetch(
        "SELECT ciphertext FROM merchant_signing_secrets WHERE merchant_id = $1", entry.merchant_id
    )
    assert rows and all(r["ciphertext"].startswith("sp1.signing.") for r in rows)
    assert all(entry.secret not in r["ciphertext"] for r in rows)

    other = f"mer_rot_{uuid.uuid4().hex[:8]}"
    await entry.pool.execute("INSERT INTO merchants (id, name) VALUES ($1, 'rot')", other)
    first, second, third = [await entry.store.create(other) for _ in range(3)]
    assert await entry.store.live_secrets(other) == (third.secret, second.secret)
    assert await entry.store.revoke(other, second.id)
    assert not await entry.store.revoke(other, first.id)  # already revoked by the rotation
    assert await entry.store.live_secrets(other) == (third.secret,)


@pytest.fixture
async def admin_client(entry: EntryPoint) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(signing.router)
    app.state.container = SimpleNamespace(admin_token=ADMIN)
    app.state.signing_secrets = entry.store
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_admin_api_rotates_lists_and_revokes(
    entry: EntryPoint, admin_client: httpx.AsyncClient
) -> None:
    merchant = f"mer_adm_{uuid.uuid4().hex[:8]}"
    await entry.pool.execute("INSERT INTO merchants (id, name) VALUES ($1, 'adm')", merchant)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    url = f"/admin/merchants/{merchant}/signing-secrets"

    assert (await admin_client.post(url)).status_code == 401
    first = await admin_client.post(url, headers=auth)
    second = await admin_client.post(url, headers=auth)
    assert first.status_code == second.status_code == 201
    assert second.json()["live_secrets"] == 2
    assert second.json()["secret"].startswith("mrsec_")
    listed = (await admin_client.get(url, headers=auth)).json()["data"]
    assert [s["id"] for s in listed] == [second.json()["id"], first.json()["id"]]
    assert all("secret" not in s for s in listed)

    gone = await admin_client.delete(f"{url}/{first.json()['id']}", headers=auth)
    assert gone.status_code == 204
    assert await entry.store.live_secrets(merchant) == (second.json()["secret"],)
    missing = await admin_client.post("/admin/merchants/mer_nobody_x/signing-secrets", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_rotated_secret_signs_for_its_merchant_end_to_end(
    entry: EntryPoint,
) -> None:
    created = await entry.store.create(entry.merchant_id)  # the original stays live
    old, new = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry)), old)
    await entry.publish(create_value(**token_payment(entry)), new, secret=created.secret)

    assert (await entry.reply(old))[0]["status"] == 202
    assert (await entry.reply(new))[0]["status"] == 202


async def test_freshness_is_judged_by_broker_arrival_not_the_producer_clock(
    entry: EntryPoint,
) -> None:
    """The request topic stamps LogAppendTime: a producer timestamp from an hour ago does not
    make a freshly signed request stale (nor would a fresh one rescue an old signature)."""
    request_id, ts = f"req-{uuid.uuid4()}", int(time.time())
    value = create_value(**token_payment(entry))
    await entry.producer.send_and_wait(
        entry.requests_topic,
        value=value,
        key=entry.key,
        timestamp_ms=(ts - 3600) * 1000,
        headers=[
            (MERCHANT_HEADER, entry.merchant_id.encode()),
            (REQUEST_ID_HEADER, request_id.encode()),
            (TIMESTAMP_HEADER, str(ts).encode()),
            (SIGNATURE_HEADER, sign(entry.secret, request_id, ts, value).encode()),
        ],
    )
    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 202
    (request,) = [
        r
        for r in entry.reader.records
        if r.topic == entry.requests_topic
        and (REQUEST_ID_HEADER, request_id.encode()) in list(r.headers)
    ]
    assert request.timestamp_type == 1  # LogAppendTime: the broker's clock
    assert request.timestamp >= ts * 1000


async def test_the_documented_python_producer_gets_its_reply(entry: EntryPoint) -> None:
    doc = (Path(__file__).resolve().parents[4] / "docs" / "kafka-entry-point.md").read_text()
    code = doc.split("```python\n", 1)[1].split("\n```", 1)[0]
    example: dict[str, Any] = {}
    exec(compile(code, "kafka-entry-point.md", "exec"), example)  # noqa: S102 - our own doc
    assert example["REQUESTS"] == topics.MERCHANT_REQUESTS
    example["REQUESTS"] = entry.requests_topic  # this run's private copy of the topic

    reply = await example["request_payment"](
        KAFKA, entry.merchant_id, entry.secret, token_payment(entry)
    )
    assert reply["status"] == 202 and reply["result"]["object"] == "payment"


# --- capture, void, refund ------------------------------------------------------------------


def lifecycle_value(operation: str, payment_id: str, **body: Any) -> bytes:
    return json.dumps({"operation": operation, "payment_id": payment_id, "body": body}).encode()


async def authorized_preauth(entry: EntryPoint, amount: int = 10_000) -> str:
    """A pre-authorization made over Kafka, then authorized (the event applied as intake's
    outcome consumer would)."""
    request_id = f"req-{uuid.uuid4()}"
    body = token_payment(entry, amount=amount, capture=False)
    await entry.publish(create_value(**body), request_id)
    (reply,) = await entry.reply(request_id)
    payment_id = reply["result"]["id"]
    event = authorized(payment_id, entry.merchant_id, amount)
    await feed(entry.pool, topics.PAYMENT_AUTHORIZED, event)
    return str(payment_id)


async def commands(entry: EntryPoint, topic: str, payment_id: str) -> int:
    return int(
        await entry.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND message_key = $2",
            topic,
            payment_id,
        )
    )


async def test_capture_over_kafka_commands_it_once_and_replays(entry: EntryPoint) -> None:
    payment_id = await authorized_preauth(entry)
    request_id = f"req-{uuid.uuid4()}"
    value = lifecycle_value("capture", payment_id, amount=7_500)
    await entry.publish(value, request_id)
    (first,) = await entry.reply(request_id)
    await entry.publish(value, request_id, timestamp=int(time.time()) + 1)
    _, second = await entry.reply(request_id, count=2)

    assert first["status"] == 202 and first["operation"] == "capture"
    assert first["result"]["id"] == payment_id
    assert second == first
    assert await commands(entry, topics.CAPTURE_PAYMENT, payment_id) == 1
    stored = await entry.pool.fetchval(
        "SELECT reply_status FROM kafka_requests WHERE merchant_id = $1 AND request_id = $2",
        entry.merchant_id,
        request_id,
    )
    assert stored == 202


async def test_lifecycle_refusals_are_problem_replies(entry: EntryPoint) -> None:
    payment_id = await authorized_preauth(entry, amount=5_000)
    too_much, refund, void_body, unknown, no_id = (f"req-{uuid.uuid4()}" for _ in range(5))
    await entry.publish(lifecycle_value("capture", payment_id, amount=9_999), too_much)
    await entry.publish(lifecycle_value("refund", payment_id, amount=100, reason="r"), refund)
    await entry.publish(lifecycle_value("void", payment_id, status="voided"), void_body)
    await entry.publish(lifecycle_value("void", str(uuid.uuid4())), unknown)
    await entry.publish(json.dumps({"operation": "refund", "body": {}}).encode(), no_id)

    (reply,) = await entry.reply(too_much)
    assert reply["status"] == 422
    assert [e["field"] for e in reply["problem"]["errors"]] == ["body.amount"]
    (reply,) = await entry.reply(refund)
    assert reply["status"] == 409
    assert reply["problem"]["type"].endswith("/payment-state-conflict")
    assert reply["problem"]["current_state"] == "authorized"
    (reply,) = await entry.reply(void_body)
    assert reply["status"] == 422
    assert [e["field"] for e in reply["problem"]["errors"]] == ["body.status"]
    (reply,) = await entry.reply(unknown)
    assert reply["status"] == 404
    (reply,) = await entry.reply(no_id)
    assert [e["field"] for e in reply["problem"]["errors"]] == ["payment_id"]
    assert await commands(entry, topics.CAPTURE_PAYMENT, payment_id) == 0
    assert await commands(entry, topics.REFUND_PAYMENT, payment_id) == 0


async def test_void_over_kafka(entry: EntryPoint) -> None:
    payment_id = await authorized_preauth(entry)
    request_id = f"req-{uuid.uuid4()}"
    await entry.publish(lifecycle_value("void", payment_id), request_id)

    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 202 and reply["operation"] == "void"
    assert await commands(entry, topics.VOID_PAYMENT, payment_id) == 1


async def test_refunds_over_kafka_up_to_the_captured_amount(entry: EntryPoint) -> None:
    payment_id = await authorized_preauth(entry, amount=10_000)
    event = captured(payment_id, entry.merchant_id, 10_000, authorized_amount=10_000)
    await feed(entry.pool, topics.PAYMENT_CAPTURED, event)
    first, too_much = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
    await entry.publish(lifecycle_value("refund", payment_id, amount=4_000, reason="r"), first)
    await entry.publish(lifecycle_value("refund", payment_id, amount=7_000, reason="r"), too_much)

    (reply,) = await entry.reply(first)
    assert reply["status"] == 202 and reply["result"]["object"] == "refund"
    assert reply["result"]["amount"] == 4_000
    (reply,) = await entry.reply(too_much)
    assert reply["status"] == 409
    assert reply["problem"]["type"].endswith("/refund-exceeds-captured")
    assert reply["problem"]["available_amount"] == 6_000
    assert await commands(entry, topics.REFUND_PAYMENT, payment_id) == 1


async def test_admin_api_answers_503_when_the_entry_point_is_disabled() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(signing.router)
    app.state.container = SimpleNamespace(admin_token=ADMIN)
    app.state.signing_secrets = None  # production without INTAKE_SIGNING_KEYRING
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post(
            "/admin/merchants/mer_demo/signing-secrets",
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert answer.status_code == 503
    assert answer.json()["type"].endswith("/kafka-entry-point-disabled")


async def test_one_request_id_under_many_keys_at_once_pays_once(entry: EntryPoint) -> None:
    """Different keys run concurrently: the copies meet while the first executes; the others
    wait for it (no "retry later" reply) and replay its answer."""
    request_id, ts = f"req-{uuid.uuid4()}", int(time.time())
    value = create_value(**token_payment(entry))
    before = await entry.payments()
    await asyncio.gather(
        *(
            entry.publish(value, request_id, timestamp=ts + n, key=f"k{n}".encode())
            for n in range(6)
        )
    )
    replies = await entry.reply(request_id, count=6)

    assert {r["status"] for r in replies} == {202}
    assert len({r["result"]["id"] for r in replies}) == 1
    assert await entry.payments() == before + 1


async def test_another_merchants_payment_is_not_found(entry: EntryPoint) -> None:
    payment_id = await authorized_preauth(entry)
    other = f"mer_other_{uuid.uuid4().hex[:8]}"
    await entry.pool.execute("INSERT INTO merchants (id, name) VALUES ($1, 'other')", other)
    other_secret = (await entry.store.create(other)).secret
    request_id = f"req-{uuid.uuid4()}"
    await entry.publish(
        lifecycle_value("void", payment_id), request_id, merchant_id=other, secret=other_secret
    )

    (reply,) = await entry.reply(request_id)
    assert reply["status"] == 404
    assert (MERCHANT_HEADER, other.encode()) in list(entry.reader.replies(request_id)[0].headers)
    assert await commands(entry, topics.VOID_PAYMENT, payment_id) == 0


# --- one request id, one effect: capture, void and refund claim it in their transaction -----


async def captured_sale(entry: EntryPoint, amount: int = 10_000) -> str:
    payment_id = await authorized_preauth(entry, amount)
    event = captured(payment_id, entry.merchant_id, amount, authorized_amount=amount)
    await feed(entry.pool, topics.PAYMENT_CAPTURED, event)
    return payment_id


async def refunds_of(entry: EntryPoint, payment_id: str) -> int:
    return int(
        await entry.pool.fetchval(
            "SELECT count(*) FROM refunds WHERE payment_id = $1", uuid.UUID(payment_id)
        )
    )


async def answer_twice_at_once(
    entry: EntryPoint, request_id: str, value: bytes
) -> list[request_answers.Reply | None]:
    """Two deliveries of one request id (a merchant's resend: another delivery id) handled
    concurrently, as two consumer tasks would."""
    request = parse_request(value)
    prepared = REGISTRY[request.operation](entry.deps, entry.merchant_id, request_id, request)
    return list(
        await asyncio.gather(
            *(
                request_answers.answer(
                    entry.deps, entry.merchant_id, request_id, uuid.uuid4(), prepared
                )
                for _ in range(2)
            )
        )
    )


async def test_two_deliveries_of_one_refund_request_id_at_once_refund_once(
    entry: EntryPoint,
) -> None:
    payment_id = await captured_sale(entry)
    request_id = f"req-{uuid.uuid4()}"
    value = lifecycle_value("refund", payment_id, amount=2_000, reason="returned")

    first, second = await answer_twice_at_once(entry, request_id, value)

    assert first is not None and second is not None
    assert first.status == second.status == 202
    assert first.result == second.result  # the same refund, answered twice
    assert await refunds_of(entry, payment_id) == 1
    assert await commands(entry, topics.REFUND_PAYMENT, payment_id) == 1
    replies = await entry.reply(request_id, count=2)
    assert replies[0] == replies[1]


async def test_two_deliveries_of_one_capture_request_id_at_once_capture_once(
    entry: EntryPoint,
) -> None:
    payment_id = await authorized_preauth(entry)
    request_id = f"req-{uuid.uuid4()}"
    value = lifecycle_value("capture", payment_id, amount=4_000)

    first, second = await answer_twice_at_once(entry, request_id, value)

    assert first is not None and second is not None
    assert first.status == second.status == 202 and first.result == second.result
    assert await commands(entry, topics.CAPTURE_PAYMENT, payment_id) == 1


async def test_two_deliveries_of_one_void_request_id_at_once_void_once(
    entry: EntryPoint,
) -> None:
    payment_id = await authorized_preauth(entry)
    request_id = f"req-{uuid.uuid4()}"

    first, second = await answer_twice_at_once(
        entry, request_id, lifecycle_value("void", payment_id)
    )

    assert first is not None and second is not None
    assert first.status == second.status == 202 and first.result == second.result
    assert await commands(entry, topics.VOID_PAYMENT, payment_id) == 1


async def test_one_refund_request_id_under_many_keys_at_once_refunds_once(
    entry: EntryPoint,
) -> None:
    """Over the broker: resends under different keys run concurrently in the consumer."""
    payment_id = await captured_sale(entry)
    request_id, ts = f"req-{uuid.uuid4()}", int(time.time())
    value = lifecycle_value("refund", payment_id, amount=1_000, reason="returned")
    await asyncio.gather(
        *(
            entry.publish(value, request_id, timestamp=ts + n, key=f"r{n}".encode())
            for n in range(6)
        )
    )
    replies = await entry.reply(request_id, count=6)

    assert {r["status"] for r in replies} == {202}
    assert len({json.dumps(r["result"], sort_keys=True) for r in replies}) == 1
    assert await refunds_of(entry, payment_id) == 1
    assert await commands(entry, topics.REFUND_PAYMENT, payment_id) == 1


async def test_a_refund_request_id_first_used_by_a_create_is_reused(entry: EntryPoint) -> None:
    payment_id = await captured_sale(entry)
    request_id = f"req-{uuid.uuid4()}"
    await entry.publish(create_value(**token_payment(entry)), request_id)
    await entry.reply(request_id)
    value = lifecycle_value("refund", payment_id, amount=1_000, reason="returned")
    await entry.publish(value, request_id)

    _, refused = await entry.reply(request_id, count=2)
    assert refused["status"] == 422
    assert refused["problem"]["type"].endswith("/request-id-reused")
    assert await refunds_of(entry, payment_id) == 0
