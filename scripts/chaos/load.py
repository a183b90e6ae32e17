"""The chaos run's load: payments over HTTP and the Kafka entry point, each with its planned
follow-up (capture, void, refund), retried until intake acknowledges it, whatever is down.

A payment counts as *acknowledged* when intake answered its create with 201/202 (HTTP) or
replied so on the reply topic (Kafka). Follow-ups start when the outcome they need (the hold,
the capture) shows on Kafka; a 409 for the wrong state is asked again with a new key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from bench.cards import approving_card, luhn_check_digit

from authorization.domain.issuer import TEST_RANGES
from sanalpos_common import topics
from sanalpos_common.messaging.producer import ReconnectingProducer

REQUEST_IN_PROGRESS = "idempotency-key-in-progress"


@dataclass
class Plan:
    index: int
    entry: str  # "http" | "kafka"
    kind: str  # "sale" | "preauth" | "decline"
    follow_up: (
        str | None
    )  # "refund_full" | "refund_partial" | "capture" | "capture_partial" | "void"
    amount: int
    currency: str
    card: str
    payment_id: str | None = None
    acknowledged: bool = False
    follow_up_started: bool = False
    follow_up_done: bool = False
    follow_up_attempts: int = 0

    @property
    def capture(self) -> bool:
        return self.kind != "preauth"

    def follow_up_trigger(self) -> str | None:
        if self.follow_up is None:
            return None
        return topics.PAYMENT_CAPTURED if self.kind == "sale" else topics.PAYMENT_AUTHORIZED


def declining_card(rng: random.Random) -> tuple[str, int]:
    """A fresh number in one of the simulator's declining ranges, and an amount it declines
    (the 51 range only refuses over its 10.00 limit)."""
    prefix = rng.choice(sorted(TEST_RANGES))
    body = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
    return body + luhn_check_digit(body), 2_000 + rng.randrange(50_000)


def make_plans(count: int, rng: random.Random, kafka_share: float) -> list[Plan]:
    plans = []
    for index in range(count):
        roll = rng.random()
        entry = "kafka" if rng.random() < kafka_share else "http"
        currency = rng.choice(["TRY"] * 6 + ["USD", "EUR"])
        amount = 1_000 + rng.randrange(200_000)
        card = approving_card(rng)
        if roll < 0.10:
            card, amount = declining_card(rng)
            plans.append(Plan(index, entry, "decline", None, amount, currency, card))
            continue
        if roll < 0.45:
            follow = rng.choice(["capture", "capture", "capture_partial", "void"])
            plans.append(Plan(index, entry, "preauth", follow, amount, currency, card))
            continue
        follow = rng.choices([None, "refund_full", "refund_partial"], [70, 15, 15])[0]
        plans.append(Plan(index, entry, "sale", follow, amount, currency, card))
    return plans


@dataclass
class WebhookSink:
    """Counts webhook deliveries by their `webhook-id` (the same on every retry)."""

    received: Counter[str] = field(default_factory=Counter)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.received[self.headers.get("webhook-id", "?")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def signed_headers(
    merchant_id: str, secret: str, request_id: str, value: bytes
) -> list[tuple[str, bytes]]:
    timestamp = int(time.time())
    signed = f"{request_id}.{timestamp}.".encode() + value
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return [
        ("sanalpos-merchant-id", merchant_id.encode()),
        ("sanalpos-request-id", request_id.encode()),
        ("sanalpos-timestamp", str(timestamp).encode()),
        ("sanalpos-signature", b"v1," + signature),
    ]


@dataclass
class LoadStats:
    http_retries: int = 0
    kafka_resends: int = 0
    conflicts_retried: int = 0
    batches_closed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


class Load:
    def __init__(
        self,
        intake_url: str,
        settlement_url: str,
        bootstrap: str,
        merchant: dict[str, Any],
        signing_secret: str,
        jwk: dict[str, Any],
        admin_token: str,
        plans: list[Plan],
        concurrency: int,
    ) -> None:
        self.intake_url = intake_url
        self.settlement_url = settlement_url
        self.bootstrap = bootstrap
        self.merchant = merchant
        self.secret = signing_secret
        self.jwk = jwk
        self.admin_token = admin_token
        self.plans = plans
        self.concurrency = concurrency
        self.stats = LoadStats()
        self.by_payment: dict[str, Plan] = {}
        self.seen: dict[str, set[str]] = {}
        self.replies: dict[str, dict[str, Any]] = {}
        self.reply_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.follow_ups: asyncio.Queue[Plan] = asyncio.Queue()
        self.producer: ReconnectingProducer | None = None
        self.http: httpx.AsyncClient | None = None
        self.watcher: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.sent = 0

    @property
    def acknowledged(self) -> int:
        return sum(1 for p in self.plans if p.acknowledged)

    # ------------------------------------------------------------------ plumbing

    async def start(self) -> None:
        self.http = httpx.AsyncClient(
            base_url=self.intake_url,
            timeout=15,
            limits=httpx.Limits(max_connections=self.concurrency * 2),
            headers={"Authorization": f"Bearer {self.merchant['api_key']}"},
        )
        # The harness's own producer breaks after a broker restart just like the services'
        # (OutOfOrderSequenceNumber for good; seen in the first full run): same remedy.
        self.producer = ReconnectingProducer(
            lambda: AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=15000,
            )
        )
        await self.producer.start()
        self.watcher = AIOKafkaConsumer(
            topics.PAYMENT_AUTHORIZED,
            topics.PAYMENT_CAPTURED,
            topics.PAYMENT_DECLINED,
            topics.MERCHANT_REPLIES,
            bootstrap_servers=self.bootstrap,
            group_id=f"chaos-watcher-{uuid.uuid4()}",
            auto_offset_reset="earliest",  # a fresh cluster: every outcome of this run
            fetch_max_wait_ms=100,
        )
        await self.watcher.start()
        self._tasks.append(asyncio.create_task(self._watch()))
        self._tasks += [asyncio.create_task(self._follow_up_worker()) for _ in range(8)]
        self._tasks.append(asyncio.create_task(self._close_batches_every(15.0)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.watcher is not None:
            await self.watcher.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.http is not None:
            await self.http.aclose()

    async def _watch(self) -> None:
        assert self.watcher is not None
        while True:
            try:
                batches = await self.watcher.getmany(timeout_ms=500)
            except KafkaError:
                await asyncio.sleep(1)
                continue
            for messages in batches.values():
                for message in messages:
                    self._record(message.topic, message.key, message.value)

    def _record(self, topic: str, key: bytes | None, value: bytes) -> None:
        if topic == topics.MERCHANT_REPLIES:
            with contextlib.suppress(ValueError, KeyError):
                reply = json.loads(value)
                self.replies[reply["request_id"]] = reply
                waiter = self.reply_waiters.pop(reply["request_id"], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(reply)
            return
        payment_id = (key or b"").decode()
        self.seen.setdefault(payment_id, set()).add(topic)
        plan = self.by_payment.get(payment_id)
        if plan is not None:
            self._maybe_follow_up(plan)

    def _maybe_follow_up(self, plan: Plan) -> None:
        trigger = plan.follow_up_trigger()
        if trigger is None or plan.follow_up_started or plan.payment_id is None:
            return
        if trigger in self.seen.get(plan.payment_id, ()):
            plan.follow_up_started = True
            self.follow_ups.put_nowait(plan)

    async def _close_batches_every(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(httpx.HTTPError):
                self.stats.batches_closed += await self.close_batches()

    async def close_batches(self) -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.settlement_url}/admin/batches/close",
                json={"merchant_id": self.merchant["id"]},
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        return len(response.json()["closed"]) if response.status_code == 200 else 0

    # --------------------------------------------------------------------- HTTP

    async def _post(self, path: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
        """POST until intake gives an answer that is not "try again": connection errors,
        5xx, 429 and "in progress" are retried with the same Idempotency-Key."""
        assert self.http is not None
        delay = 0.2
        while True:
            try:
                # httpx's own timeouts did not fire in one full run after services restarted
                # (connections left in CLOSE-WAIT): an outer bound on every request too.
                async with asyncio.timeout(30):
                    response = await self.http.post(
                        path, json=body, headers={"Idempotency-Key": key}
                    )
            except (httpx.HTTPError, TimeoutError):
                response = None
            if response is not None:
                answer = _json(response)
                again = response.status_code >= 500 or response.status_code == 429
                if response.status_code == 409 and REQUEST_IN_PROGRESS in str(answer.get("type")):
                    again = True
                if not again:
                    return response.status_code, answer
            self.stats.http_retries += 1
            await asyncio.sleep(delay)
            delay = min(3.0, delay * 2)

    # -------------------------------------------------------------------- Kafka

    async def _request(self, request_id: str, value: dict[str, Any]) -> dict[str, Any]:
        """One Kafka entry request, sent again (same request id) until its reply arrives."""
        assert self.producer is not None
        raw = json.dumps(value).encode()
        while True:
            if request_id in self.replies:
                return self.replies[request_id]
            waiter = self.reply_waiters.setdefault(
                request_id, asyncio.get_running_loop().create_future()
            )
            try:
                await asyncio.wait_for(
                    self.producer.send_and_wait(
                        topics.MERCHANT_REQUESTS,
                        value=raw,
                        key=request_id.encode(),
                        headers=signed_headers(self.merchant["id"], self.secret, request_id, raw),
                    ),
                    timeout=30,
                )
                return await asyncio.wait_for(asyncio.shield(waiter), timeout=90)
            except (KafkaError, TimeoutError):
                self.stats.kafka_resends += 1
                await asyncio.sleep(1)

    def _encrypted(self, card: dict[str, Any]) -> str:
        from jwcrypto import jwe, jwk

        key = jwk.JWK(**self.jwk)
        # Bound the way intake requires (docs/security.md): this merchant, made now, used once.
        protected = {
            "alg": "RSA-OAEP-256",
            "enc": "A256GCM",
            "kid": self.jwk.get("kid"),
            "aud": self.merchant["id"],
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
        }
        token = jwe.JWE(json.dumps(card).encode(), recipient=key, protected=protected)
        return str(token.serialize(compact=True))

    # ----------------------------------------------------------------- payments

    async def create(self, plan: Plan) -> None:
        card = {"number": plan.card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
        body: dict[str, Any] = {
            "amount": plan.amount,
            "currency": plan.currency,
            "capture": plan.capture,
            "installments": 1,
            "order_id": f"chaos-{plan.index}",
        }
        if plan.entry == "http":
            status, answer = await self._post(
                "/v1/payments", {**body, "card": card}, f"chaos-create-{plan.index}"
            )
        else:
            body["encrypted_card"] = self._encrypted(card)
            reply = await self._request(
                f"chaos-create-{plan.index}", {"operation": "create", "body": body}
            )
            status, answer = reply["status"], reply.get("result") or {}
        self.sent += 1
        self.stats.statuses[f"create {plan.entry} {status}"] += 1
        if status in (201, 202) and answer.get("id"):
            plan.payment_id = str(answer["id"])
            plan.acknowledged = True
            self.by_payment[plan.payment_id] = plan
            self._maybe_follow_up(plan)

    async def _follow_up_worker(self) -> None:
        while True:
            plan = await self.follow_ups.get()
            try:
                await self._follow_up(plan)
            except Exception as exc:
                self.stats.statuses[f"follow-up error {type(exc).__name__}"] += 1
                await asyncio.sleep(2)
                self.follow_ups.put_nowait(plan)

    def _follow_up_request(self, plan: Plan) -> tuple[str, str, dict[str, Any]]:
        """(operation, HTTP path, body) of the plan's follow-up."""
        pid = plan.payment_id
        match plan.follow_up:
            case "capture":
                return "capture", f"/v1/payments/{pid}/capture", {}
            case "capture_partial":
                return "capture", f"/v1/payments/{pid}/capture", {"amount": plan.amount // 2}
            case "void":
                return "void", f"/v1/payments/{pid}/void", {}
            case "refund_full":
                return (
                    "refund",
                    f"/v1/payments/{pid}/refunds",
                    {"amount": plan.amount, "reason": "chaos"},
                )
            case _:
                body = {"amount": max(1, plan.amount // 3), "reason": "chaos"}
                return "refund", f"/v1/payments/{pid}/refunds", body

    async def _follow_up(self, plan: Plan) -> None:
        operation, path, body = self._follow_up_request(plan)
        while not plan.follow_up_done:
            plan.follow_up_attempts += 1
            request_id = f"chaos-{operation}-{plan.index}-{plan.follow_up_attempts}"
            if plan.entry == "http":
                status, _ = await self._post(path, body, request_id)
            else:
                value = {"operation": operation, "payment_id": plan.payment_id, "body": body}
                status = (await self._request(request_id, value))["status"]
            self.stats.statuses[f"{operation} {plan.entry} {status}"] += 1
            if status in (200, 201, 202):
                plan.follow_up_done = True
            elif status == 409:  # not in the state for it yet: ask again, with a new key
                self.stats.conflicts_retried += 1
                await asyncio.sleep(min(4.0, 0.5 * 2 ** min(plan.follow_up_attempts, 3)))
            else:
                return  # refused for good (reported in the statuses)

    async def run(self, on_progress: Callable[[float], None] | None = None) -> float:
        """Creates every planned payment with `concurrency` in flight; returns seconds."""
        started = time.monotonic()
        queue: asyncio.Queue[Plan] = asyncio.Queue()
        for plan in self.plans:
            queue.put_nowait(plan)

        async def worker() -> None:
            while not queue.empty():
                plan = queue.get_nowait()
                await self.create(plan)
                if on_progress is not None:
                    on_progress(self.sent / len(self.plans))

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return time.monotonic() - started

    def follow_ups_started_pending(self) -> list[Plan]:
        """Follow-ups whose trigger was seen and that intake has not acknowledged yet."""
        return [p for p in self.plans if p.follow_up_started and not p.follow_up_done]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
