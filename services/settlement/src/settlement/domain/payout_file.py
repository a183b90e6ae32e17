"""The payout file for the bank: ISO 20022 pain.001.001.03 customer credit transfer XML, built
with the standard library's xml.etree.ElementTree (namespaced, no extra dependency), and the
same transfers as CSV. Pure: returns bytes/text, the caller writes them.

One payment information block (PmtInf) per currency, since the debtor account (ours) is held
per currency; the group header counts and sums every transfer. Amounts come from integer minor
units with the currency's ISO 4217 exponent, never through a float.
"""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sanalpos_common.money import currency_exponent

PAIN_001_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
CSV_COLUMNS = (
    "end_to_end_id",
    "payout_id",
    "merchant_id",
    "currency",
    "amount_minor",
    "amount",
    "creditor_iban",
    "creditor_name",
    "value_date",
    "batches",
)


@dataclass(frozen=True)
class Transfer:
    payout_id: uuid.UUID
    merchant_id: str
    currency: str
    amount: int
    """Minor units, positive."""
    iban: str
    holder_name: str
    value_date: date
    batch_count: int

    @property
    def end_to_end_id(self) -> str:
        return self.payout_id.hex  # 32 characters: within the 35 the scheme allows


@dataclass(frozen=True)
class Debtor:
    """The platform's own settlement account the transfers are paid from."""

    name: str
    iban_by_currency: dict[str, str]
    bic: str | None = None


def decimal_amount(amount: int, currency: str) -> str:
    """Minor units as the decimal text ISO 20022 takes: 12345 TRY -> "123.45", 500 JPY -> "500"."""
    if amount < 0:
        raise ValueError("a transfer amount cannot be negative")
    exponent = currency_exponent(currency)
    units, minor = divmod(amount, 10**exponent)
    return f"{units}.{minor:0{exponent}d}" if exponent else str(units)


def control_sum(transfers: Sequence[Transfer]) -> str:
    """The plain sum of every instructed amount (whatever its currency), exact."""
    total = sum(
        (Decimal(decimal_amount(t.amount, t.currency)) for t in transfers), start=Decimal(0)
    )
    places = max((currency_exponent(t.currency) for t in transfers), default=0)
    return f"{total:.{places}f}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{PAIN_001_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _name(text: str) -> str:
    return " ".join(text.split())[:70]


def render_pain001(
    transfers: Sequence[Transfer], debtor: Debtor, message_id: str, created_at: datetime
) -> bytes:
    if not transfers:
        raise ValueError("a payout file needs at least one transfer")
    missing = {t.currency for t in transfers} - set(debtor.iban_by_currency)
    if missing:
        raise ValueError(f"no debtor account for {sorted(missing)}")
    if len(message_id) > 35:
        raise ValueError("MsgId is at most 35 characters")
    ET.register_namespace("", PAIN_001_NS)
    document = ET.Element(f"{{{PAIN_001_NS}}}Document")
    initiation = _sub(document, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", message_id)
    _sub(header, "CreDtTm", created_at.replace(microsecond=0, tzinfo=None).isoformat())
    _sub(header, "NbOfTxs", str(len(transfers)))
    _sub(header, "CtrlSum", control_sum(transfers))
    _sub(_sub(header, "InitgPty"), "Nm", _name(debtor.name))
    for currency in sorted({t.currency for t in transfers}):
        block = [t for t in transfers if t.currency == currency]
        execution = min(t.value_date for t in block)
        info = _sub(initiation, "PmtInf")
        _sub(info, "PmtInfId", f"{message_id}-{currency}"[:35])
        _sub(info, "PmtMtd", "TRF")
        _sub(info, "NbOfTxs", str(len(block)))
        _sub(info, "CtrlSum", control_sum(block))
        _sub(info, "ReqdExctnDt", execution.isoformat())
        _sub(_sub(info, "Dbtr"), "Nm", _name(debtor.name))
        account = _sub(info, "DbtrAcct")
        _sub(_sub(account, "Id"), "IBAN", debtor.iban_by_currency[currency])
        _sub(account, "Ccy", currency)
        institution = _sub(_sub(info, "DbtrAgt"), "FinInstnId")
        if debtor.bic:
            _sub(institution, "BIC", debtor.bic)
        else:
            _sub(_sub(institution, "Othr"), "Id", "NOTPROVIDED")
        _sub(info, "ChrgBr", "SLEV")
        for transfer in block:
            tx = _sub(info, "CdtTrfTxInf")
            ids = _sub(tx, "PmtId")
            _sub(ids, "InstrId", transfer.end_to_end_id)
            _sub(ids, "EndToEndId", transfer.end_to_end_id)
            _sub(
                _sub(tx, "Amt"),
                "InstdAmt",
                decimal_amount(transfer.amount, currency),
                Ccy=currency,
            )
            _sub(_sub(tx, "Cdtr"), "Nm", _name(transfer.holder_name))
            _sub(_sub(_sub(tx, "CdtrAcct"), "Id"), "IBAN", transfer.iban)
            _sub(
                _sub(tx, "RmtInf"),
                "Ustrd",
                f"sanalpos payout {transfer.payout_id} value date {transfer.value_date}",
            )
    body: bytes = ET.tostring(document, encoding="UTF-8", xml_declaration=True)
    return body


def render_csv(transfers: Sequence[Transfer]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for t in transfers:
        writer.writerow(
            [
                t.end_to_end_id,
                t.payout_id,
                t.merchant_id,
                t.currency,
                t.amount,
                decimal_amount(t.amount, t.currency),
                t.iban,
                _name(t.holder_name),
                t.value_date.isoformat(),
                t.batch_count,
            ]
        )
    return out.getvalue()
