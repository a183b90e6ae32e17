"""Open-loop load: requests start on a fixed schedule whatever the answers do, and each
payment's outcome is followed on Kafka (record timestamps of the outcome topics).

Two entry points share the generator: HTTP (`POST /v1/payments`, aiohttp connection pool) and
Kafka (HMAC-signed `create` requests on `merchant.payment-requests.v1`, card data as JWE).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.cards import approving_card
from bench.stats import latency_summary, rate

PAYMENT_AUTHORIZED = "payment.authorized.v1"
PAYMENT_DECLINED = "payment.declined.v1"
PAYMENT_CAPTURED = "payment.captured.v1"
REQUESTS = "merchant.payment-requests.v1"
REPLIES = "merchant.payment-replies.v1"


def payment_body(rng: random.Random, **card_extra: Any) -> dict[str, Any]:
    return {
        "amount": 1_000 + rng.randrange(50_000),
        "currency": "TRY",
        "capture": True,
        "card": {"number": approving_card(rng), "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        **card_extra,
    }


@dataclass
class Outcomes:
    """What the outcome consumer saw, by payment id: record timestamps (epoch seconds)."""

    authorized: dict[str, float] = field(default_factory=dict)  # authorized or declined
    declined: set[str] = field(default_factory=set)
    captured: dict[str, float] = field(default_factory=dict)
    replies: dict[str, tuple[int, str | None, float]] = field(default_factory=dict)
    last_seen: float = 0.0

    def record(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> None:
        at = timestamp_ms / 1000
        self.last_seen = time.time()
        if topic == REPLIES:
            reply = json.loads(value)
            payment = (reply.get("result") or {}).get("id")
            self.replies[reply["request_id"]] = (reply["status"], payment, at)
            return
        payment_id = key.decode() if key else ""
        if topic == PAYMENT_CAPTURED:
            self.captured.setdefault(payment_id, at)
            return
        self.authorized.setdefault(payment_id, at)
        if topic == PAYMENT_DECLINED:
            self.declined.add(payment_id)


class OutcomeWatcher:
    """A fresh consumer group reading the outcome topics (and the reply topic) from their end."""

    def __init__(self, bootstrap: str) -> None:
        self.outcomes = Outcomes()
        self._consumer = AIOKafkaConsumer(
            PAYMENT_AUTHORIZED,
            PAYMENT_DECLINED,
            PAYMENT_CAPTURED,
            REPLIES,
            bootstrap_servers=bootstrap,
            group_id=f"bench-outcomes-{uuid.uuid4()}",
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        deadline = time.monotonic() + 60
        while not self._consumer.assignment() and time.monotonic() < deadline:
            await self._consumer.getmany(timeout_ms=200)  # joins the group: end positions fixed
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for batch in (await self._consumer.getmany(timeout_ms=200)).values():
                for m in batch:
                    self.outcomes.record(m.topic, m.key, m.value, m.timestamp)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


@dataclass
class Sent:
    scheduled: float  # perf_counter of the planned start
    started: float  # perf_counter when it left
    wall: float  # time.time() when it left (compared with Kafka record timestamps)
    answered: float | None = None  # perf_counter of the answer (HTTP) or hand-over (Kafka)
    answered_wall: float | None = None  # time.time() of the answer (HTTP) or the reply record
    status: int | None = None
    payment_id: str | None = None
    request_id: str | None = None  # Kafka entry: the payment id arrives with the reply


Send = Callable[[int, Sent], Coroutine[Any, Any, None]]


async def open_loop(offered: float, seconds: float, send: Send) -> tuple[list[Sent], float]:
    """Starts request i at start + i/offered (never waiting for earlier answers); returns the
    requests and the generator's CPU share (its process CPU time over wall time)."""
    count = max(1, round(offered * seconds))
    sent: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    start = wall_before + 0.05
    for index in range(count):
        scheduled = start + index / offered
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        item = Sent(scheduled=scheduled, started=time.perf_counter(), wall=time.time())
        sent.append(item)
        tasks.append(asyncio.create_task(send(index, item)))
    await asyncio.gather(*tasks)
    cpu_share = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
    return sent, cpu_share


