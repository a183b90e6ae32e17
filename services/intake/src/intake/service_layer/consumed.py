"""Everything intake's Kafka consumer handles: the payment outcomes that drive its read model,
settlement's closed batches and payouts behind the merchant's balance. One table, one consumer group."""

from __future__ import annotations

from intake.service_layer.balance import on_batch_closed
from intake.service_layer.disputes import on_dispute_updated
from intake.service_layer.fx import on_fx_rate_updated
from intake.service_layer.lifecycle import outcome_handlers
from intake.service_layer.payouts import on_payout_updated
from intake.service_layer.statements import on_ledger_day
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.metrics import AuthorizationLatency
from sanalpos_common.schemas.events import (
    BatchClosed,
    DisputeUpdated,
    FxRateUpdated,
    LedgerDaySummarized,
    PayoutUpdated,
)


def consumer_handlers(latency: AuthorizationLatency | None = None) -> HandlerTable:
    """The outcome registry's handlers plus the balance's; `latency` as in outcome_handlers."""
    return HandlerTable(
        {
            **outcome_handlers(latency),
            BatchClosed: on_batch_closed,
            PayoutUpdated: on_payout_updated,
            LedgerDaySummarized: on_ledger_day,
            DisputeUpdated: on_dispute_updated,
            FxRateUpdated: on_fx_rate_updated,  # issue 13, fx
        }
    )


CONSUMER_HANDLERS = consumer_handlers()
"""Intake's consumer: every outcome type, settlement.batch-closed.v1 and
settlement.payout-updated.v1, settlement.ledger-day.v1 (statements) and
settlement.dispute-updated.v1, and settlement.fx-rate.v1 (rates for the no-rate refusal)."""
