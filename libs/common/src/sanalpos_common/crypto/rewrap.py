"""Moving stored ciphertexts to the newest key version, and counting who still needs old ones.

`rewrap_table` re-wraps only the data key of every row whose ciphertext is not yet on the
keyring's newest version (the value's own ciphertext stays). It is

- resumable and idempotent: the work list is a predicate (`NOT LIKE '<fmt>.<key>.<newest>.%'`),
  so a restarted job continues where it stopped and a finished job finds nothing;
- batched: rows in id order, `batch_size` at a time, each batch one transaction that locks its
  rows (`FOR UPDATE SKIP LOCKED`) and writes back only where the ciphertext is unchanged;
- reporting: `progress_cb(RewrapProgress)` after every batch.

Rows whose ciphertext cannot be re-wrapped (wrong record binding, key version unavailable) are
counted as failed, logged by id only, and left as they are; the job moves past them. Rows locked
by a concurrent writer are skipped rather than waited for; a later run picks them up, so run the
job until it reports nothing left but failures.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from sanalpos_common.crypto.envelope import rewrap, token_prefix
from sanalpos_common.crypto.keyring import KeyringError
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """Quote `table`, `schema.table` or `column` after checking it is a plain identifier."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return ".".join(f'"{p}"' for p in parts)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class RewrapProgress:
    total: int
    """Rows that needed re-wrapping when the job started."""
    done: int
    failed: int
    batches: int
    last_id: Any
    elapsed_s: float

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done - self.failed)


AadFn = Callable[[asyncpg.Record], bytes]
ProgressCb = Callable[[RewrapProgress], Awaitable[None] | None]


async def rewrap_table(
    pool: asyncpg.Pool,
    table: str,
    id_column: str,
    ciphertext_column: str,
    aad_fn: AadFn,
    keyring: KeyWrapper,
    batch_size: int = 1000,
    progress_cb: ProgressCb | None = None,
) -> RewrapProgress:
    """Re-wrap every ciphertext in `table.ciphertext_column` onto `keyring`'s newest version.

    `aad_fn(row)` gets the whole row (`SELECT *`) and returns the associated data the value was
    encrypted with, e.g. `lambda r: pan_aad(r["merchant_id"], r["payment_id"])`. NULLs and
    ciphertexts of other keys/formats are left alone. Returns the final progress.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    t, idc, col = quote_ident(table), quote_ident(id_column), quote_ident(ciphertext_column)
    refresh = getattr(keyring, "refresh", None)
    if callable(refresh):
        await asyncio.to_thread(refresh)  # Vault: learn the newest version first
    newest = token_prefix(keyring)
    ours = f"{keyring.format}.{keyring.key_id}."
    predicate = f"{col} LIKE $1 ESCAPE '\\' AND {col} NOT LIKE $2 ESCAPE '\\'"
    params = [_like_escape(ours) + "%", _like_escape(newest) + "%"]
    total = int(await pool.fetchval(f"SELECT count(*) FROM {t} WHERE {predicate}", *params))  # noqa: S608
    first_select = (
        f"SELECT * FROM {t} WHERE {predicate} "  # noqa: S608
        f"ORDER BY {idc} LIMIT {int(batch_size)} FOR UPDATE SKIP LOCKED"
    )
    after_select = (
        f"SELECT * FROM {t} WHERE {predicate} AND {idc} > $3 "  # noqa: S608
        f"ORDER BY {idc} LIMIT {int(batch_size)} FOR UPDATE SKIP LOCKED"
    )
    update = f"UPDATE {t} SET {col} = $1 WHERE {idc} = $2 AND {col} = $3"  # noqa: S608
    started = time.monotonic()
    done = failed = batches = 0
    last_id: Any = None
    progress = RewrapProgress(total, 0, 0, 0, None, 0.0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if last_id is None:
                rows = await conn.fetch(first_select, *params)
            else:
                rows = await conn.fetch(after_select, *params, last_id)
            if not rows:
                break
            updates, batch_failed = await asyncio.to_thread(
                _rewrap_rows, rows, id_column, ciphertext_column, aad_fn, keyring
            )
            if updates:
                await conn.executemany(update, updates)
            last_id = rows[-1][id_column]
        done += len(updates)
        failed += batch_failed
        batches += 1
        progress = RewrapProgress(total, done, failed, batches, last_id, time.monotonic() - started)
        if progress_cb is not None:
            result = progress_cb(progress)
            if result is not None:
                await result
    return RewrapProgress(total, done, failed, batches, last_id, time.monotonic() - started)


def _rewrap_rows(
    rows: list[asyncpg.Record],
    id_column: str,
    ciphertext_column: str,
    aad_fn: AadFn,
    keyring: KeyWrapper,
) -> tuple[list[tuple[str, Any, str]], int]:
    updates: list[tuple[str, Any, str]] = []
    failed = 0
    for row in rows:
        old = row[ciphertext_column]
        try:
            new = rewrap(old, keyring, aad_fn(row))
        except (DecryptionError, KeyringError) as exc:
            failed += 1
            log.error("rewrap: row %s left as is: %s", row[id_column], exc)
            continue
        if new != old:
            updates.append((new, row[id_column], old))
    return updates, failed


async def count_key_versions(
    pool: asyncpg.Pool, table: str, ciphertext_column: str
) -> dict[tuple[str, str, int], int]:
    """{(format, key_id, version): rows} over one ciphertext column, to decide whether a
    version can be destroyed (it can once no table counts it)."""
    t, col = quote_ident(table), quote_ident(ciphertext_column)
    rows = await pool.fetch(
        f"SELECT split_part({col}, '.', 1) AS fmt, split_part({col}, '.', 2) AS key_id, "  # noqa: S608
        f"split_part({col}, '.', 3) AS version, count(*) AS n FROM {t} "
        f"WHERE {col} IS NOT NULL GROUP BY 1, 2, 3"
    )
    counts: dict[tuple[str, str, int], int] = {}
    for row in rows:
        if row["version"].isdigit():
            counts[(row["fmt"], row["key_id"], int(row["version"]))] = int(row["n"])
    return counts


def references(counts: dict[tuple[str, str, int], int], keyring: KeyWrapper, version: int) -> int:
    return counts.get((keyring.format, keyring.key_id, version), 0)
