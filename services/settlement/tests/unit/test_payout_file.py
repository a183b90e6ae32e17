"""The pain.001.001.03 file and its CSV: well-formed, the right IBANs and amounts from minor
units with each currency's exponent, control sums and transaction counts."""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest

from settlement.domain.payout_file import (
    PAIN_001_NS,
    Debtor,
    Transfer,
    control_sum,
    decimal_amount,
    render_csv,
    render_pain001,
)

NS = {"p": PAIN_001_NS}
DEBTOR = Debtor(
    "sanalpos", {"TRY": "TR280001009999901234567890", "EUR": "TR980001009999901234567891"}
)
TR_IBAN = "TR950006100000000000039595"
DE_IBAN = "DE89370400440532013000"


def transfer(amount: int, currency: str = "TRY", iban: str = TR_IBAN) -> Transfer:
    return Transfer(uuid.uuid4(), "m-1", currency, amount, iban, "Shop  Ltd", date(2026, 11, 3), 2)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (12_345, "TRY", "123.45"),
        (5, "TRY", "0.05"),
        (100, "EUR", "1.00"),
        (500, "JPY", "500"),
        (1_234_567, "KWD", "1234.567"),
        (0, "TRY", "0.00"),
        (10**17 + 1, "TRY", "1000000000000000.01"),
    ],
)
def test_amounts_come_from_minor_units_with_the_currency_exponent(
    amount: int, currency: str, text: str
) -> None:
    assert decimal_amount(amount, currency) == text


def test_a_negative_amount_cannot_be_transferred() -> None:
    with pytest.raises(ValueError):
        decimal_amount(-1, "TRY")


def test_the_control_sum_is_exact() -> None:
    assert control_sum([transfer(10), transfer(20)]) == "0.30"  # 0.1 + 0.2 as a float is not
    assert control_sum([transfer(1, "KWD"), transfer(1, "TRY")]) == "0.011"


def test_the_pain001_file_is_well_formed_with_counts_sums_ibans_and_amounts() -> None:
    transfers = [transfer(1_470_000), transfer(99), transfer(25_050, "EUR", DE_IBAN)]
    created = datetime(2026, 11, 3, 6, 0, 12, 345, tzinfo=UTC)
    xml = render_pain001(transfers, DEBTOR, "SP20261103ABCDEF", created)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = ET.fromstring(xml)  # noqa: S314 - our own output
    assert root.tag == f"{{{PAIN_001_NS}}}Document"
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:MsgId", namespaces=NS) == "SP20261103ABCDEF"
    assert header.findtext("p:CreDtTm", namespaces=NS) == "2026-11-03T06:00:12"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "14951.49"  # 14700.00+0.99+250.50
    blocks = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert [b.findtext("p:DbtrAcct/p:Ccy", namespaces=NS) for b in blocks] == ["EUR", "TRY"]
    eur, try_ = blocks
    assert (eur.findtext("p:NbOfTxs", namespaces=NS), eur.findtext("p:CtrlSum", namespaces=NS)) == (
        "1",
        "250.50",
    )
    assert try_.findtext("p:CtrlSum", namespaces=NS) == "14700.99"
    assert try_.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == DEBTOR.iban_by_currency["TRY"]
    assert try_.findtext("p:ReqdExctnDt", namespaces=NS) == "2026-11-03"
    assert try_.findtext("p:DbtrAgt/p:FinInstnId/p:Othr/p:Id", namespaces=NS) == "NOTPROVIDED"
    txs = try_.findall("p:CdtTrfTxInf", NS)
    amounts = [tx.find("p:Amt/p:InstdAmt", NS) for tx in txs]
    assert [(a.text, a.get("Ccy")) for a in amounts if a is not None] == [
        ("14700.00", "TRY"),
        ("0.99", "TRY"),
    ]
    assert [tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) for tx in txs] == [TR_IBAN] * 2
    assert [tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS) for tx in txs] == [
        t.payout_id.hex for t in transfers[:2]
    ]
    assert txs[0].findtext("p:Cdtr/p:Nm", namespaces=NS) == "Shop Ltd"
    eur_tx = eur.find("p:CdtTrfTxInf", NS)
    assert eur_tx is not None
    assert eur_tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == DE_IBAN


def test_a_file_needs_transfers_and_a_debtor_account_per_currency() -> None:
    now = datetime(2026, 11, 3, tzinfo=UTC)
    with pytest.raises(ValueError):
        render_pain001([], DEBTOR, "SP1", now)
    with pytest.raises(ValueError, match="USD"):
        render_pain001([transfer(100, "USD")], DEBTOR, "SP1", now)


def test_the_csv_lists_the_same_transfers() -> None:
    transfers = [transfer(1_470_000), transfer(500, "JPY")]
    rows = list(csv.DictReader(io.StringIO(render_csv(transfers))))
    assert [(r["creditor_iban"], r["amount_minor"], r["amount"], r["currency"]) for r in rows] == [
        (TR_IBAN, "1470000", "14700.00", "TRY"),
        (TR_IBAN, "500", "500", "JPY"),
    ]
    assert rows[0]["end_to_end_id"] == transfers[0].payout_id.hex
