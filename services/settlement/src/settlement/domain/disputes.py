"""Disputes (chargebacks): the state machine and the ledger transactions. Pure: no I/O.

    needs_response --accept------------------------> lost   (accepted)
    needs_response --evidence----------------------> under_review
    needs_response --deadline (+ grace) passed-----> lost   (no_response)
    needs_response | under_review --issuer ruling--> won | lost (issuer_won / issuer_lost)

A merchant answers once, before `respond_by`; the issuer may rule at any time before the
dispute is final (a ruling on a dispute with no answer is the issuer's call).

Ledger: raising it holds the amount (merchant payable -> the merchant's dispute hold account);
won releases it (hold -> payable); lost sends it back to the card scheme (hold -> acquirer
clearing) and debits the dispute fee (payable -> fee revenue). Every move that touches the
payable is booked in the merchant's open end-of-day batch, so the batch's net and hence the
payout netting rule (domain/payouts.py) never pay out held money.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sanalpos_common.schemas.events import DisputeResponse, DisputeStatus
from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    Direction,
    Entry,
    Kind,
    LedgerTransaction,
    assert_balanced,
    merchant_payable,
)

FINAL = frozenset({DisputeStatus.WON, DisputeStatus.LOST})


def dispute_hold_account(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:dispute_hold"


class DisputeRefused(Exception):
    """A transition the dispute's state does not allow; `code` names it for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Dispute:
    dispute_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str
    reason_code: str
    reason: str
    respond_by: datetime
    fee: int
    status: DisputeStatus = DisputeStatus.NEEDS_RESPONSE
    response: DisputeResponse | None = None
    responded_at: datetime | None = None
    outcome_reason: str | None = None
    version: int = 1

    @property
    def held(self) -> int:
        return 0 if self.status in FINAL else self.amount

    def respond(self, response: DisputeResponse, at: datetime) -> Dispute:
        """The merchant's answer, judged by when the merchant gave it (not when it arrived)."""
        if self.status in FINAL:
            raise DisputeRefused("dispute_closed", f"the dispute is already {self.status}")
        if self.response is not None:
            raise DisputeRefused("already_responded", "the dispute was already answered")
        if at > self.respond_by:
            raise DisputeRefused("deadline_passed", "the deadline to respond has passed")
        if response is DisputeResponse.ACCEPT:
            return self._next(DisputeStatus.LOST, "accepted", response=response, responded_at=at)
        return self._next(DisputeStatus.UNDER_REVIEW, None, response=response, responded_at=at)

    def decide(self, won: bool) -> Dispute:
        if self.status in FINAL:
            raise DisputeRefused("dispute_closed", f"the dispute is already {self.status}")
        if won:
            return self._next(DisputeStatus.WON, "issuer_won")
        return self._next(DisputeStatus.LOST, "issuer_lost")

    def expire(self, now: datetime, grace: timedelta) -> Dispute | None:
        """Lost for want of an answer, once the deadline and a grace period passed (the grace
        lets an answer given just before the deadline arrive). None: not (yet) expired."""
        if self.status is not DisputeStatus.NEEDS_RESPONSE or now <= self.respond_by + grace:
            return None
        return self._next(DisputeStatus.LOST, "no_response")

    def _next(
        self,
        status: DisputeStatus,
        outcome_reason: str | None,
        *,
        response: DisputeResponse | None = None,
        responded_at: datetime | None = None,
    ) -> Dispute:
        return replace(
            self,
            status=status,
            outcome_reason=outcome_reason,
            response=response or self.response,
            responded_at=responded_at or self.responded_at,
            version=self.version + 1,
        )


def _transaction(dispute: Dispute, kind: Kind, entries: list[Entry]) -> LedgerTransaction:
    transaction = LedgerTransaction(
        id=uuid.uuid5(dispute.dispute_id, kind),
        payment_id=dispute.dispute_id,
        merchant_id=dispute.merchant_id,
        kind=kind,
        entries=tuple(entries),
    )
    assert_balanced(transaction.entries)
    return transaction


def hold_transaction(dispute: Dispute) -> LedgerTransaction:
    m, amount, currency = dispute.merchant_id, dispute.amount, dispute.currency
    return _transaction(
        dispute,
        Kind.DISPUTE_HOLD,
        [
            Entry(merchant_payable(m), Direction.DEBIT, amount, currency),
            Entry(dispute_hold_account(m), Direction.CREDIT, amount, currency),
        ],
    )


def outcome_transactions(dispute: Dispute) -> list[LedgerTransaction]:
    """What a final dispute books: the release when won; the loss and the fee when lost."""
    m, amount, currency = dispute.merchant_id, dispute.amount, dispute.currency
    if dispute.status is DisputeStatus.WON:
        return [
            _transaction(
                dispute,
                Kind.DISPUTE_RELEASE,
                [
                    Entry(dispute_hold_account(m), Direction.DEBIT, amount, currency),
                    Entry(merchant_payable(m), Direction.CREDIT, amount, currency),
                ],
            )
        ]
    if dispute.status is not DisputeStatus.LOST:
        raise ValueError(f"a dispute {dispute.status} has no outcome to book")
    booked = [
        _transaction(
            dispute,
            Kind.DISPUTE_LOSS,
            [
                Entry(dispute_hold_account(m), Direction.DEBIT, amount, currency),
                Entry(CLEARING, Direction.CREDIT, amount, currency),
            ],
        )
    ]
    if dispute.fee > 0:
        booked.append(
            _transaction(
                dispute,
                Kind.DISPUTE_FEE,
                [
                    Entry(merchant_payable(m), Direction.DEBIT, dispute.fee, currency),
                    Entry(FEE_REVENUE, Direction.CREDIT, dispute.fee, currency),
                ],
            )
        )
    return booked


def payable_change(transaction: LedgerTransaction) -> int:
    """The signed change the transaction makes to its merchant's payable (credit = +)."""
    account = merchant_payable(transaction.merchant_id)
    return sum(
        e.amount if e.direction is Direction.CREDIT else -e.amount
        for e in transaction.entries
        if e.account == account
    )


def disputable(captured: int, refunded: int, disputed: int, amount: int) -> bool:
    """A dispute may claim at most what was captured less refunds and earlier disputes."""
    return 0 < amount <= captured - refunded - disputed
