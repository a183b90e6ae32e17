"""SIGKILL the fraud process in the middle of a stream of payments, start it again.

What must hold (the at-least-once + inbox contract): every payment ends up with exactly one
decision, every payment.scored of a payment is the same event (a relay retry may publish
one twice, with the same message id, never a second scoring), nothing is lost, and the
per-card velocity table, rebuilt from its changelog, kept counting across the crash.

Two faust 0.15 bugs made this test fail now and then (about 1 run in 5 here) until they were
worked around: table recovery resumed the stream partitions before seeking them, which
dropped a stretch of a partition in memory (`adapters/faust_recovery.py`), and faust acked
events it skipped during a rebalance, which let a commit pass unprocessed messages
(`adapters/ack_guard.py`). A last one showed only on a clean cluster (598/600 decided in a
clean-clone `make test`): faust has no committed offset for a partition at offset 0, so the
head-of-partition check was skipped there (`AckGuard` now records the real head).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode

from .conftest import KafkaIO, fraud_service, wait_for

PAYMENTS = 600
CARDS = 30


async def test_sigkill_mid_stream_loses_nothing_and_scores_nothing_twice(
    kafka_io: KafkaIO, tmp_path: Path
) -> None:
    async with fraud_service(
        kafka_io,
        tmp_path,
        "crash",
        session_timeout_s="6",
        heartbeat_interval_s="1",
        batch_max="20",
    ) as fraud:
        pans = [f"4{n:015d}" for n in range(CARDS)]
        envelopes = [fraud.payments.envelope(pan=pans[i % CARDS]) for i in range(PAYMENTS)]
        ids = [e.payload.payment_id for e in envelopes]
        for envelope in envelopes:
            await fraud.kafka.producer.send(
                topics.PAYMENT_INITIATED,
                value=envelope.model_dump_json().encode(),
                key=str(envelope.correlation_id).encode(),
            )
        await fraud.kafka.producer.flush()

        async def some_decided() -> int:
            n = await fraud.db.fetchval("SELECT count(*) FROM fraud_decisions")
            return n if n >= PAYMENTS // 6 else 0

        decided_before = await wait_for(some_decided, timeout=20, interval=0.01)
        await fraud.service.kill()
        if decided_before >= PAYMENTS:
            pytest.skip("everything was scored before the kill; nothing to recover")
        await fraud.service.start()

        async def all_decided() -> bool:
            return await fraud.db.fetchval("SELECT count(*) FROM fraud_decisions") == PAYMENTS

        try:
            await wait_for(all_decided, timeout=120, interval=0.1)
        except AssertionError:
            decided = await fraud.db.fetchval("SELECT count(*) FROM fraud_decisions")
            raise AssertionError(
                f"{decided}/{PAYMENTS} decided after restart; log:\n{fraud.service.log_tail(60)}"
            ) from None
        wanted = {str(i).encode() for i in ids}

        async def all_published() -> bool:
            keys = {r.key for r in fraud.reader.where(topics.PAYMENT_SCORED, lambda r: True)}
            return wanted <= keys

        await wait_for(all_published, timeout=20, interval=0.1)
        await asyncio.sleep(1.0)  # let a duplicate publish, if any, arrive too

        rows = await fraud.db.fetch(
            "SELECT payment_id, card_fingerprint, velocity_card_10m FROM fraud_decisions"
        )
        assert sorted(r["payment_id"] for r in rows) == sorted(ids)
        message_ids: dict[bytes, set[object]] = defaultdict(set)
        for record in fraud.reader.where(topics.PAYMENT_SCORED, lambda r: r.key in wanted):
            message_ids[record.key].add(decode(topics.PAYMENT_SCORED, record.value).message_id)
        assert {len(m) for m in message_ids.values()} == {1}
        assert len(message_ids) == PAYMENTS
        inbox = await fraud.db.fetchval("SELECT count(*) FROM inbox")
        assert inbox == PAYMENTS

        # Velocity survived the crash. Payments of one card are scored in order, so with
        # nothing counted twice the k-th smallest count is at most k; a lost table would
        # restart every card at 1. Allowed: the documented window where a batch committed
        # just before the kill had its table update (changelog write) lost, which makes a
        # few later counts of that card smaller by the size of that batch's share.
        per_card: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            per_card[row["card_fingerprint"]].append(row["velocity_card_10m"])
        n = PAYMENTS // CARDS
        deficits = []
        for counts in per_card.values():
            ranked = sorted(counts)
            assert all(c <= i + 1 for i, c in enumerate(ranked)), ranked  # no over-count
            deficits.append(n - ranked[-1])
        print(
            f"\nkilled after {decided_before} decisions; per-card under-count after the "
            f"crash: max {max(deficits)}, total {sum(deficits)} of {PAYMENTS}"
        )
        assert sum(deficits) <= PAYMENTS // 4