class HttpEntry:
    """POST /v1/payments with an Idempotency-Key per request; optionally Prefer: wait=N."""

    def __init__(self, base_url: str, api_key: str, pool: int = 256) -> None:
        self._base = base_url
        self._api_key = api_key
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None
        self.bodies: list[bytes] = []

    async def __aenter__(self) -> HttpEntry:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def prepare(self, count: int, rng: random.Random) -> None:
        """Bodies are serialized before the clock starts: the generator's work stays small."""
        self.bodies = [json.dumps(payment_body(rng)).encode() for _ in range(count)]

    def sender(self, wait_s: int | None = None) -> Send:
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"}
        if wait_s is not None:
            headers["Prefer"] = f"wait={wait_s}"
        url = f"{self._base}/v1/payments"

        async def send(index: int, item: Sent) -> None:
            assert self._session is not None
            try:
                async with self._session.post(
                    url,
                    data=self.bodies[index],
                    headers={**headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
                ) as response:
                    item.status = response.status
                    if response.status in (200, 201, 202):
                        item.payment_id = (await response.json())["id"]
                    else:
                        await response.read()
            except (aiohttp.ClientError, TimeoutError):
                item.status = 0
            item.answered = time.perf_counter()
            item.answered_wall = time.time()

        return send


def signed_headers(
    merchant_id: str, secret: str, request_id: str, value: bytes
) -> list[tuple[str, bytes]]:
    """The entry point's four headers (docs/kafka-entry-point.md): HMAC-SHA256 under the
    merchant's signing secret over `{request_id}.{timestamp}.{value}`."""
    timestamp = int(time.time())
    signed = f"{request_id}.{timestamp}.".encode() + value
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return [
        ("sanalpos-merchant-id", merchant_id.encode()),
        ("sanalpos-request-id", request_id.encode()),
        ("sanalpos-timestamp", str(timestamp).encode()),
        ("sanalpos-signature", b"v1," + signature),
    ]


class KafkaEntry:
    """Signed `create` requests on the request topic; the card travels as a JWE to the
    platform's public key (the entry point refuses card data in clear)."""

    def __init__(self, bootstrap: str, merchant_id: str, secret: str, jwk: dict[str, Any]):
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        self._merchant = merchant_id
        self._secret = secret
        self._jwk = jwk
        self.values: list[tuple[str, bytes]] = []

    async def __aenter__(self) -> KafkaEntry:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    def prepare(self, count: int, rng: random.Random) -> None:
        from jwcrypto import jwe, jwk

        key = jwk.JWK(**self._jwk)
        self.values = []
        for _ in range(count):
            # Bound as a checkout binds it: this merchant, made now, used once.
            protected = {
                "alg": "RSA-OAEP-256",
                "enc": "A256GCM",
                "kid": self._jwk.get("kid"),
                "aud": self._merchant,
                "iat": int(time.time()),
                "jti": uuid.uuid4().hex,
            }
            body = payment_body(rng)
            card = json.dumps(body.pop("card")).encode()
            body["encrypted_card"] = jwe.JWE(card, recipient=key, protected=protected).serialize(
                compact=True
            )
            value = json.dumps({"operation": "create", "body": body}).encode()
            self.values.append((f"bench-{uuid.uuid4()}", value))

    def sender(self) -> Send:
        async def send(index: int, item: Sent) -> None:
            request_id, value = self.values[index]
            item.request_id = request_id
            await self._producer.send(
                REQUESTS,
                value=value,
                key=request_id.encode(),
                headers=signed_headers(self._merchant, self._secret, request_id, value),
            )
            item.answered = time.perf_counter()  # handed to the producer, not yet acked

        return send


def resolve_kafka_requests(sent: list[Sent], outcomes: Outcomes) -> None:
    """Kafka requests are answered on the reply topic: status and payment id from there."""
    for item in sent:
        reply = outcomes.replies.get(item.request_id or "")
        if reply is not None:
            item.status, item.payment_id, item.answered_wall = reply
        else:
            item.status, item.payment_id = None, None


async def wait_outcomes(
    sent: list[Sent], outcomes: Outcomes, timeout_s: float, kafka_entry: bool = False
) -> float:
    """Waits until every accepted payment is captured or declined (or the timeout);
    returns the wall time (epoch) of the last outcome seen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if kafka_entry:
            resolve_kafka_requests(sent, outcomes)
            if any(s.status is None for s in sent):
                await asyncio.sleep(0.2)
                continue
        accepted = [s.payment_id for s in sent if s.payment_id and s.status in (201, 202)]
        if all(p in outcomes.captured or p in outcomes.declined for p in accepted):
            break
        await asyncio.sleep(0.2)
    if kafka_entry:
        resolve_kafka_requests(sent, outcomes)
    return outcomes.last_seen


def step_report(
    offered: float, sent: list[Sent], outcomes: Outcomes, cpu_share: float
) -> dict[str, Any]:
    """Rates over one open-loop step: accepted = 2xx answers (HTTP) or 202 replies (Kafka)
    per second from the first send to the last answer; completed = captured or declined
    payments per second from the first send to the last of their outcomes."""
    first = min(s.wall for s in sent)
    accepted = [s for s in sent if s.status in (201, 202) and s.payment_id]
    answer_times = [s.answered_wall for s in accepted if s.answered_wall is not None]
    done_at = [
        outcomes.captured.get(s.payment_id or "")
        or (
            outcomes.authorized.get(s.payment_id or "")
            if s.payment_id in outcomes.declined
            else None
        )
        for s in accepted
    ]
    done = [t for t in done_at if t is not None]
    to_outcome = [
        outcomes.authorized[s.payment_id] - s.wall
        for s in accepted
        if s.payment_id in outcomes.authorized
    ]
    to_captured = [
        outcomes.captured[s.payment_id] - s.wall
        for s in accepted
        if s.payment_id in outcomes.captured
    ]
    answered = [s.answered_wall - s.wall for s in sent if s.answered_wall is not None]
    lag = [s.started - s.scheduled for s in sent]
    send_span = max(s.started for s in sent) - min(s.started for s in sent)
    return {
        "offered_per_s": offered,
        "sent": len(sent),
        "sent_per_s": rate(len(sent) - 1, send_span) if len(sent) > 1 else 0.0,
        "accepted": len(accepted),
        "accepted_per_s": rate(len(accepted), max(answer_times, default=first) - first),
        "completed": len(done),
        "declined": sum(1 for s in accepted if s.payment_id in outcomes.declined),
        "completed_per_s": rate(len(done), max(done, default=first) - first),
        "answers": _status_counts(sent),
        "to_outcome": latency_summary(to_outcome),
        "to_captured": latency_summary(to_captured),
        "response": latency_summary(answered),
        "send_lag": latency_summary(lag),
        "generator_cpu_share": round(cpu_share, 3),
    }


def _status_counts(sent: list[Sent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in sent:
        key = str(s.status)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
