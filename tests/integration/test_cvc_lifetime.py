"""The security code outlives neither its authorization nor its key: a real payment's CVC
ciphertext, taken from Kafka, opens with the live CVC keyring before, and with nothing once the
keyring has been rotated past the TTL (cryptographic erasure, PCI DSS 3.3.1). No service keeps
the ciphertext in a table of its own.

The services started by conftest share the development CVC keyring file
`$SANALPOS_STATE_DIR/keys/cvc.json` (the settings default; intake rotates it, authorization
reloads it). The rotation past the TTL is done on a byte-for-byte copy of that file, so the
running system (and the tests after this one) keep their keys; `rotate_cvc_key_file` does the
same thing to the live file when its time comes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from authorization.config import AuthorizationSettings
from intake.config import IntakeSettings
from sanalpos_common import topics
from sanalpos_common.crypto import KeyVersionUnavailable, LiveKeyring, decrypt, key_version
from sanalpos_common.crypto.aad import cvc_aad
from sanalpos_common.crypto.cvc import (
    DEFAULT_TTL,
    CvcExpiredError,
    decrypt_cvc,
    rotate_cvc_key_file,
    version_start,
)
from sanalpos_common.crypto.providers import provider_from_spec, read_keyring_file
from tests.integration.canary import fresh_number
from tests.integration.support import ROOT, eventually

CVC = "737"
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
# Published messages the transactional outbox keeps for its retention (24 h, then purged):
# copies of what went to Kafka, under the same key and so erased with it (see docs/security.md).
# Fraud's own tests run extra workers in schemas of their own (`fraud_test_*`), with outboxes.
OUTBOX_HOLDERS = {"intake", "fraud"}


def shared_cvc_file() -> Path:
    state = Path(os.environ.get("SANALPOS_STATE_DIR", str(ROOT / ".state")))
    return state / "keys" / "cvc.json"


async def paid(intake: httpx.AsyncClient, api_key: str, authorization: asyncpg.Pool) -> str:
    body = {
        "amount": 4_200,
        "currency": "TRY",
        "capture": True,
        "installments": 1,
        "order_id": f"cvc-life-{uuid.uuid4().hex[:8]}",
        # a fresh number: no fraud velocity from earlier runs, an ordinary approving account
        "card": {"number": fresh_number("4"), "exp_month": 12, "exp_year": 2031, "cvc": CVC},
    }
    headers = {"Authorization": f"Bearer {api_key}"}
    response = await intake.post("/v1/payments", json=body, headers=headers)
    assert response.status_code == 202, response.text
    payment_id: str = response.json()["id"]

    async def authorized() -> str | None:
        # authorization's own record: it decrypted the security code with the shared keyring
        status: str | None = await authorization.fetchval(
            "SELECT status FROM authorizations WHERE payment_id = $1", uuid.UUID(payment_id)
        )
        return status

    assert await eventually(authorized, timeout_s=90) in {"authorized", "captured"}
    return payment_id


async def initiated_from_kafka(bootstrap: str, payment_id: str) -> dict[str, Any]:
    """The payment.initiated message as it sits in the topic (every partition, from the start)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topics.PAYMENT_INITIATED, p)
            for p in sorted(cluster.partitions_for_topic(topics.PAYMENT_INITIATED) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    if message.key == payment_id.encode():
                        found: dict[str, Any] = json.loads(message.value or b"")
                        return found
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    raise AssertionError(f"payment.initiated for {payment_id} not found in Kafka")


async def tables_holding(pool: asyncpg.Pool, needle: str) -> set[tuple[str, str]]:
    """(schema, table) of every row with `needle` in any column (bytea included)."""
    columns = await pool.fetch(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND table_name IN (SELECT table_name FROM information_schema.tables "
        "                   WHERE table_type = 'BASE TABLE')"
    )
    found: set[tuple[str, str]] = set()
    for c in columns:
        table = f'"{c["table_schema"]}"."{c["table_name"]}"'
        column = f'"{c["column_name"]}"'
        if c["data_type"] == "bytea":
            where = f"position(convert_to($1, 'UTF8') in {column}) > 0"
        else:
            where = f"position($1 in {column}::text) > 0"
        if await pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})", needle):  # noqa: S608
            found.add((c["table_schema"], c["table_name"]))
    return found


async def test_cvc_ciphertext_is_unreadable_after_its_ttl_and_kept_by_no_service(
    intake: httpx.AsyncClient,
    merchant: dict[str, Any],
    endpoints: dict[str, str],
    databases: dict[str, asyncpg.Pool],
    tmp_path: Path,
) -> None:
    # The running services use the shared development file (their settings default).
    path = shared_cvc_file()
    for settings in (IntakeSettings(), AuthorizationSettings()):
        assert settings.cvc_keyring is not None
        assert settings.cvc_keyring.get_secret_value() == f"file:{path}"

    payment_id = await paid(intake, merchant["api_key"], databases["authorization"])
    event = await initiated_from_kafka(endpoints["KAFKA_BOOTSTRAP_SERVERS"], payment_id)
    payload = event["payload"]
    token: str = payload["card"]["cvc_ciphertext"]
    aad = cvc_aad(payload["merchant_id"], uuid.UUID(payment_id))
    # Three digits turn up by chance inside ciphertexts and ids; the code must not stand alone.
    assert not re.search(rf"(?<![0-9A-Za-z]){CVC}(?![0-9A-Za-z])", json.dumps(event))
    _, version = key_version(token)

    # Before: the live keyring (as the services load it) opens it.
    now = datetime.now(UTC)
    live = LiveKeyring(provider_from_spec("cvc", f"file:{path}"), "cvc")
    assert decrypt_cvc(live, token, aad, now=now) == CVC

    # After: the key file rotated past the TTL of the ciphertext's version.
    rotated_path = tmp_path / "cvc.json"
    shutil.copy2(path, rotated_path)
    after_ttl = version_start(version) + DEFAULT_TTL + timedelta(seconds=1)
    ring = rotate_cvc_key_file(rotated_path, now=after_ttl)
    assert version not in ring.keys and ring.active_version > version
    assert read_keyring_file(rotated_path) == ring  # what a reload of the Secret would load
    reloaded = LiveKeyring(provider_from_spec("cvc", f"file:{rotated_path}"), "cvc")
    with pytest.raises(CvcExpiredError, match="security code expired"):
        decrypt_cvc(reloaded, token, aad, now=after_ttl)
    with pytest.raises(CvcExpiredError):  # even a reader whose clock lags: the key is gone
        decrypt_cvc(reloaded, token, aad, now=now)
    with pytest.raises(KeyVersionUnavailable):  # and without the clock check at all
        decrypt(reloaded, token, aad)
    # The live file still holds the version (the TTL has not passed in real time).
    assert decrypt_cvc(live, token, aad, now=datetime.now(UTC)) == CVC

    # No service keeps the ciphertext in a table of its own.
    holders = {
        (service, schema, table)
        for service in SERVICES
        for schema, table in await tables_holding(databases[service], token)
    }
    stored = {h for h in holders if h[0] not in OUTBOX_HOLDERS or h[2] != "outbox"}
    assert not stored, f"CVC ciphertext stored in {sorted(stored)}"
    assert ("intake", "public", "outbox") in holders  # the scan does see bytea payloads
    for service in OUTBOX_HOLDERS:  # the services' outbox copies: sent, awaiting the purge
        unpublished = await databases[service].fetchval(
            "SELECT count(*) FROM public.outbox WHERE published_at IS NULL "
            "AND position(convert_to($1, 'UTF8') in payload) > 0",
            token,
        )
        assert unpublished == 0
