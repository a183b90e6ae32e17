"""What a chaos run checks once the load is over: consumer lag, the invariants, replay and
poison handling. Every check returns a `Result` with its counts; nothing raises on a broken
invariant (the report lists them all, then the exit code says whether any broke)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata

from sanalpos_common import topics
from sanalpos_common.dlq import SERVICE_CONSUMERS
from sanalpos_common.money import currency_exponent

POISON_PREFIX = "chaos-poison-"
HARNESS_GROUPS = ("chaos-", "sanalpos-dlq-handled.")
FINAL_AUTHORIZATION = {
    "declined",
    "voided",
    "expired",
    "refunded",
    "partially_refunded",
    "captured",
}
ALL_DLQ = tuple(
    topics.dead_letter_topic(c) for consumers in SERVICE_CONSUMERS.values() for c in consumers
)


@dataclass
class Result:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"  [{'ok' if self.ok else 'BROKEN'}] {self.name}: {self.detail}"


# ------------------------------------------------------------------------- Kafka progress


async def consumer_lag(bootstrap: str) -> dict[str, int]:
    """Lag per service consumer group (committed offset to the end of each partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-lag")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups()]
        lag: dict[str, int] = {}
        for group in groups:
            if group.startswith(HARNESS_GROUPS):
                continue
            committed = await admin.list_consumer_group_offsets(group)
            partitions = [tp for tp, meta in committed.items() if meta.offset >= 0]
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            lag[group] = sum(max(0, ends[tp] - committed[tp].offset) for tp in partitions)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for_zero_lag(
    bootstrap: str, pools: dict[str, asyncpg.Pool], timeout_s: float
) -> tuple[bool, float, dict[str, int], dict[str, int]]:
    """Until every group's lag and every outbox backlog is 0 twice in a row."""
    started = time.monotonic()
    calm = 0
    lag: dict[str, int] = {}
    outboxes: dict[str, int] = {}
    while time.monotonic() - started < timeout_s:
        try:
            lag = await consumer_lag(bootstrap)
            outboxes = await outbox_backlog(pools)
        except Exception:
            calm = 0
            await asyncio.sleep(2)
            continue
        calm = calm + 1 if not any(lag.values()) and not any(outboxes.values()) else 0
        if calm >= 2:
            return True, time.monotonic() - started, lag, outboxes
        await asyncio.sleep(2)
    return False, time.monotonic() - started, lag, outboxes


async def outbox_backlog(pools: dict[str, asyncpg.Pool]) -> dict[str, int]:
    return {
        name: int(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        for name, pool in pools.items()
    }


async def read_all(bootstrap: str, names: Iterable[str]) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(messages)
        return found
    finally:
        await consumer.stop()


# ----------------------------------------------------------------------------- invariants


def every_create_acknowledged(statuses: dict[str, int], planned: int) -> Result:
    """Every planned payment was accepted: a create refused (4xx) would leave it out of every
    later check, which would then hold vacuously for that share of the load."""
    accepted = {
        k: n for k, n in statuses.items() if k.startswith("create ") and k[-3:] in ("201", "202")
    }
    refused = {k: n for k, n in statuses.items() if k.startswith("create ") and k not in accepted}
    count = sum(accepted.values())
    detail = f"{count} of {planned} creates accepted; refused: " + (
        ", ".join(f"{k} x{n}" for k, n in sorted(refused.items())) or "none"
    )
    return Result("every create was accepted", count == planned and not refused, detail)


async def payments_final_and_agree(
    pools: dict[str, asyncpg.Pool], acknowledged: Sequence[str]
) -> Result:
    ids = [uuid.UUID(p) for p in acknowledged]
    intake = {
        r["id"]: r
        for r in await pools["intake"].fetch(
            "SELECT id, status, declined, voided, expired, settled, captured_amount, "
            "refunded_amount FROM payments WHERE id = ANY($1::uuid[])",
            ids,
        )
    }
    auth = {
        r["payment_id"]: r
        for r in await pools["authorization"].fetch(
            "SELECT payment_id, status, captured_amount, refunded_amount FROM authorizations "
            "WHERE payment_id = ANY($1::uuid[])",
            ids,
        )
    }
    missing_intake = [i for i in ids if i not in intake]
    not_final_intake = [i for i, r in intake.items() if not _intake_final(r)]
    missing_auth = [i for i in ids if i not in auth]
    not_final_auth = [i for i, r in auth.items() if r["status"] not in FINAL_AUTHORIZATION]
    disagree = [i for i in ids if i in intake and i in auth and not _agree(intake[i], auth[i])]
    broken = missing_intake + not_final_intake + missing_auth + not_final_auth + disagree
    detail = (
        f"{len(ids)} acknowledged; final in intake {len(intake) - len(not_final_intake)}, "
        f"in authorization {len(auth) - len(not_final_auth)}; disagreeing {len(disagree)}; "
        f"missing in intake {len(missing_intake)}, in authorization {len(missing_auth)}"
    )
    if broken:
        sample = broken[0]
        detail += f"; e.g. {sample}: intake {dict(intake.get(sample) or {})}, auth {dict(auth.get(sample) or {})}"
    return Result(
        "every acknowledged payment is final in intake and authorization, and they agree",
        not broken,
        detail,
    )


def _intake_final(row: Any) -> bool:
    return bool(
        row["declined"]
        or row["voided"]
        or row["expired"]
        or row["settled"]
        or row["status"] == "refunded"
    )


def _agree(intake: Any, auth: Any) -> bool:
    status = auth["status"]
    return (
        intake["declined"] == (status == "declined")
        and intake["voided"] == (status == "voided")
        and intake["expired"] == (status == "expired")
        and intake["captured_amount"] == auth["captured_amount"]
        and intake["refunded_amount"] == auth["refunded_amount"]
    )


async def no_duplicates(pools: dict[str, asyncpg.Pool]) -> list[Result]:
    intake, auth, settlement, notification = (
        pools["intake"],
        pools["authorization"],
        pools["settlement"],
        pools["notification"],
    )
    results = []
    # An authorization or capture event produced twice would show as two timeline entries
    # (the timeline is keyed by message id, so a redelivered copy shows once).
    for event in ("payment.authorized", "payment.captured"):
        dup = await intake.fetchval(
            "SELECT count(*) FROM (SELECT payment_id FROM payment_events WHERE type = $1 "
            "GROUP BY payment_id HAVING count(*) > 1) d",
            event,
        )
        total = await intake.fetchval("SELECT count(*) FROM payment_events WHERE type = $1", event)
        results.append(
            Result(
                f"no {event.split('.')[1]} event twice",
                dup == 0,
                f"{total} events, {dup} payments with more than one",
            )
        )
    holds = await auth.fetchval("SELECT count(*) FROM holds")
    auths = await auth.fetchval("SELECT count(*) FROM authorizations")
    approved = await auth.fetchval(
        "SELECT count(*) FROM authorizations WHERE auth_code IS NOT NULL"
    )
    results.append(
        Result(
            "no authorization duplicated (one hold per approved authorization)",
            holds == approved,
            f"{auths} authorizations, {approved} approved, {holds} holds",
        )
    )
    # Refunds: authorization's rows against intake's succeeded refunds, by refund id.
    auth_refunds = {
        r["refund_id"]: r["amount"]
        for r in await auth.fetch("SELECT refund_id, amount FROM refunds")
    }
    intake_refunds = {
        r["id"]: r["amount"]
        for r in await intake.fetch("SELECT id, amount FROM refunds WHERE status = 'succeeded'")
    }
    ledger_refunds = await settlement.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'refund'"
    )
    refunds_ok = auth_refunds == intake_refunds and ledger_refunds == len(auth_refunds)
    results.append(
        Result(
            "no refund duplicated",
            refunds_ok,
            f"{len(intake_refunds)} in intake, {len(auth_refunds)} in authorization, {ledger_refunds} ledger refund transactions",
        )
    )
    dup_ledger = await settlement.fetchval(
        "SELECT count(*) FROM (SELECT payment_id, kind FROM ledger_transactions "
        "WHERE kind IN ('capture', 'reversal') GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    ledger = await settlement.fetchval("SELECT count(*) FROM ledger_transactions")
    captured_auths = await auth.fetchval(
        "SELECT count(*) FROM authorizations WHERE captured_amount > 0"
    )
    captures = await settlement.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'capture'"
    )
    results.append(
        Result(
            "no ledger transaction duplicated",
            dup_ledger == 0 and captures == captured_auths,
            f"{ledger} transactions, {captures} captures for {captured_auths} captured authorizations, {dup_ledger} doubled",
        )
    )
    dup_webhooks = await notification.fetchval(
        "SELECT count(*) FROM (SELECT message_id, endpoint_id FROM webhook_deliveries "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"
    )
    deliveries = await notification.fetchval("SELECT count(*) FROM webhook_deliveries")
    results.append(
        Result(
            "no webhook delivery duplicated",
            dup_webhooks == 0,
            f"{deliveries} deliveries, {dup_webhooks} doubled",
        )
    )
    return results


async def ledger_balances(settlement: asyncpg.Pool) -> Result:
    rows = await settlement.fetch(
        "SELECT currency, sum(CASE WHEN direction = 'debit' THEN amount ELSE 0 END) AS debit, "
        "sum(CASE WHEN direction = 'credit' THEN amount ELSE 0 END) AS credit "
        "FROM ledger_entries GROUP BY currency ORDER BY currency"
    )
    unbalanced_tx = await settlement.fetchval(
        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id "
        "HAVING sum(CASE WHEN direction = 'debit' THEN amount ELSE -amount END) <> 0) u"
    )
    ok = all(r["debit"] == r["credit"] for r in rows) and unbalanced_tx == 0
    detail = ", ".join(f"{r['currency']} debit {r['debit']} = credit {r['credit']}" for r in rows)
    return Result(
        "the ledger balances per currency", ok, f"{detail}; {unbalanced_tx} unbalanced transactions"
    )


async def ledger_days_close_on_the_ledger(
    settlement_url: str, admin_token: str, settlement: asyncpg.Pool
) -> Result:
    """After one pass of the ledger-day job (statements): every merchant's days chain (each
    opens on the previous closing) and its last day closes on its payable in the ledger."""
    async with httpx.AsyncClient(timeout=300) as client:
        response = await client.post(
            f"{settlement_url}/admin/ledger-days/run",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    if response.status_code != 200:
        return Result("statements close on the ledger", False, f"job: {response.status_code}")
    payable = {
        (r["merchant_id"], r["currency"].strip()): r["balance"]
        for r in await settlement.fetch(
            "SELECT t.merchant_id, e.currency, sum(CASE WHEN e.direction = 'credit' "
            "THEN e.amount ELSE -e.amount END) AS balance FROM ledger_entries e "
            "JOIN ledger_transactions t ON t.id = e.transaction_id "
            "WHERE e.account = 'merchant:' || t.merchant_id || ':payable' GROUP BY 1, 2"
        )
    }
    last = {
        (r["merchant_id"], r["currency"].strip()): r["closing_balance"]
        for r in await settlement.fetch(
            "SELECT DISTINCT ON (merchant_id, currency) merchant_id, currency, closing_balance "
            "FROM ledger_days ORDER BY merchant_id, currency, day DESC"
        )
    }
    breaks = await settlement.fetchval(
        "SELECT count(*) FROM (SELECT opening_balance, lag(closing_balance) OVER "
        "(PARTITION BY merchant_id, currency ORDER BY day) AS before FROM ledger_days) d "
        "WHERE before IS NOT NULL AND before <> opening_balance"
    )
    wrong = [k for k in payable.keys() | last.keys() if payable.get(k) != last.get(k)]
    return Result(
        "statements close on the ledger",
        not wrong and breaks == 0,
        f"{len(payable)} merchant balances, {len(wrong)} differ from their last day, "
        f"{breaks} days not opening on the previous closing",
    )


async def card_balances(auth: asyncpg.Pool) -> Result:
    rows = await auth.fetch(
        "SELECT b.card_ref, b.currency, b.available, a.limit_major, "
        "COALESCE(sum(h.amount) FILTER (WHERE h.status = 'held'), 0) AS held, "
        "COALESCE(sum(h.captured_amount - h.refunded_amount) FILTER (WHERE h.status = 'captured'), 0) AS taken "
        "FROM account_balances b JOIN card_accounts a USING (card_ref) "
        "LEFT JOIN holds h ON h.card_ref = b.card_ref AND h.currency = b.currency "
        "GROUP BY b.card_ref, b.currency, b.available, a.limit_major"
    )
    wrong = [
        r
        for r in rows
        if r["available"]
        != r["limit_major"] * 10 ** currency_exponent(r["currency"]) - r["held"] - r["taken"]
    ]
    return Result(
        "every card's balance = limit - live holds - captures",
        not wrong,
        f"{len(rows)} card balances, {len(wrong)} wrong",
    )


async def captures_in_one_batch(pools: dict[str, asyncpg.Pool]) -> Result:
    captured = {
        r["payment_id"]
        for r in await pools["authorization"].fetch(
            "SELECT payment_id FROM authorizations WHERE captured_amount > 0 AND status <> 'voided'"
        )
    }
    rows = await pools["settlement"].fetch(
        "SELECT p.payment_id, p.status, b.status AS batch_status FROM settlement_payments p "
        "JOIN settlement_batches b ON b.id = p.batch_id"
    )
    booked = {r["payment_id"]: r for r in rows}
    unbatched = [p for p in captured if p not in booked]
    open_batch = [p for p in captured if p in booked and booked[p]["batch_status"] != "closed"]
    unsettled = await pools["intake"].fetchval(
        "SELECT count(*) FROM payments WHERE id = ANY($1::uuid[]) AND NOT settled", list(captured)
    )
    ok = not unbatched and not open_batch and unsettled == 0
    return Result(
        "every captured payment is in exactly one closed batch",
        ok,
        f"{len(captured)} captured, {len(unbatched)} in no batch, {len(open_batch)} in an open batch, {unsettled} not settled in intake",
    )


async def outboxes_empty(pools: dict[str, asyncpg.Pool]) -> Result:
    backlog = await outbox_backlog(pools)
    return Result(
        "nothing left in any outbox",
        not any(backlog.values()),
        ", ".join(f"{k} {v}" for k, v in backlog.items()),
    )


async def dead_letters_only_poison(bootstrap: str, planted: int) -> Result:
    records = await read_all(bootstrap, ALL_DLQ)
    poison = [
        r for r in records if (r.key or b"").decode(errors="replace").startswith(POISON_PREFIX)
    ]
    other = [r for r in records if r not in poison]
    by_topic: dict[str, int] = {}
    for record in records:
        by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
    detail = f"{len(records)} dead letters ({', '.join(f'{k} {v}' for k, v in sorted(by_topic.items()))}); {planted} poison messages planted, {len({r.key for r in poison})} distinct poison keys dead-lettered, {len(other)} others"
    if other:
        reason = dict(other[0].headers or ()).get("dlq.error", b"").decode(errors="replace")
        detail += f"; e.g. {other[0].topic}@{other[0].offset}: {reason[:200]}"
    return Result(
        "dead-letter topics hold only the planted poison messages",
        not other and bool(poison or not planted),
        detail,
    )


# ---------------------------------------------------------------------------- poison


POISONED = {
    # topic -> the consumer groups (dead-letter topics) that must dead-letter it
    topics.PAYMENT_INITIATED: ("fraud", "notification"),
    topics.PAYMENT_SCORED: ("authorization",),
    topics.PAYMENT_CAPTURED: ("settlement", "notification", "intake"),
    topics.FRAUD_REPORTED: ("fraud-feedback",),
    topics.MERCHANT_REQUESTS: ("intake-requests",),
}


async def started_producer(bootstrap: str, wait_s: float = 90.0) -> AIOKafkaProducer:
    """A started producer; waits for the broker when a fault has it down at the moment."""
    deadline = time.monotonic() + wait_s
    while True:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            await producer.start()
            return producer
        except KafkaConnectionError:
            await producer.stop()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def plant_poison(bootstrap: str, tag: str) -> int:
    """One unparseable message on each consumed topic (key `chaos-poison-...`), planted while
    the faults run: a broker restart may be under way."""
    producer = await started_producer(bootstrap)
    try:
        for topic in POISONED:
            await producer.send_and_wait(
                topic,
                value=b"\x00 not json: chaos poison",
                key=f"{POISON_PREFIX}{tag}-{topic}".encode(),
            )
    finally:
        await producer.stop()
    return len(POISONED)


async def poison_timing(bootstrap: str, group_of: dict[str, str]) -> list[Result]:
    """Plants a poison message per topic and measures until each consumer's dead-letter topic
    has it, then that the consumer's committed offset moved past it (the partition moves)."""
    tag = f"timed-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    sent: dict[str, tuple[Any, float]] = {}
    try:
        for topic in POISONED:
            meta = await producer.send_and_wait(
                topic, value=b"{not json", key=f"{POISON_PREFIX}{tag}-{topic}".encode()
            )
            sent[topic] = (meta, time.monotonic())
    finally:
        await producer.stop()
    results = []
    for topic, consumers in POISONED.items():
        meta, at = sent[topic]
        key = f"{POISON_PREFIX}{tag}-{topic}".encode()
        for consumer in consumers:
            dead_after = await _until_dead_lettered(bootstrap, consumer, key, at, 30)
            moved_after = await _until_committed_past(
                bootstrap, group_of.get(consumer, consumer), meta, at, 30
            )
            ok = dead_after is not None and dead_after <= 10 and moved_after is not None
            results.append(
                Result(
                    f"poison on {topic} -> dlq.{consumer}.v1 within 10 s, partition moves on",
                    ok,
                    f"dead-lettered after {_secs(dead_after)}, offset committed past it after {_secs(moved_after)}",
                )
            )
    return results


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


async def _until_dead_lettered(
    bootstrap: str, consumer: str, key: bytes, since: float, timeout_s: float
) -> float | None:
    topic = topics.dead_letter_topic(consumer)
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        while time.monotonic() - since < timeout_s:
            for messages in (await reader.getmany(timeout_ms=200)).values():
                if any(m.key == key for m in messages):
                    return time.monotonic() - since
        return None
    finally:
        await reader.stop()


async def _until_committed_past(
    bootstrap: str, group: str, meta: Any, since: float, timeout_s: float
) -> float | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(meta.topic, meta.partition)
        while time.monotonic() - since < timeout_s:
            committed = (await admin.list_consumer_group_offsets(group, partitions=[tp])).get(tp)
            if committed is not None and committed.offset > meta.offset:
                return time.monotonic() - since
            await asyncio.sleep(0.2)
        return None
    finally:
        await admin.close()


# ---------------------------------------------------------------------------- replay


DIGEST_QUERIES = {
    "authorization": (
        "SELECT payment_id, status, amount, captured_amount, refunded_amount, response_code FROM authorizations ORDER BY payment_id",
        "SELECT payment_id, card_ref, amount, captured_amount, refunded_amount, status FROM holds ORDER BY payment_id",
        "SELECT refund_id, payment_id, amount FROM refunds ORDER BY refund_id",
        "SELECT card_ref, currency, available FROM account_balances ORDER BY card_ref, currency",
        "SELECT count(*) FROM outbox",
        "SELECT count(*) FROM inbox",
    ),
    "settlement": (
        "SELECT id, payment_id, kind, currency, batch_id FROM ledger_transactions ORDER BY id",
        "SELECT transaction_id, account, direction, amount FROM ledger_entries ORDER BY transaction_id, account, direction, amount",
        "SELECT payment_id, batch_id, status, gross_amount, fee_amount FROM settlement_payments ORDER BY payment_id",
        "SELECT id, status, gross_amount, net_amount, payment_count FROM settlement_batches ORDER BY id",
        # The ledger-day job's announcements follow its timer, not the consumer: left out.
        "SELECT count(*) FROM outbox WHERE topic <> 'settlement.ledger-day.v1'",
        "SELECT count(*) FROM inbox",
    ),
}


async def state_digest(pool: asyncpg.Pool, service: str) -> str:
    digest = hashlib.sha256()
    for query in DIGEST_QUERIES[service]:
        for row in await pool.fetch(query):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()[:16]


async def reset_group_to_start(bootstrap: str, group: str) -> int:
    """Commits offset 0 (the log start) on every partition the group has offsets for; returns
    how many records it will read again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = list(committed)
        starts = await consumer.beginning_offsets(partitions)
        consumer.assign(partitions)
        await consumer.commit({tp: OffsetAndMetadata(starts[tp], "") for tp in partitions})
        return sum(committed[tp].offset - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()
