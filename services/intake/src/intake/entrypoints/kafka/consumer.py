"""Kafka entry point: merchants publish payment requests to merchant.payment-requests.v1.

Authentication happens here, before anything is parsed: a message that cannot be attributed
to a merchant (headers missing, unknown merchant, no live secret, wrong signature, stale
timestamp) is dead-lettered to dlq.intake-requests.v1 and gets no reply, so nobody can write
into another merchant's reply stream. Everything after that is answered on the reply topic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from fastapi import FastAPI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from intake.adapters.kafka_requests import purge_answers
from intake.adapters.signing_secrets import KEYRING_ID, SigningSecretStore
from intake.config import REPO_STATE_DIR
from intake.domain.request_signing import (
    RequestHeaders,
    Unauthenticated,
    check_fresh,
    read_headers,
    signature_matches,
)
from intake.entrypoints.kafka.messages import parse_request
from intake.entrypoints.kafka.operations import REGISTRY, Preparer
from intake.service_layer import request_answers
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption
from intake.service_layer.problems import ProblemDetails, Refused
from intake.service_layer.request_answers import KafkaRequestDeps, Reply
from sanalpos_common import topics, tracing
from sanalpos_common.crypto.card import holds_card_number
from sanalpos_common.crypto.keyring import Keyring, KeyringError
from sanalpos_common.crypto.providers import LiveKeyring, provider_from_spec
from sanalpos_common.crypto.wrapping import KeyWrapper
from sanalpos_common.messaging.admin import TopicSpec, ensure_topics
from sanalpos_common.messaging.consumer import ConsumerLoop, NonRetryable
from sanalpos_common.messaging.security import kafka_client_kwargs
from sanalpos_common.observability import redact, request_id_var
from sanalpos_common.service import Platform
from sanalpos_common.settings import Environment, service_config

CONSUMER = "intake-requests"
"""Consumer group and name; its dead-letter topic is dlq.intake-requests.v1."""
DEAD_LETTER_TOPIC = topics.dead_letter_topic(CONSUMER)
LOG_APPEND_TIME = 1  # Kafka record timestamp type: set by the broker on arrival
_DELIVERY_NAMESPACE = uuid.UUID("7d0c3f52-5f0e-4f43-9a7c-6b1de3e0a8a1")
_SENSITIVE_KEYS = frozenset({"card", "cvc", "number"})
log = logging.getLogger(__name__)


class KafkaEntrySettings(BaseSettings):
    model_config = service_config("INTAKE_")

    env: Environment = Field(default="development", validation_alias="SANALPOS_ENV")
    signing_keyring: SecretStr | None = None
    """Key provider spec (`provider_from_spec`) of the keyring that encrypts merchants'
    signing secrets at rest. Required in production; development default:
    `local:<SANALPOS_STATE_DIR>/keys` (file signing.json, created 0600)."""
    request_timestamp_tolerance_s: float = 300.0
    """How far the signed timestamp may lie from the message's arrival at the broker."""
    request_answer_retention_h: int = 72
    """Answers (per merchant and request id) are kept at least this long for replays."""
    request_topic_retention_h: int = 72
    """Retention set on the request topic at start-up."""
    requests_consumer_group: str | None = None
    """Consumer group of the entry point (default `intake-requests`); a second deployment on
    the same broker (e.g. the fraud-evaluation harness) sets its own."""
    state_dir: Path = Field(default=REPO_STATE_DIR, validation_alias="SANALPOS_STATE_DIR")

    @property
    def enabled(self) -> bool:
        """Production serves the entry point only with a configured keyring (a missing one
        disables it, loudly, rather than stopping the HTTP API from starting)."""
        return self.env != "production" or bool(
            self.signing_keyring and self.signing_keyring.get_secret_value().strip()
        )

    @property
    def signing_keyring_spec(self) -> str:
        if self.signing_keyring is not None:
            return self.signing_keyring.get_secret_value()
        return f"local:{self.state_dir / 'keys'}"


# --- what a dead letter of this topic may keep ----------------------------------------------


