"""The rule expression language: what parses, what is refused, how it evaluates."""

from __future__ import annotations

import pytest

from fraud.domain.expressions import InvalidExpression, parse
from fraud.domain.policy import ATTRIBUTES

NAMES = ATTRIBUTES.keys()


def holds(source: str, lists: dict[str, set[str]] | None = None, **attributes: object) -> bool:
    flat = {name.replace("__", "."): value for name, value in attributes.items()}
    return parse(source, NAMES).evaluate(flat, lists or {})


def test_velocity_and_amount() -> None:
    rule = "card.velocity_1h_count > 5 and amount > 500000"
    assert holds(rule, card__velocity_1h_count=6, amount=500001)
    assert not holds(rule, card__velocity_1h_count=5, amount=900000)
    assert not holds(rule, card__velocity_1h_count=9, amount=500000)


def test_comparison_with_an_unknown_value_is_false_except_presence_tests() -> None:
    assert not holds("ip_country != card_country", ip_country="TR", card_country=None)
    assert holds("ip_country != card_country", ip_country="TR", card_country="DE")
    assert not holds("amount > 5", amount=None)
    assert holds("customer.email == None", customer__email=None)
    assert not holds("customer.email != None", customer__email=None)


def test_list_membership_and_literal_lists() -> None:
    lists = {"block_emails": {"bad@example.com"}}
    rule = "customer.email in @block_emails"
    assert holds(rule, lists, customer__email="bad@example.com")
    assert not holds(rule, lists, customer__email="ok@example.com")
    assert holds("currency in ['USD', 'EUR'] and not capture", currency="EUR", capture=False)
    assert holds("customer.email not in @block_emails", lists, customer__email="ok@example.com")


def test_arithmetic_and_type_mismatch() -> None:
    assert holds("amount / installments > 1000", amount=9000, installments=3)
    assert not holds("amount / installments > 1000", amount=9000, installments=0)
    assert not holds("currency > 5", currency="TRY")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("amount > ", "syntax error"),
        ("card.velocity_2h_count > 5", "unknown attribute: card.velocity_2h_count"),
        ("__import__('os').system('x')", "Call is not allowed"),
        ("amount.__class__ > 1", "unknown attribute"),
        ("[x for x in amount]", "ListComp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("amount if capture else 0", "IfExp is not allowed"),
        ("customer.email in @", "must be followed by a list name"),
        ("amount @ amount", "syntax error"),
        ("card.bin[0] == '4'", "Subscript is not allowed"),
        ("amount is None", "only ==, !=, <, <=, >, >=, in, not in compare"),
        ("", "empty"),
    ],
)
def test_refused(source: str, message: str) -> None:
    with pytest.raises(InvalidExpression, match=message):
        parse(source, NAMES)


def test_unknown_list_is_refused_when_lists_are_known() -> None:
    with pytest.raises(InvalidExpression, match="unknown list: @nope"):
        parse("customer.email in @nope", NAMES, ["block_emails"])
    assert parse("customer.email in @block_emails", NAMES, ["block_emails"]).lists == {
        "block_emails"
    }
