"""Multi-currency: which batch a captured payment goes to, its conversion fixed at capture,
reversals and refunds of converted payments, and the rates settlement holds (from rate files
or set by hand), each announced as settlement.fx-rate.v1 for intake.

A payment is converted only at a rate fresh at the moment of its capture; without one it is
settled in its own currency (status no_rate) and never converted later or at a stale rate.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.events import FxRateUpdated
from settlement.adapters.batches import CapturedPayment
from settlement.adapters.fx import FxRateRepository, PaymentConversion, PaymentConversionRepository
from settlement.domain.fx import (
    Conversion,
    Quote,
    Rate,
    RateSource,
    convert,
    markup,
    parse_rate_file,
    stored,
)
from settlement.domain.fx_ledger import (
    conversion_transaction,
    converted_refund_transaction,
    converted_reversal,
    markup_transaction,
)
from settlement.domain.ledger import Kind, LedgerTransaction, reversal_transaction
from settlement.domain.merchants import MerchantProfile
from settlement.service_layer.ports import LedgerStore

log = logging.getLogger(__name__)

DEFAULT_MAX_RATE_AGE = timedelta(hours=96)


@dataclass(frozen=True)
class FxChoice:
    target: str | None = None
    """The merchant's settlement currency when it converts this currency; None otherwise."""
    conversion: Conversion | None = None
    """The rate fresh at capture; None with a target: no fresh rate, settled in currency."""

    def batch_currency(self, currency: str) -> str:
        return self.target if self.target and self.conversion else currency


async def choose(
    uow: UnitOfWork, profile: MerchantProfile, currency: str, captured_at: datetime
) -> FxChoice:
    target = profile.conversion_target(currency)
    if target is None:
        return FxChoice()
    found = await FxRateRepository(uow.conn).conversion(currency, target, captured_at)
    if found is None:
        log.warning(
            "no fresh %s/%s rate at capture (%s): settled in %s, not converted",
            currency,
            target,
            captured_at.isoformat(),
            currency,
        )
    return FxChoice(target, found)


async def book_conversion(
    uow: UnitOfWork,
    ledger: LedgerStore,
    payment: CapturedPayment,
    choice: FxChoice,
    profile: MerchantProfile,
    batch_id: uuid.UUID,
    captured_at: datetime,
) -> None:
    """Books the payment's conversion and markup in its settlement-currency batch and keeps
    the rate it was fixed at; or records that it was settled in its own currency."""
    assert choice.target is not None
    net = payment.gross - payment.fee
    conversions = PaymentConversionRepository(uow.conn)
    c = choice.conversion
    if c is None:
        await conversions.add(
            PaymentConversion(
                payment.payment_id,
                "no_rate",
                payment.currency,
                net,
                choice.target,
                fixed_at=captured_at,
            )
        )
        return
    converted = convert(net, payment.currency, choice.target, c.rate_value)
    fx_markup = markup(converted, profile.fx_markup_bps)
    await ledger.record(
        conversion_transaction(
            payment.payment_id,
            payment.merchant_id,
            net,
            payment.currency,
            converted,
            choice.target,
        ),
        batch_id,
    )
    markup_line = markup_transaction(
        payment.payment_id, payment.merchant_id, fx_markup, choice.target
    )
    if markup_line is not None:
        await ledger.record(markup_line, batch_id)
    await conversions.add(
        PaymentConversion(
            payment_id=payment.payment_id,
            status="converted",
            currency=payment.currency,
            amount=net,
            settlement_currency=choice.target,
            converted_amount=converted,
            markup_bps=profile.fx_markup_bps,
            markup_amount=fx_markup,
            rate_id=c.rate.id,
            rate=c.rate_value,
            rate_source=c.rate.source.value,
            rate_as_of=c.rate.as_of,
            fixed_at=captured_at,
        )
    )
    log.info(
        "converted %d %s into %d %s at %s (%s rate %s), markup %d",
        net,
        payment.currency,
        converted,
        choice.target,
        c.rate_value,
        c.rate.source,
        c.rate.id,
        fx_markup,
    )


