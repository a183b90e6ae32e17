"""Following one payment: its trace across the five running services, and the ops commands
`sanalpos trace` and `sanalpos status` against the same stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from sanalpos_common import topics, tracing
from tests.integration import support
from tests.integration.support import SERVICES, ServiceProcess, WebhookReceiver, eventually
from tests.integration.test_end_to_end import approving_card, auth, payment_body

TRACE_FILE = support.trace_file_of(support.run_log_dir())


def spans_of_payment(payment_id: str) -> list[dict[str, Any]]:
    spans = tracing.read_trace_file(TRACE_FILE)
    tagged = [s for s in spans if s["attributes"].get(tracing.PAYMENT_ID) == payment_id]
    trace_ids = {s["trace_id"] for s in tagged}
    return [s for s in spans if s["trace_id"] in trace_ids]


async def traced_sale(
    intake: httpx.AsyncClient, merchant: dict[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    """A real sale, and its spans once every service's handler span (and the webhook POST)
    has reached the trace file."""
    response = await intake.post(
        "/v1/payments", json=payment_body(approving_card()), headers=auth(merchant["api_key"])
    )
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]

    async def complete() -> list[dict[str, Any]] | None:
        spans = spans_of_payment(payment_id)
        services = {s["service"] for s in spans}
        webhook_sent = any(s["name"] == "webhook POST" for s in spans)
        settled_in_ledger = any(
            s["service"] == "settlement" and s["name"] == f"process {topics.PAYMENT_CAPTURED}"
            for s in spans
        )
        return spans if services >= set(SERVICES) and webhook_sent and settled_in_ledger else None

    return payment_id, await eventually(complete, timeout_s=45, interval_s=0.5)


def only(spans: list[dict[str, Any]], service: str, name: str) -> dict[str, Any]:
    found = [s for s in spans if s["service"] == service and s["name"] == name]
    assert len(found) == 1, (service, name, [(s["service"], s["name"]) for s in spans])
    return found[0]


async def test_one_payment_is_one_trace_from_intake_to_the_webhook(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    webhooks: WebhookReceiver,
) -> None:
    payment_id, spans = await traced_sale(intake, merchant)

    assert len({s["trace_id"] for s in spans}) == 1, "the payment's spans are in one trace"
    by_id = {s["span_id"]: s for s in spans}

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        assert span["parent_span_id"] in by_id, f"{span['name']} has no parent in the trace"
        return by_id[span["parent_span_id"]]

    root = only(spans, "intake", "POST /v1/payments")
    assert root["parent_span_id"] is None and root["kind"] == "SERVER"
    fraud = only(spans, "fraud", f"process {topics.PAYMENT_INITIATED}")
    assert parent(fraud) is root
    authorization = only(spans, "authorization", f"process {topics.PAYMENT_SCORED}")
    assert parent(authorization) is fraud
    settlement = only(spans, "settlement", f"process {topics.PAYMENT_CAPTURED}")
    assert parent(settlement) is authorization
    # notification also keeps payment.initiated (for the shopper's emails): intake's child.
    kept = only(spans, "notification", f"process {topics.PAYMENT_INITIATED}")
    assert parent(kept) is root
    notified = [
        s
        for s in spans
        if s["service"] == "notification" and s["kind"] == "CONSUMER" and s is not kept
    ]
    assert notified and all(parent(s) is authorization for s in notified)
    posts = [s for s in spans if s["name"] == "webhook POST"]
    assert posts and all(parent(p) in notified for p in posts)
    assert all(s["kind"] == "CONSUMER" for s in (fraud, authorization, settlement))
    for span in spans:
        assert span["start_ns"] <= span["end_ns"]

    # The webhook request itself carried the POST span's context.
    async def hooks_with_traceparent() -> list[str] | None:
        found = [h.headers.get("traceparent") for h, _ in webhooks.for_payment(payment_id)]
        return [t for t in found if t] or None

    sent = await eventually(hooks_with_traceparent, timeout_s=20)
    post_ids = {p["span_id"] for p in posts}
    for value in sent:
        _, trace_id, span_id, _ = value.split("-")
        assert trace_id == root["trace_id"]
        assert span_id in post_ids


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sanalpos_common.cli", *args],
        env={**os.environ, "SANALPOS_TRACE_FILE": str(TRACE_FILE), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def rows(output: str) -> list[list[str]]:
    """The cells of each row (and header) of a rich table in the terminal output."""
    found = []
    for line in output.splitlines():
        line = line.strip().replace("┃", "│")
        if line.startswith("│"):
            found.append([cell.strip() for cell in line.strip("│").split("│")])
    return found


async def test_sanalpos_trace_prints_every_services_records_and_the_trace(
    intake: httpx.AsyncClient,
    services: dict[str, ServiceProcess],
    merchant: dict[str, Any],
    webhooks: WebhookReceiver,
) -> None:
    payment_id, spans = await traced_sale(intake, merchant)
    await eventually(lambda: _async(webhooks.for_payment(payment_id) or None), timeout_s=20)
    await asyncio.sleep(1.0)  # the delivery's attempt row follows the POST

    result = await asyncio.to_thread(cli, "trace", payment_id)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    table = rows(out)
    by_service: dict[str, set[str]] = {}
    for cells in table:
        if len(cells) >= 4:
            by_service.setdefault(cells[2], set()).add(cells[3])
    # Timeline rows from each service's own database.
    assert "payment accepted" in by_service["intake"]
    assert f"emitted {topics.PAYMENT_INITIATED}" in by_service["intake"]
    assert f"consumed {topics.PAYMENT_INITIATED}" in by_service["fraud"]
    assert "scored: approve" in by_service["fraud"]
    assert "issuer answered" in by_service["authorization"]
    assert f"emitted {topics.PAYMENT_CAPTURED}" in by_service["authorization"]
    assert any(w.startswith("ledger: ") for w in by_service["settlement"])
    assert any(w.startswith("webhook attempt 1: ") for w in by_service["notification"])
    # Hop latency of a consumed message: a number of ms.
    consumed = [c for c in table if len(c) >= 5 and c[3] == f"consumed {topics.PAYMENT_SCORED}"]
    assert consumed and consumed[0][4].isdigit()
    # The trace: its id and every span with its service.
    (trace_id,) = {s["trace_id"] for s in spans}
    assert f"Trace {trace_id}" in out
    span_rows = [
        c for c in table if len(c) == 6 and c[0].strip().startswith(("POST", "process", "webhook"))
    ]
    assert {c[1] for c in span_rows} == set(SERVICES)
    assert any(c[0] == "POST /v1/payments" and c[4] == "" for c in span_rows)  # root: no hop
    assert any(c[0].strip() == "webhook POST" for c in span_rows)


async def test_sanalpos_trace_of_an_unknown_payment_says_so() -> None:
    result = await asyncio.to_thread(cli, "trace", str(uuid.uuid4()))
    assert result.returncode == 1
    assert "no spans of this payment" in result.stdout


def status_env(services: dict[str, ServiceProcess]) -> dict[str, str]:
    return {f"{name.upper()}_HTTP_PORT": str(s.port) for name, s in services.items()}


def status_rows(output: str) -> dict[str, list[str]]:
    return {cells[0]: cells for cells in rows(output) if cells and cells[0] in SERVICES}


async def test_sanalpos_status_shows_readiness_and_counts_a_new_dead_letter(
    services: dict[str, ServiceProcess], endpoints: dict[str, str]
) -> None:
    before = await asyncio.to_thread(cli, "status", env=status_env(services))
    assert before.returncode == 0, before.stdout + before.stderr
    header = next(r for r in rows(before.stdout) if r and r[0] == "service")
    assert header[:5] == ["service", "ready", "consumer lag", "outbox backlog", "dead letters"]
    table = status_rows(before.stdout)
    assert set(table) == set(SERVICES)
    assert all(r[1] == "ready" for r in table.values())
    assert all(r[2].isdigit() and r[3].isdigit() for r in table.values())

    # merchant.updated has two consumers, settlement and notification (the merchant's name
    # for shopper emails): an undecodable record there is one more dead letter of each.
    producer = AIOKafkaProducer(bootstrap_servers=endpoints["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.MERCHANT_UPDATED, b"not an envelope", key=b"mer_status_test"
        )
    finally:
        await producer.stop()

    async def one_more() -> dict[str, list[str]] | None:
        after = status_rows(
            (await asyncio.to_thread(cli, "status", env=status_env(services))).stdout
        )
        grew = all(int(after[s][4]) >= int(table[s][4]) + 1 for s in ("settlement", "notification"))
        return after if grew else None

    after = await eventually(one_more, timeout_s=30, interval_s=1.0)
    for service in set(SERVICES) - {"settlement", "notification"}:
        assert after[service][4] == table[service][4]


async def test_sanalpos_status_reports_a_service_that_does_not_answer(
    services: dict[str, ServiceProcess],
) -> None:
    env = {**status_env(services), "NOTIFICATION_HTTP_PORT": "1"}  # nothing listens there
    result = await asyncio.to_thread(cli, "status", env=env)
    assert result.returncode == 1
    table = status_rows(result.stdout)
    assert table["notification"][1] == "down"
    assert "not answering" in table["notification"][5]
    assert table["intake"][1] == "ready"


async def _async(value: Any) -> Any:
    return value
