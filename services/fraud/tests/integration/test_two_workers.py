"""Two fraud processes in one group: partitions are shared, card counts stay exact.

This is what the by-card repartition is for: each worker only holds the table partitions
of the stream partitions it was assigned, so a card's counts are right only if all of its
payments reach the same stream partition as its table partition.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import httpx

from sanalpos_common import topics

from .conftest import KafkaIO, ServiceProcess, fraud_service, free_port, wait_for

PAYMENTS = 400
CARDS = 20


async def processed(client: httpx.AsyncClient, base_url: str) -> int:
    detail = (await client.get(f"{base_url}/readyz")).json()["checks"]["faust"]["detail"]
    match = re.search(r"processed (\d+)", detail)
    return int(match.group(1)) if match else 0


async def test_two_workers_share_the_partitions_and_count_cards_exactly(
    kafka_io: KafkaIO, tmp_path: Path
) -> None:
    async with fraud_service(kafka_io, tmp_path / "one", "pair") as fraud:
        port = free_port()
        second = ServiceProcess(
            {
                **fraud.service.env,
                "FRAUD_HTTP_PORT": str(port),
                "FRAUD_FAUST_DATADIR": str(tmp_path / "two"),
            },
            tmp_path / "second.log",
            f"http://127.0.0.1:{port}",
        )
        try:
            await second.start()
            async with httpx.AsyncClient() as client:

                async def both_assigned() -> bool:
                    for url in (fraud.base_url, second.base_url):
                        checks = (await client.get(f"{url}/readyz")).json()["checks"]
                        if "assigned 0 " in checks["faust"]["detail"]:
                            return False
                    return True

                await wait_for(both_assigned, timeout=20, interval=0.2)
                pans = [f"5{n:015d}" for n in range(CARDS)]
                envelopes = [fraud.payments.envelope(pan=pans[i % CARDS]) for i in range(PAYMENTS)]
                for envelope in envelopes:
                    await fraud.kafka.producer.send(
                        topics.PAYMENT_INITIATED,
                        value=envelope.model_dump_json().encode(),
                        key=str(envelope.correlation_id).encode(),
                    )
                await fraud.kafka.producer.flush()

                async def all_decided() -> bool:
                    count = await fraud.db.fetchval("SELECT count(*) FROM fraud_decisions")
                    return count == PAYMENTS

                await wait_for(all_decided, timeout=30, interval=0.1)
                shares = [await processed(client, u) for u in (fraud.base_url, second.base_url)]
        finally:
            await second.terminate()

        # The per-process counters restart with a faust app that the supervisor restarted (a
        # rebalance error on a busy box), so they prove sharing, not totals; exactly-once and
        # exact per-card counts are asserted on the database below.
        assert min(shares) > 0, shares  # both workers scored some
        assert sum(shares) <= PAYMENTS
        rows = await fraud.db.fetch(
            "SELECT card_fingerprint, velocity_card_10m FROM fraud_decisions"
        )
        per_card: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            per_card[row["card_fingerprint"]].append(row["velocity_card_10m"])
        assert len(per_card) == CARDS
        expected = list(range(1, PAYMENTS // CARDS + 1))
        assert all(sorted(counts) == expected for counts in per_card.values()), per_card