async def fx_lines(ledger: LedgerStore, payment_id: uuid.UUID) -> tuple[LedgerTransaction, ...]:
    """The conversion and markup of a converted payment; () for any other."""
    found = [
        await ledger.get(uuid.uuid5(payment_id, kind))
        for kind in (Kind.FX_CONVERSION, Kind.FX_MARKUP)
    ]
    return tuple(t for t in found if t is not None)


def reversal(capture: LedgerTransaction, fx: tuple[LedgerTransaction, ...]) -> LedgerTransaction:
    if not fx:
        return reversal_transaction(capture)
    return converted_reversal(capture, *fx, batch_currency=fx[0].currency)


def batch_currency_of(payment: CapturedPayment, fx: tuple[LedgerTransaction, ...]) -> str:
    """A converted payment's reversal or refund goes to its settlement-currency batches."""
    return fx[0].currency if fx else payment.currency


async def refund_transaction_for(
    uow: UnitOfWork,
    refund_id: uuid.UUID,
    payment_id: uuid.UUID,
    merchant_id: str,
    amount: int,
    currency: str,
) -> tuple[LedgerTransaction, str] | None:
    """A refund of a converted payment, at the rate fixed at its capture, and the batch
    currency it belongs to; None when the payment was not converted."""
    conversion = await PaymentConversionRepository(uow.conn).get(payment_id)
    if conversion is None or conversion.status != "converted" or currency != conversion.currency:
        return None
    assert conversion.rate is not None
    converted = convert(amount, currency, conversion.settlement_currency, conversion.rate)
    transaction = converted_refund_transaction(
        refund_id,
        payment_id,
        merchant_id,
        amount,
        currency,
        converted,
        conversion.settlement_currency,
    )
    return transaction, conversion.settlement_currency


def fx_settled_fields(conversion: PaymentConversion | None) -> dict[str, Any]:
    """payment.settled's optional FX fields for a converted payment; {} for any other."""
    if conversion is None or conversion.converted_amount is None:
        return {}
    fx_markup = conversion.markup_amount or 0
    return {
        "settlement_currency": conversion.settlement_currency,
        "settlement_net_amount": conversion.converted_amount - fx_markup,
        "fx_markup_amount": fx_markup,
        "fx_rate_id": conversion.rate_id,
        "fx_rate": conversion.rate,
    }


def _announcement(rate: Rate) -> FxRateUpdated:
    return FxRateUpdated(
        rate_id=rate.id,
        base=rate.base,
        quote=rate.quote,
        rate=rate.rate,
        source=rate.source.value,
        as_of=rate.as_of,
        valid_until=rate.valid_until,
    )


async def store_rates(uow: UnitOfWork, quotes: list[Quote], max_age: timedelta) -> list[Rate]:
    """Stores the rates not held yet and announces each; returns the new ones."""
    repository = FxRateRepository(uow.conn)
    added = []
    for quote in quotes:
        rate = stored(quote, max_age)
        if await repository.add(rate):
            await uow.emit(_announcement(rate))
            added.append(rate)
    return added


async def load_rate_file(
    uow: UnitOfWork, source: RateSource, raw: bytes, max_age: timedelta
) -> tuple[int, list[Rate]]:
    """Parses a TCMB or ECB file (RateFileError when it is not one); (rates in the file,
    rates new to settlement)."""
    quotes = parse_rate_file(source, raw)
    return len(quotes), await store_rates(uow, quotes, max_age)


async def set_rate(
    uow: UnitOfWork,
    base: str,
    quote: str,
    rate: Decimal,
    as_of: datetime,
    valid_for: timedelta,
) -> Rate:
    """A rate set by hand (admin API): its own id, fresh from `as_of` for `valid_for`."""
    stored_rate = stored(
        Quote(base, quote, rate, RateSource.MANUAL, as_of), valid_for, uuid.uuid4()
    )
    await FxRateRepository(uow.conn).add(stored_rate)
    await uow.emit(_announcement(stored_rate))
    return stored_rate
