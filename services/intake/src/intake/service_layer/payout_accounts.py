"""Payout bank accounts: add (validated IBAN), list, make default, remove. Every change is
announced on merchant.payout-account.v1 through the outbox, in the change's transaction.

The IBAN is the merchant's own and shown back to it; logs only ever carry it masked."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from intake.adapters.payout_accounts import PayoutAccountRepository
from intake.domain.payout_accounts import InvalidPayoutAccount, mask_iban, validated_account
from intake.service_layer.problems import FieldError, Refused, invalid, not_found
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.events import PayoutAccountUpdated

log = logging.getLogger(__name__)


def account_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "object": "payout_account",
        "iban": row["iban"],
        "holder_name": row["holder_name"],
        "currency": row["currency"].strip(),
        "is_default": row["is_default"],
        "created_at": row["created_at"].isoformat(),
    }


def _announcement(row: dict[str, Any], active: bool = True) -> PayoutAccountUpdated:
    return PayoutAccountUpdated(
        account_id=row["id"],
        merchant_id=row["merchant_id"],
        iban=row["iban"],
        holder_name=row["holder_name"],
        currency=row["currency"].strip(),
        is_default=row["is_default"],
        active=active,
        version=row["version"],
    )


async def add_account(
    uow: UnitOfWork,
    merchant_id: str,
    iban_text: str,
    holder_name: str,
    currency: str,
    make_default: bool | None,
) -> dict[str, Any]:
    """The first account of a currency is its default; a later one only when asked."""
    try:
        iban = validated_account(iban_text, currency)
    except InvalidPayoutAccount as exc:
        raise Refused(invalid(FieldError(exc.field, exc.message, exc.code))) from None
    accounts = PayoutAccountRepository(uow.conn)
    await accounts.lock_merchant(merchant_id)
    current = await accounts.default_of(merchant_id, currency)
    becomes_default = current is None or bool(make_default)
    if current is not None and becomes_default:
        await uow.emit(_announcement(await accounts.set_default(current["id"], False)))
    row = await accounts.add(
        uuid.uuid4(), merchant_id, iban.compact, holder_name, currency, becomes_default
    )
    await uow.emit(_announcement(row))
    log.info(
        "payout account %s added (%s, %s, default %s)",
        row["id"],
        mask_iban(iban.compact),
        currency,
        becomes_default,
    )
    return account_view(row)


async def make_default(uow: UnitOfWork, merchant_id: str, account_id: uuid.UUID) -> dict[str, Any]:
    accounts = PayoutAccountRepository(uow.conn)
    await accounts.lock_merchant(merchant_id)
    row = await accounts.get(merchant_id, account_id)
    if row is None:
        raise Refused(not_found("payout account", str(account_id)))
    if row["is_default"]:
        return account_view(row)
    current = await accounts.default_of(merchant_id, row["currency"].strip())
    if current is not None:
        await uow.emit(_announcement(await accounts.set_default(current["id"], False)))
    row = await accounts.set_default(account_id, True)
    await uow.emit(_announcement(row))
    log.info("payout account %s is now the %s default", account_id, row["currency"])
    return account_view(row)


async def remove_account(uow: UnitOfWork, merchant_id: str, account_id: uuid.UUID) -> None:
    """Removing the default makes the newest other account of the currency the default."""
    accounts = PayoutAccountRepository(uow.conn)
    await accounts.lock_merchant(merchant_id)
    row = await accounts.get(merchant_id, account_id)
    if row is None:
        raise Refused(not_found("payout account", str(account_id)))
    removed = await accounts.delete(account_id)
    await uow.emit(_announcement(removed, active=False))
    if row["is_default"]:
        successor = await accounts.newest_other(merchant_id, row["currency"].strip(), account_id)
        if successor is not None:
            await uow.emit(_announcement(await accounts.set_default(successor["id"], True)))
    log.info("payout account %s (%s) removed", account_id, mask_iban(row["iban"]))


async def list_accounts(pool: asyncpg.Pool, merchant_id: str) -> dict[str, Any]:
    rows = await PayoutAccountRepository(pool).listing(merchant_id)
    return {"object": "list", "data": [account_view(r) for r in rows], "has_more": False}


async def read_account(
    pool: asyncpg.Pool, merchant_id: str, account_id: uuid.UUID
) -> dict[str, Any]:
    row = await PayoutAccountRepository(pool).get(merchant_id, account_id)
    if row is None:
        raise Refused(not_found("payout account", str(account_id)))
    return account_view(row)
