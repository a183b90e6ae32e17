"""Stored cards: create (tokenize), list, read and delete. Never returns card secrets."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.adapters.card_tokens import CardTokenRepository
from intake.entrypoints.schemas import CardIn, StoredCardList, StoredCardOut
from intake.service_layer.card_protection import CardProtection

log = logging.getLogger(__name__)


class BadCursor(ValueError):
    pass


def card_view(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    return StoredCardOut(
        id=row["token"],
        brand=row["brand"],
        bin=row["bin"][:6],
        last4=row["last4"],
        masked_number=row["masked_number"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
    ).model_dump(mode="json")


async def save_card(
    pool: asyncpg.Pool, protection: CardProtection, merchant_id: str, card: CardIn
) -> dict[str, Any]:
    row = await protection.run(
        protection.tokenize,
        merchant_id,
        card.number.get_secret_value(),
        card.exp_month,
        card.exp_year,
        datetime.now(UTC),
    )
    await CardTokenRepository(pool).add(row)
    log.info("card stored as %s", row["token"])
    return card_view(row)


def encode_cursor(row: Mapping[str, Any] | Any) -> str:
    text = f"{row['created_at'].isoformat()}|{row['token']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, token = text.partition("|")
        when = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(cursor) from None
    if not token.startswith("tok_") or when.tzinfo is None:
        raise BadCursor(cursor)
    return when, token


async def list_cards(
    pool: asyncpg.Pool, merchant_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    rows = await CardTokenRepository(pool).page(merchant_id, limit + 1, after)
    page, has_more = rows[:limit], len(rows) > limit
    return StoredCardList(
        data=[StoredCardOut.model_validate(card_view(r)) for r in page],
        has_more=has_more,
        next_cursor=encode_cursor(page[-1]) if has_more else None,
    ).model_dump(mode="json")
