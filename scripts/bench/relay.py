#!/usr/bin/env python3
"""The bare baseline: a 5-hop Kafka relay on the same broker, no service code in the way.

One aiokafka process per hop: it consumes a batch from topic i-1, produces every record to
topic i (acks=all, idempotent producer), waits for the acks, commits the offsets. The bench
publishes N 300-byte records to topic 0 and times them until all have arrived on topic 5.

    python scripts/bench/relay.py --messages 20000        (standalone; prints JSON)
    python scripts/bench/relay.py hop --source T --target U --group G   (one hop, internal)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

HOPS = 5
MESSAGE_BYTES = 300
PARTITIONS = 3  # as the pipeline's own topics (sanalpos_common.messaging.admin)
BATCH = 500


async def hop(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await consumer.start()
    announced = False
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=BATCH)
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            futures = [
                await producer.send(target, value=m.value, key=m.key)
                for messages in batches.values()
                for m in messages
            ]
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=n, num_partitions=PARTITIONS, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def start_hops(bootstrap: str, names: list[str], run: str) -> list[subprocess.Popen[str]]:
    script = str(Path(__file__).resolve())
    return [
        subprocess.Popen(
            [
                sys.executable,
                script,
                "hop",
                "--bootstrap",
                bootstrap,
                "--source",
                names[i],
                "--target",
                names[i + 1],
                "--group",
                f"bench-relay-{run}-hop{i + 1}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(HOPS)
    ]


async def wait_ready(hops: list[subprocess.Popen[str]], timeout_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    for process in hops:
        assert process.stdout is not None
        line = await asyncio.wait_for(
            loop.run_in_executor(None, process.stdout.readline), timeout_s
        )
        if line.strip() != "ready":
            raise RuntimeError(f"relay hop did not start (exit {process.poll()})")


async def sink_positions(consumer: AIOKafkaConsumer, topic: str) -> None:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)


async def measure(bootstrap: str, messages: int, timeout_s: float = 180) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    names = [f"bench.relay.{run}.{i}" for i in range(HOPS + 1)]
    await create_topics(bootstrap, names)
    hops = start_hops(bootstrap, names, run)
    sink = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        await wait_ready(hops)
        await sink.start()
        await sink_positions(sink, names[-1])
        await producer.start()
        payload = os.urandom(MESSAGE_BYTES // 2).hex().encode()  # 300 bytes
        first_send = time.perf_counter()
        for i in range(messages):
            await producer.send(names[0], value=payload, key=str(i).encode())
        await producer.flush()
        published = time.perf_counter()
        arrived, last_arrival = 0, first_send
        deadline = first_send + timeout_s
        while arrived < messages and time.perf_counter() < deadline:
            for batch in (await sink.getmany(timeout_ms=200)).values():
                arrived += len(batch)
                last_arrival = time.perf_counter()
    finally:
        for process in hops:
            process.terminate()
        for process in hops:
            process.wait(timeout=20)
        await producer.stop()
        await sink.stop()
        await delete_topics(bootstrap, names)
    seconds = last_arrival - first_send
    return {
        "hops": HOPS,
        "message_bytes": MESSAGE_BYTES,
        "partitions": PARTITIONS,
        "messages": messages,
        "arrived": arrived,
        "publish_s": round(published - first_send, 2),
        "end_to_end_s": round(seconds, 2),
        "messages_per_s": round(arrived / seconds, 1) if seconds > 0 else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", default="measure", choices=["measure", "hop"])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get(
            "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('SANALPOS_KAFKA_PORT', '29092')}"
        ),
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--source")
    parser.add_argument("--target")
    parser.add_argument("--group")
    args = parser.parse_args()
    if args.mode == "hop":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(hop(args.bootstrap, args.source, args.target, args.group))
        return
    print(json.dumps(asyncio.run(measure(args.bootstrap, args.messages)), indent=2))


if __name__ == "__main__":
    main()
