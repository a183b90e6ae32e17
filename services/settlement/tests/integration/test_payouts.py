"""The payout job in the settlement service, in-process on real Kafka and PostgreSQL: payout
accounts, captures and refunds arrive on Kafka; an operator closes batches, runs the payout
job for the value date and records the bank's answer over HTTP. Checked: the payouts and their
lines, the pain.001 file, the netting rule, the holds, the ledger, and the events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, SecretStr

from sanalpos_common import topics
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.runtime import serve
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.events import (
    MerchantUpdated,
    PaymentCaptured,
    PaymentRefunded,
    PayoutAccountUpdated,
)
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import free_port, start_group_at_end, wait_for
from settlement.bootstrap import bootstrap
from settlement.config import SettlementSettings
from settlement.domain.ledger import merchant_payable
from settlement.domain.payout_file import PAIN_001_NS
from settlement.domain.payouts import PAYOUTS_CLEARED, PAYOUTS_IN_TRANSIT
from settlement.service_layer.handlers import SettlementHandlers

from .conftest import KAFKA

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
NS = {"p": PAIN_001_NS}
IBAN = "TR950006100000000000039595"
CONSUMED_TOPICS = SettlementHandlers(None).table().topics  # type: ignore[arg-type]


@dataclass
class Service:
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    folder: Path

    async def publish(self, topic: str, payload: BaseModel, key: str) -> None:
        made = new_envelope(topic, payload, correlation_id=uuid.uuid4(), producer="tests")
        await self.producer.send_and_wait(topic, value=encode(made), key=key.encode())

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = await self.http.post(path, json=body, headers=ADMIN, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
async def service(
    schema_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    await ensure_topics(KAFKA, [*topics.ALL_TOPICS, topics.dead_letter_topic("settlement")])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    group = f"settlement-payouts-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(KAFKA, group, CONSUMED_TOPICS, producer)
    folder = tmp_path_factory.mktemp("payouts")
    settings = SettlementSettings(
        database_url=SecretStr(schema_dsn),
        http_port=free_port(),
        consumer_group=group,
        batch_close_interval_s=3600,
        payout_interval_s=3600,
        payout_dir=folder,
    )
    platform = await bootstrap(settings)
    server = asyncio.create_task(serve(platform.runtime))
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.http_port}", timeout=10
    ) as http:

        async def ready() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/readyz")).status_code == 200
            return False

        try:
            await wait_for(ready, timeout=60, interval=0.2)
            yield Service(platform.pool, http, producer, folder)
        finally:
            await producer.stop()
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server


async def new_merchant(service: Service, *, with_account: bool = True) -> str:
    merchant_id = f"mer_{uuid.uuid4().hex[:10]}"
    profile = MerchantUpdated(
        merchant_id=merchant_id,
        name="Payout Shop",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="volume",
        version=1,
        payout_delay_days=1,
    )
    await service.publish(topics.MERCHANT_UPDATED, profile, merchant_id)
    if with_account:
        account = PayoutAccountUpdated(
            account_id=uuid.uuid4(),
            merchant_id=merchant_id,
            iban=IBAN,
            holder_name="Payout Shop Ltd",
            currency="TRY",
            is_default=True,
            version=1,
        )
        await service.publish(topics.PAYOUT_ACCOUNT_UPDATED, account, merchant_id)
        await wait_for(
            lambda: service.pool.fetchval(
                "SELECT 1 FROM payout_accounts WHERE merchant_id = $1", merchant_id
            ),
            timeout=30,
        )
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1", merchant_id
        ),
        timeout=30,
    )
    return merchant_id


async def capture(service: Service, merchant_id: str, amount: int) -> uuid.UUID:
    payment_id = uuid.uuid4()
    event = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        installments=1,
        auth_code="654321",
    )
    await service.publish(topics.PAYMENT_CAPTURED, event, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM settlement_payments WHERE payment_id = $1", payment_id
        ),
        timeout=30,
    )
    return payment_id


async def refund(service: Service, merchant_id: str, payment_id: uuid.UUID, amount: int) -> None:
    event = PaymentRefunded(
        refund_id=uuid.uuid4(),
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        reason="returned goods",
    )
    await service.publish(topics.PAYMENT_REFUNDED, event, str(payment_id))
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM ledger_transactions WHERE payment_id = $1 AND kind = 'refund'",
            payment_id,
        ),
        timeout=30,
    )


async def close(service: Service, merchant_id: str) -> dict[str, Any]:
    [batch] = (await service.post("/admin/batches/close", {"merchant_id": merchant_id}))["closed"]
    return dict(batch)


async def run(service: Service, merchant_id: str, day: str) -> dict[str, Any]:
    result: dict[str, Any] = await service.post(
        "/admin/payouts/run", {"date": day, "merchant_id": merchant_id}
    )
    return result


async def balance(service: Service, account: str) -> int:
    """Credits less debits of an account (TRY)."""
    value = await service.pool.fetchval(
        "SELECT coalesce(sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END), 0) "
        "FROM ledger_entries WHERE account = $1 AND currency = 'TRY'",
        account,
    )
    return int(value)


async def assert_ledger_balanced(service: Service) -> None:
    unbalanced = await service.pool.fetch(
        "SELECT transaction_id FROM ledger_entries GROUP BY transaction_id, currency "
        "HAVING sum(CASE WHEN direction = 'debit' THEN amount ELSE -amount END) <> 0"
    )
    assert unbalanced == []


async def payout_events(service: Service, payout_id: str) -> list[dict[str, Any]]:
    rows = await service.pool.fetch(
        "SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYOUT_UPDATED
    )
    payloads = [json.loads(r["payload"])["payload"] for r in rows]
    return [p for p in payloads if p["payout_id"] == payout_id]


async def test_a_batch_is_paid_out_on_its_value_date_returned_and_paid_again(
    service: Service,
) -> None:
    merchant_id = await new_merchant(service)
    await capture(service, merchant_id, 10_000)
    batch = await close(service, merchant_id)
    value_date = date.fromisoformat(batch["value_date"])
    net = batch["totals"]["net_amount"]
    payable = merchant_payable(merchant_id)

    early = await run(service, merchant_id, (value_date - timedelta(days=1)).isoformat())
    assert early["payouts"] == [] and early["holds"] == []

    result = await run(service, merchant_id, value_date.isoformat())
    [payout] = result["payouts"]
    assert (payout["amount"], payout["status"], payout["iban"]) == (net, "in_transit", IBAN)
    assert [(line["batch_id"], line["amount"]) for line in payout["lines"]] == [(batch["id"], net)]
    assert await balance(service, payable) == 0
    assert await balance(service, PAYOUTS_IN_TRANSIT) >= net

    xml_path = Path(result["file"]["xml_path"])
    assert xml_path.parent == service.folder and xml_path.exists()
    root = ET.fromstring(xml_path.read_bytes())  # noqa: S314 - our own file
    [tx] = [
        tx
        for tx in root.iter(f"{{{PAIN_001_NS}}}CdtTrfTxInf")
        if tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS) == uuid.UUID(payout["id"]).hex
    ]
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN
    assert tx.findtext("p:Amt/p:InstdAmt", namespaces=NS) == f"{net // 100}.{net % 100:02d}"
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None and header.findtext("p:NbOfTxs", namespaces=NS) == str(
        result["file"]["payout_count"]
    )
    assert IBAN in Path(result["file"]["csv_path"]).read_text()
    files = (await service.http.get("/admin/payout-files", headers=ADMIN)).json()
    assert result["file"]["id"] in [f["id"] for f in files]

    again = await run(service, merchant_id, value_date.isoformat())
    assert (again["payouts"], again["file"]) == ([], None), "a second run creates nothing"

    returned = await service.post(
        f"/admin/payouts/{payout['id']}/returned", {"reason": "account closed"}
    )
    assert (returned["status"], returned["reason"]) == ("returned", "account closed")
    assert await balance(service, payable) == net, "back in the merchant's balance"
    repeat = await service.http.post(f"/admin/payouts/{payout['id']}/paid", headers=ADMIN)
    assert repeat.status_code == 409

    second = await run(service, merchant_id, value_date.isoformat())
    [repaid] = second["payouts"]
    assert repaid["id"] != payout["id"] and repaid["amount"] == net
    cleared_before = await balance(service, PAYOUTS_CLEARED)
    returns_file = f"end_to_end_id,status,reason\r\n{uuid.UUID(repaid['id']).hex},paid,\r\n"
    imported = await service.http.post(
        "/admin/payouts/bank-returns",
        content=returns_file,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert [p["status"] for p in imported.json()["updated"]] == ["paid"]
    assert await balance(service, PAYOUTS_CLEARED) == cleared_before + net
    assert await balance(service, payable) == 0

    events = await payout_events(service, payout["id"])
    assert [(e["status"], e["version"]) for e in events] == [("in_transit", 1), ("returned", 2)]
    assert events[0]["iban_last4"] == IBAN[-4:] and "iban" not in events[0]
    assert [e["status"] for e in await payout_events(service, repaid["id"])] == [
        "in_transit",
        "paid",
    ]
    await assert_ledger_balanced(service)


async def test_a_refund_on_an_empty_balance_nets_against_the_next_payout(
    service: Service,
) -> None:
    merchant_id = await new_merchant(service)
    sale = await capture(service, merchant_id, 10_000)
    first = await close(service, merchant_id)
    day = first["value_date"]
    [paid] = (await run(service, merchant_id, day))["payouts"]
    await service.post(f"/admin/payouts/{paid['id']}/paid")

    await refund(service, merchant_id, sale, 6_000)
    negative = await close(service, merchant_id)
    assert negative["totals"]["net_amount"] == -6_000
    held = await run(service, merchant_id, negative["value_date"])
    assert held["payouts"] == []
    assert held["holds"] == [
        {
            "merchant_id": merchant_id,
            "currency": "TRY",
            "reason": "balance_not_positive",
            "amount": -6_000,
            "batch_count": 1,
            "run_date": None,
        }
    ]
    listed = await service.http.get(
        "/admin/payout-holds", params={"merchant_id": merchant_id}, headers=ADMIN
    )
    assert [h["reason"] for h in listed.json()] == ["balance_not_positive"]
    assert await balance(service, merchant_payable(merchant_id)) == -6_000

    await capture(service, merchant_id, 20_000)
    positive = await close(service, merchant_id)
    [netted] = (await run(service, merchant_id, positive["value_date"]))["payouts"]
    assert netted["amount"] == positive["totals"]["net_amount"] - 6_000
    assert sorted(line["amount"] for line in netted["lines"]) == sorted(
        [-6_000, positive["totals"]["net_amount"]]
    )
    assert await balance(service, merchant_payable(merchant_id)) == 0
    await assert_ledger_balanced(service)


async def test_without_a_payout_account_nothing_is_paid_and_the_reason_is_kept(
    service: Service,
) -> None:
    merchant_id = await new_merchant(service, with_account=False)
    await capture(service, merchant_id, 10_000)
    batch = await close(service, merchant_id)
    result = await run(service, merchant_id, batch["value_date"])
    assert result["payouts"] == []
    assert [(h["reason"], h["amount"]) for h in result["holds"]] == [
        ("no_payout_account", batch["totals"]["net_amount"])
    ]
    assert await balance(service, merchant_payable(merchant_id)) == batch["totals"]["net_amount"]
    unpaid = await service.pool.fetchval(
        "SELECT payout_id FROM settlement_batches WHERE id = $1", uuid.UUID(batch["id"])
    )
    assert unpaid is None
    missing = await service.http.post(f"/admin/payouts/{uuid.uuid4()}/paid", headers=ADMIN)
    assert missing.status_code == 404


async def test_two_runs_racing_for_a_date_make_one_payout_in_one_file(service: Service) -> None:
    merchant_id = await new_merchant(service)
    await capture(service, merchant_id, 10_000)
    batch = await close(service, merchant_id)
    first, second = await asyncio.gather(
        run(service, merchant_id, batch["value_date"]),
        run(service, merchant_id, batch["value_date"]),
    )
    made = first["payouts"] + second["payouts"]
    assert len(made) == 1 and made[0]["amount"] == batch["totals"]["net_amount"]
    filed = await service.pool.fetch(
        "SELECT file_id FROM payouts WHERE merchant_id = $1", merchant_id
    )
    assert len(filed) == 1 and filed[0]["file_id"] is not None
    await assert_ledger_balanced(service)
