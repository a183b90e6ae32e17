"""The BIN table: the shipped seed (data/bins.csv) and rows the operator imports."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from intake.domain.bins import BinRecord, CardType, lookup_prefixes, parse_bin_rows
from sanalpos_common.db import Connection

SEED_FILE = Path(__file__).resolve().parents[3] / "data" / "bins.csv"
SEED, OPERATOR = "seed", "operator"

_COLUMNS = "prefix, scheme, card_type, issuer, programme, country, max_installments"


def read_bin_file(path: Path) -> list[BinRecord]:
    """Every row of a BIN CSV file (header: domain.bins.CSV_COLUMNS; `#` lines are comments).
    Raises BadBinRow naming the first bad line."""
    with path.open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if not line.lstrip().startswith("#")]
    return list(parse_bin_rows(csv.DictReader(lines)))


def _record(row: asyncpg.Record) -> BinRecord:
    return BinRecord(
        prefix=row["prefix"],
        scheme=row["scheme"],
        card_type=CardType(row["card_type"]),
        issuer=row["issuer"],
        programme=row["programme"],
        country=row["country"],
        max_installments=row["max_installments"],
    )


class BinRepository:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def find(self, bin_digits: str) -> BinRecord | None:
        """The most specific row for a card's BIN (8 digits before 6)."""
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM bins WHERE prefix = ANY($1::text[]) "  # noqa: S608
            "ORDER BY length(prefix) DESC LIMIT 1",
            lookup_prefixes(bin_digits),
        )
        return None if row is None else _record(row)

    async def upsert(self, records: Iterable[BinRecord], source: str) -> int:
        """Writes rows; the seed never overwrites a row the operator imported. Returns the
        number of rows written."""
        rows = [
            (
                r.prefix,
                r.scheme,
                r.card_type.value,
                r.issuer,
                r.programme,
                r.country,
                r.max_installments,
                source,
            )
            for r in records
        ]
        if not rows:
            return 0
        result = await self.db.fetch(
            f"INSERT INTO bins ({_COLUMNS}, source) "  # noqa: S608
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::text[], $7::int[], $8::text[]) "
            "ON CONFLICT (prefix) DO UPDATE SET scheme = excluded.scheme, "
            "card_type = excluded.card_type, issuer = excluded.issuer, "
            "programme = excluded.programme, country = excluded.country, "
            "max_installments = excluded.max_installments, source = excluded.source, "
            "updated_at = now() "
            "WHERE bins.source = 'seed' OR excluded.source = 'operator' "
            "RETURNING prefix",
            *[list(column) for column in zip(*rows, strict=True)],
        )
        return len(result)

    async def load_seed(self, path: Path = SEED_FILE) -> int:
        return await self.upsert(read_bin_file(path), SEED)
