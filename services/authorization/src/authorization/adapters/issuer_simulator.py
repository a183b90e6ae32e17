"""An issuer that owns card accounts in our database. Real processors plug in behind
the same `authorize` / `capture` / `release` / `reverse` / `refund` calls.

Invariant per card and currency: limit = available + open holds + (captured - refunded) of
captured holds. Released and reversed holds no longer count.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncpg import Record

from authorization.domain.issuer import (
    Behaviour,
    CardAccount,
    ResponseCode,
    SimulatorCard,
    behaviour_for_new_card,
    new_auth_code,
    screen,
)
from sanalpos_common.db import Connection
from sanalpos_common.money import currency_exponent


@dataclass(frozen=True)
class AuthorizationRequest:
    payment_id: object
    pan: str
    cvc: str | None
    exp_month: int
    exp_year: int
    amount: int
    currency: str
    capture: bool = False
    """A sale: the hold is captured in full as it is placed."""


@dataclass(frozen=True)
class IssuerResponse:
    response_code: ResponseCode
    auth_code: str | None

    @property
    def approved(self) -> bool:
        return self.response_code is ResponseCode.APPROVED


class IssuerSimulator:
    def __init__(self, issuer_key: bytes, default_limit_major: int) -> None:
        self._key = issuer_key
        self._default_limit = default_limit_major

    def card_ref(self, pan: str) -> str:
        return "ir1_" + hmac.new(self._key, pan.encode(), hashlib.sha256).hexdigest()

    async def seed(self, conn: Connection, cards: tuple[SimulatorCard, ...]) -> None:
        await conn.executemany(
            "INSERT INTO card_accounts (card_ref, last4, behaviour, exp_month, exp_year, limit_major) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (card_ref) DO UPDATE SET "
            "behaviour = EXCLUDED.behaviour, exp_month = EXCLUDED.exp_month, "
            "exp_year = EXCLUDED.exp_year, limit_major = EXCLUDED.limit_major",
            [
                (
                    self.card_ref(c.pan),
                    c.pan[-4:],
                    c.behaviour.value,
                    c.exp_month,
                    c.exp_year,
                    c.limit_major,
                )
                for c in cards
            ],
        )

    async def authorize(self, conn: Connection, request: AuthorizationRequest) -> IssuerResponse:
        """Screen the card, then place a hold if the limit allows (captured at once for a sale).
        Runs in the caller's transaction.

        One statement when the card's account is the one this call would open for it (a new
        card, or one first seen with the same expiry) and the amount is within its limit:
        the account is read or opened, and the funds taken and held, together. Otherwise
        the statement only reads (or opens) the account, which is screened here; a decline
        ends there, an approvable one costs two statements more (open the balance, then take
        the funds and place the hold), as before."""
        today = datetime.now(UTC).date()
        behaviour, limit = behaviour_for_new_card(request.pan, self._default_limit)
        expected = CardAccount(
            self.card_ref(request.pan),
            request.pan[-4:],
            behaviour,
            request.exp_month,
            request.exp_year,
            limit,
        )
        # Screening the expected account answers for the account in the database whenever
        # the two agree on every screened field (the statement checks that they do).
        spend = (
            screen(expected, request.exp_month, request.exp_year, today) is None
            and _limit_minor(expected, request.currency) >= request.amount
        )
        row = await conn.fetchrow(
            _ACCOUNT_AND_SPEND,
            expected.card_ref,
            expected.last4,
            expected.behaviour.value,
            expected.exp_month,
            expected.exp_year,
            expected.limit_major,
            spend,
            request.currency,
            request.amount,
            request.payment_id,
            "captured" if request.capture else "held",
            request.amount if request.capture else 0,
            _limit_minor(expected, request.currency) - request.amount,
        )
        assert row is not None
        if spend and row["expected"]:
            remaining = row["remaining"]
        else:
            account = _account(row)
            declined = screen(account, request.exp_month, request.exp_year, today)
            if declined is not None:
                return IssuerResponse(declined, None)
            remaining = await self._spend(conn, account, request)
        if remaining is None:
            return IssuerResponse(ResponseCode.INSUFFICIENT_FUNDS, None)
        return IssuerResponse(ResponseCode.APPROVED, new_auth_code())

    async def capture(self, conn: Connection, payment_id: object, amount: int) -> None:
        """Capture up to the held amount; the remainder goes back to the card's available limit."""
        hold = await conn.fetchrow(
            "UPDATE holds SET status = 'captured', captured_amount = $2 "
            "WHERE payment_id = $1 AND status = 'held' AND amount >= $2 "
            "RETURNING card_ref, currency, amount",
            payment_id,
            amount,
        )
        if hold is None:
            raise ValueError("no open hold large enough to capture")
        await self._credit(conn, hold, hold["amount"] - amount)

    async def release(self, conn: Connection, payment_id: object) -> int:
        """Cancel an open hold (void before capture, expiry); returns the amount released."""
        return await self._give_back(
            conn,
            "UPDATE holds SET status = 'released' WHERE payment_id = $1 AND status = 'held' "
            "RETURNING card_ref, currency, amount AS given_back",
            payment_id,
            "no open hold to release",
        )

    async def reverse(self, conn: Connection, payment_id: object) -> int:
        """Undo a capture that has no refunds (void after capture); returns the amount given back."""
        return await self._give_back(
            conn,
            "UPDATE holds SET status = 'reversed' "
            "WHERE payment_id = $1 AND status = 'captured' AND refunded_amount = 0 "
            "RETURNING card_ref, currency, captured_amount AS given_back",
            payment_id,
            "no unrefunded capture to reverse",
        )

    async def _give_back(
        self, conn: Connection, update: str, payment_id: object, refused: str
    ) -> int:
        """Close a hold with `update` (which returns the amount as `given_back`) and credit
        that amount back to the card."""
        hold = await conn.fetchrow(update, payment_id)
        if hold is None:
            raise ValueError(refused)
        await self._credit(conn, hold, hold["given_back"])
        return int(hold["given_back"])

    async def refund(self, conn: Connection, payment_id: object, amount: int) -> None:
        """Credit the card with part of a capture; all refunds together at most the capture."""
        hold = await conn.fetchrow(
            "UPDATE holds SET refunded_amount = refunded_amount + $2 "
            "WHERE payment_id = $1 AND status = 'captured' "
            "AND refunded_amount + $2 <= captured_amount RETURNING card_ref, currency",
            payment_id,
            amount,
        )
        if hold is None:
            raise ValueError("no capture with that much left to refund")
        await self._credit(conn, hold, amount)

    @staticmethod
    async def _credit(conn: Connection, hold: Mapping[str, Any] | Record, amount: int) -> None:
        if amount:
            await conn.execute(
                "UPDATE account_balances SET available = available + $3 "
                "WHERE card_ref = $1 AND currency = $2",
                hold["card_ref"],
                hold["currency"],
                amount,
            )

    @staticmethod
    async def _spend(
        conn: Connection, account: CardAccount, request: AuthorizationRequest
    ) -> int | None:
        """Open the card's balance in this currency if it is not yet, then take the amount
        and place the hold; the balance left, or None when it was too small."""
        await conn.execute(
            "INSERT INTO account_balances (card_ref, currency, available) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            account.card_ref,
            request.currency,
            _limit_minor(account, request.currency),
        )
        # The conditional decrement takes the row lock: two payments can never spend one limit.
        remaining: int | None = await conn.fetchval(
            "WITH spent AS ("
            " UPDATE account_balances SET available = available - $3"
            " WHERE card_ref = $1 AND currency = $2 AND available >= $3"
            " RETURNING card_ref, available"
            "), hold AS ("
            " INSERT INTO holds (payment_id, card_ref, currency, amount, status, captured_amount)"
            " SELECT $4, card_ref, $2, $3, $5, $6 FROM spent"
            ") SELECT available FROM spent",
            account.card_ref,
            request.currency,
            request.amount,
            request.payment_id,
            "captured" if request.capture else "held",
            request.amount if request.capture else 0,
        )
        return remaining