def _has_sensitive_key(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k in _SENSITIVE_KEYS or _has_sensitive_key(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_sensitive_key(v) for v in node)
    return False


def card_data_in(value: bytes | None) -> bool:
    """The value holds a card number, or a field meant for card data in clear."""
    if not value:
        return False
    text = value.decode("utf-8", "replace")
    if holds_card_number(text):
        return True
    try:
        return _has_sensitive_key(json.loads(text))
    except ValueError:
        return False


def encrypted_card_in(value: bytes | None) -> bool:
    """The value names an encrypted card (a JWE): no use for a dead letter, and a token its
    reader could try to pay with. Matched on the text, so malformed JSON counts too."""
    return bool(value) and b"encrypted_card" in (value or b"")


def _redacted_header(value: bytes) -> bytes:
    text = value.decode("utf-8", "replace")
    return redact(text).encode() if holds_card_number(text) else value


def without_card_data(message: Any) -> Any:
    """The record as it may be dead-lettered: its value is dropped when it holds card data,
    in clear or client-side encrypted, and header values shaped like card numbers are
    redacted. Everything else is kept."""
    headers = [(name, _redacted_header(v)) for name, v in (message.headers or [])]
    if card_data_in(message.value):
        headers.append(("dlq.value-dropped", b"card data in clear"))
        return dataclasses.replace(message, value=None, headers=headers)
    if encrypted_card_in(message.value):
        headers.append(("dlq.value-dropped", b"encrypted card data (JWE)"))
        return dataclasses.replace(message, value=None, headers=headers)
    return dataclasses.replace(message, headers=headers)


class RequestConsumerLoop(ConsumerLoop):
    """The shared loop (bounded retries, offsets committed after the whole batch is handled,
    DLQ with the reason) for raw records: the merchant's JSON is not our event envelope.

    Within a batch, messages with the same key run one after the other, in offset order;
    different keys run concurrently (up to `concurrency`): ordering is promised per key.
    The partitions of one fetch run side by side and share the `concurrency` slots: handled
    in turn, each partition's few requests waited for the previous partition's, and that
    bounded the entry point's throughput (docs/performance.md, 2026-12-04)."""

    concurrency: int = 8
    _slots: asyncio.Semaphore | None = None

    async def _process_batches(self, batches: Mapping[TopicPartition, list[Any]]) -> None:
        async def partition(tp: TopicPartition, messages: list[Any]) -> None:
            await self._process_partition_batch(messages)
            self._uncommitted[tp] = messages[-1].offset + 1

        # A failure (only a stop or a crash gets here: handlers' errors are retried or
        # dead-lettered) cancels the other partitions; their offsets stay uncommitted.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(partition(tp, m)) for tp, m in batches.items()]
        if any(task.cancelled() for task in tasks):
            # A TaskGroup lets a child end cancelled on its own; handled in turn, that would
            # have ended the loop. It still does, so no later offset of that partition is
            # committed past the unfinished message.
            raise asyncio.CancelledError

    async def _process_partition_batch(self, messages: list[Any]) -> None:
        by_key: dict[bytes, list[Any]] = {}
        unkeyed: list[list[Any]] = []
        for message in messages:
            if message.key is None:
                unkeyed.append([message])
            else:
                by_key.setdefault(message.key, []).append(message)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots

        async def in_order(group: list[Any]) -> None:
            async with slots:
                for message in group:
                    if not tracing.active:
                        await self._retry_until_handled(message, cast(Any, message))
                        continue
                    # The merchant's own traceparent header, when sent, is the parent.
                    span = tracing.start_span(
                        f"process {message.topic}",
                        parent=tracing.traceparent_of(message.headers),
                        attributes={"messaging.destination.name": message.topic},
                    )
                    with tracing.activate(span):
                        error = await self._retry_until_handled(message, cast(Any, message))
                    tracing.end_span(span, error)

        await asyncio.gather(*(in_order(g) for g in [*by_key.values(), *unkeyed]))

    async def _dead_letter(self, message: Any, error: str, attempts: int) -> None:
        await super()._dead_letter(without_card_data(message), error, attempts)


# --- the handler ----------------------------------------------------------------------------


def delivery_id(headers: RequestHeaders, value: bytes) -> uuid.UUID:
    """Names one signed message: a redelivery has the same, a merchant's resend does not."""
    digest = hashlib.sha256(value).hexdigest()
    name = f"{headers.merchant_id}\x00{headers.request_id}\x00{headers.timestamp}\x00{digest}"
    return uuid.uuid5(_DELIVERY_NAMESPACE, name)


def arrival_s(message: Any) -> float:
    """When the broker took the message (log-append time); our clock when the topic stamps
    producer time instead, so a backlog after an outage may then be refused as stale."""
    if message.timestamp_type == LOG_APPEND_TIME and message.timestamp:
        return float(message.timestamp) / 1000
    return time.time()


@dataclasses.dataclass(frozen=True)
class RequestHandler:
    deps: KafkaRequestDeps
    secrets: SigningSecretStore
    tolerance_s: float
    registry: Mapping[str, Preparer] = dataclasses.field(default_factory=lambda: REGISTRY)

    async def authenticate(self, message: Any) -> RequestHeaders:
        headers = read_headers(message.headers or [])
        check_fresh(headers.timestamp, arrival_s(message), self.tolerance_s)
        live = await self.secrets.live_secrets(headers.merchant_id)
        if not live:
            raise Unauthenticated("no live signing secret for this merchant id")
        if not signature_matches(live, headers, message.value or b""):
            raise Unauthenticated("signature does not match")
        return headers

    async def __call__(self, topic: str, message: Any) -> None:
        try:
            headers = await self.authenticate(message)
        except Unauthenticated as exc:
            raise NonRetryable(f"unauthenticated: {exc}") from None
        token = request_id_var.set(headers.request_id)
        try:
            value = message.value or b""
            await self.answer(headers, delivery_id(headers, value), value)
        finally:
            request_id_var.reset(token)

    async def answer(
        self, headers: RequestHeaders, delivery: uuid.UUID, value: bytes
    ) -> Reply | None:
        """Parse and validate here; the service layer runs it and replies (or replies with
        the refusal)."""
        merchant_id, request_id = headers.merchant_id, headers.request_id
        operation: str | None = None
        try:
            request = parse_request(value)
            operation = request.operation
            prepared = self._preparer(request.operation)(
                self.deps, merchant_id, request_id, request
            )
        except Refused as exc:
            return await request_answers.refuse(
                self.deps, merchant_id, request_id, delivery, operation, exc.problem
            )
        return await request_answers.answer(self.deps, merchant_id, request_id, delivery, prepared)

    def _preparer(self, operation: str) -> Preparer:
        preparer = self.registry.get(operation)
        if preparer is None:
            raise Refused(
                ProblemDetails(
                    501,
                    "operation-not-supported",
                    "Operation not supported on Kafka",
                    f"{operation} is not served on Kafka; use the HTTP API",
                )
            )
        return preparer


# --- wiring ---------------------------------------------------------------------------------


def signing_keyring(settings: KafkaEntrySettings) -> KeyWrapper:
    """The configured keyring (a broken one stops start-up); in development, when the
    state folder cannot hold the generated one, an ephemeral keyring with a warning."""
    try:
        return LiveKeyring(
            provider_from_spec(KEYRING_ID, settings.signing_keyring_spec), KEYRING_ID
        )
    except (OSError, KeyringError) as exc:
        if settings.signing_keyring is not None:
            raise
        log.warning(
            "development signing keyring is ephemeral (%s: %s); secrets created now will not "
            "verify after a restart; set INTAKE_SIGNING_KEYRING or SANALPOS_STATE_DIR",
            settings.signing_keyring_spec,
            type(exc).__name__,
        )
        return Keyring.generate(KEYRING_ID)


async def configure_request_topic(
    bootstrap_servers: str,
    topic: str,
    retention_h: int | None = None,
    spec: TopicSpec | None = None,
) -> None:
    """Have the broker stamp each request with its arrival time (LogAppendTime), so freshness
    is judged against arrival, not against when intake got round to it; and keep requests
    only `retention_h` hours: a card number a merchant sent by mistake does not stay for the
    broker's default week. AlterConfigs replaces the topic's whole configuration, so the
    settings it was created with (`spec`: min.insync.replicas, size limit) are set again."""
    configs = {**(spec or TopicSpec()).configs(), "message.timestamp.type": "LogAppendTime"}
    if retention_h is not None:
        configs["retention.ms"] = str(retention_h * 3_600_000)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="sanalpos-admin", **kafka_client_kwargs()
    )
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    except Exception as exc:  # e.g. no ALTER_CONFIGS permission: fall back to our clock
        log.warning("could not configure %s: %s", topic, type(exc).__name__)
    finally:
        await admin.close()


