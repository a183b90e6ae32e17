"""Stored cards: create (tokenize), list, read and delete. Never returns card secrets."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel, SecretStr, ValidationError

from intake.adapters.card_tokens import CardTokenRepository
from intake.adapters.used_jwe import UsedJweRepository
from intake.domain.commands import CardIn
from intake.domain.queries import BadCursor
from intake.domain.read_models import StoredCardList, StoredCardOut
from intake.service_layer.card_protection import CardProtection
from intake.service_layer.client_encryption import ClientEncryption, JweUse
from intake.service_layer.problems import Refused, field_errors, invalid

log = logging.getLogger(__name__)
C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class OpenedCard(Generic[C]):
    card: C
    use: JweUse
    """To record (UsedJweRepository) in the transaction of what the card pays for."""


def open_encrypted_card(
    client_encryption: ClientEncryption,
    jwe: SecretStr,
    model: type[C],
    merchant_id: str,
    audience: str | None = None,
) -> OpenedCard[C]:
    """Decrypts a client-side-encrypted card bound to `merchant_id` (or to `audience`, a
    checkout session of that merchant) and validates it exactly like a clear `card`.

    Raises UnreadableCardPayload (a binding subclass for a token of another merchant, stale,
    or unbound), or `Refused` naming `encrypted_card.<field>` (never the input)."""
    payload, use = client_encryption.open_bound(jwe.get_secret_value(), merchant_id, audience)
    try:
        return OpenedCard(model.model_validate(payload), use)
    except ValidationError as exc:
        raise Refused(invalid(*field_errors(exc, ("encrypted_card",)))) from None


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
    pool: asyncpg.Pool,
    protection: CardProtection,
    merchant_id: str,
    card: CardIn,
    jwe_use: JweUse | None = None,
) -> dict[str, Any]:
    """`pool` may be a transaction's connection: the token's use then commits with the card."""
    if jwe_use is not None:
        await UsedJweRepository(pool).record(jwe_use)
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


class CardNotFound(Exception):
    """No stored card with this token for this merchant."""


async def read_card(pool: asyncpg.Pool, merchant_id: str, token: str) -> dict[str, Any]:
    row = await CardTokenRepository(pool).get(merchant_id, token)
    if row is None:
        raise CardNotFound(token)
    return card_view(row)


async def delete_card(pool: asyncpg.Pool, merchant_id: str, token: str) -> None:
    """The token no longer pays; the row loses its ciphertext."""
    if not await CardTokenRepository(pool).delete(merchant_id, token):
        raise CardNotFound(token)