def _limit_minor(account: CardAccount, currency: str) -> int:
    return account.limit_major * 10 ** currency_exponent(currency)


def _account(row: Record) -> CardAccount:
    return CardAccount(
        card_ref=row["card_ref"],
        last4=row["last4"],
        behaviour=Behaviour(row["behaviour"]),
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        limit_major=row["limit_major"],
    )


# The card's account, opened as $1..$6 when it has none. When $7 (the caller screened
# $1..$6 as approvable and their limit covers the amount $9) and the account agrees with
# $1..$6 on every screened field (`expected`), the amount is also taken from the balance
# (opened at the limit less the amount, $13, when it is not yet) and the hold placed;
# `remaining` is NULL when the balance was too small or nothing was taken. The upsert waits
# for and locks the balance row as the conditional UPDATE it replaces did (and keeps the
# lock when the balance is too small): two payments can never spend one limit.
_ACCOUNT_AND_SPEND = """
WITH found AS (
    SELECT * FROM card_accounts WHERE card_ref = $1
), created AS (
    INSERT INTO card_accounts (card_ref, last4, behaviour, exp_month, exp_year, limit_major)
    SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT FROM found)
    -- A no-op on a non-key column: it returns the row a concurrent first payment opened and
    -- locks it FOR NO KEY UPDATE, which the foreign keys' KEY SHARE checks (balances, holds)
    -- of other payments of the card do not wait for (SET card_ref would, and deadlock).
    ON CONFLICT (card_ref) DO UPDATE SET last4 = card_accounts.last4
    RETURNING *
), account AS (
    SELECT *, (behaviour = $3 AND exp_month = $4 AND exp_year = $5 AND limit_major = $6)
        AS expected
    FROM (SELECT * FROM found UNION ALL SELECT * FROM created) AS a
), spent AS (
    INSERT INTO account_balances AS b (card_ref, currency, available)
    SELECT card_ref, $8, $13
    FROM account WHERE $7 AND expected
    ON CONFLICT (card_ref, currency) DO UPDATE SET available = b.available - $9
    WHERE b.available >= $9
    RETURNING available
), hold AS (
    INSERT INTO holds (payment_id, card_ref, currency, amount, status, captured_amount)
    SELECT $10, $1, $8, $9, $11, $12 FROM spent
)
SELECT account.*, (SELECT available FROM spent) AS remaining FROM account
"""