async def _purge_forever(store: SigningSecretStore, hours: int, every_s: float = 3600.0) -> None:
    while True:
        await purge_answers(store.pool, hours)
        await asyncio.sleep(every_s)


async def start_kafka_requests(
    platform: Platform,
    app: FastAPI,
    protection: CardProtection,
    client_encryption: ClientEncryption,
    settings: KafkaEntrySettings | None = None,
) -> RequestConsumerLoop | None:
    """Consumer of merchant requests (own group) plus the signing-secret store the admin API
    uses (`app.state.signing_secrets`); None when the entry point is disabled."""
    settings = settings or KafkaEntrySettings()
    if not settings.enabled:
        app.state.signing_secrets = None
        log.warning("kafka entry point disabled: set INTAKE_SIGNING_KEYRING to serve it")
        return None
    store = SigningSecretStore(platform.pool, signing_keyring(settings))
    app.state.signing_secrets = store
    bootstrap_servers = platform.settings.kafka_bootstrap_servers
    spec = platform.settings.topic_spec
    await ensure_topics(
        bootstrap_servers,
        [topics.MERCHANT_REQUESTS, topics.MERCHANT_REPLIES, DEAD_LETTER_TOPIC],
        spec=spec,
    )
    await configure_request_topic(
        bootstrap_servers, topics.MERCHANT_REQUESTS, settings.request_topic_retention_h, spec
    )
    deps = KafkaRequestDeps(platform.pool, protection, client_encryption, CONSUMER)
    loop = RequestConsumerLoop(
        name=CONSUMER,
        group_id=settings.requests_consumer_group,
        topics=(topics.MERCHANT_REQUESTS,),
        bootstrap_servers=bootstrap_servers,
        handler=RequestHandler(deps, store, settings.request_timestamp_tolerance_s),
        dead_letter_producer=platform.producer,
        metrics=platform.metrics,
    )
    platform.runtime.add_loop(f"consumer:{CONSUMER}", loop.run, loop.stop)
    platform.health.add(f"consumer:{CONSUMER}", loop.readiness)
    platform.runtime.add_forever(
        "kafka-request-answers-purge",
        lambda: _purge_forever(store, settings.request_answer_retention_h),
    )
    log.info("kafka entry point on %s (group %s)", topics.MERCHANT_REQUESTS, CONSUMER)
    return loop
