"""Card crypto numbers: envelope encrypt/decrypt ops/s on one core (PAN-sized values), and the
time to re-wrap stored ciphertexts in a real PostgreSQL table.

    uv run --no-sync python scripts/bench_crypto.py [--rows 100000] [--batch 1000] [--seconds 3]
        [--dsn postgresql://sanalpos_intake:sanalpos_intake@127.0.0.1:25432/sanalpos_intake]

Creates and drops its own scratch table `bench_rewrap`. The Python process is pinned to one CPU.
"""
# ruff: noqa: S608 - the only table name is the constant TABLE

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Callable

import asyncpg

from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.card import luhn_check_digit
from sanalpos_common.crypto.envelope import decrypt, encrypt, key_version, rewrap
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.crypto.rewrap import RewrapProgress, count_key_versions, rewrap_table
from sanalpos_common.settings import local_database_url

TABLE = "bench_rewrap"


def ops_per_second(call: Callable[[], object], seconds: float) -> tuple[float, int]:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(500):
            call()
        n += 500
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start), n


def bench_cpu(seconds: float) -> None:
    ring = Keyring.generate("pan").rotated()
    pan = ("411111111111111" + luhn_check_digit("411111111111111")).encode()
    aad = pan_aad("mer_bench", uuid.uuid4())
    token = encrypt(ring, pan, aad)
    old_ring = Keyring.generate("pan")
    rotated = old_ring.rotated()
    old_token = encrypt(old_ring, pan, aad)
    for name, fn in [
        ("encrypt", lambda: encrypt(ring, pan, aad)),
        ("decrypt", lambda: decrypt(ring, token, aad)),
        ("rewrap (DEK only)", lambda: rewrap(old_token, rotated, aad)),
    ]:
        rate, n = ops_per_second(fn, seconds)
        print(f"{name:<20} {rate:>10,.0f} ops/s  ({n:,} ops, 16-digit PAN, one core)")
    print(f"ciphertext length    {len(token)} characters for a 16-digit PAN")


async def bench_rewrap(dsn: str, rows: int, batch: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await pool.execute(
            f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, merchant_id text NOT NULL, "
            "payment_id uuid NOT NULL, pan_ciphertext text NOT NULL)"
        )
        v1 = Keyring.generate("pan")
        start = time.perf_counter()
        records = []
        for i in range(rows):
            payment = uuid.uuid4()
            pan = f"41111111{i:08d}".encode()
            records.append(
                (i, "mer_bench", payment, encrypt(v1, pan, pan_aad("mer_bench", payment)))
            )
        await pool.copy_records_to_table(TABLE, records=records)
        print(f"filled {rows:,} rows under v1 in {time.perf_counter() - start:.1f}s")
        await pool.execute(f"ANALYZE {TABLE}")

        v2 = v1.rotated()
        last_print = [0.0]

        def progress(p: RewrapProgress) -> None:
            if p.elapsed_s - last_print[0] >= 2 or p.remaining == 0:
                last_print[0] = p.elapsed_s
                print(
                    f"  rewrap: {p.done:,}/{p.total:,} done, {p.failed} failed, "
                    f"{p.batches} batches, {p.elapsed_s:.1f}s"
                )

        def aad(row: asyncpg.Record) -> bytes:
            return pan_aad(row["merchant_id"], row["payment_id"])

        start = time.perf_counter()
        report = await rewrap_table(pool, TABLE, "id", "pan_ciphertext", aad, v2, batch, progress)
        took = time.perf_counter() - start
        print(
            f"rewrap of {report.done:,} rows (batch {batch}): {took:.1f}s "
            f"= {report.done / took:,.0f} rows/s"
        )
        counts = await count_key_versions(pool, TABLE, "pan_ciphertext")
        print(f"references per version after the job: {dict(counts)}")
        sample = await pool.fetchrow(f"SELECT * FROM {TABLE} ORDER BY id LIMIT 1")
        assert sample is not None and key_version(sample["pan_ciphertext"]) == ("pan", 2)
        assert decrypt(v2, sample["pan_ciphertext"], aad(sample)) == b"4111111100000000"
        start = time.perf_counter()
        again = await rewrap_table(pool, TABLE, "id", "pan_ciphertext", aad, v2, batch)
        print(
            f"second run (idempotent): {again.done} rows re-wrapped, "
            f"{time.perf_counter() - start:.2f}s"
        )
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--dsn", default=os.environ.get("INTAKE_DATABASE_URL", local_database_url("intake"))
    )
    parser.add_argument("--skip-db", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bench_cpu(args.seconds)
    if not args.skip_db:
        asyncio.run(bench_rewrap(args.dsn, args.rows, args.batch))


if __name__ == "__main__":
    main()
