from datetime import date

from authorization.domain.issuer import (
    Behaviour,
    CardAccount,
    ResponseCode,
    behaviour_for_new_card,
    card_expired,
    new_auth_code,
    screen,
)
from authorization.domain.seed_cards import SIMULATOR_CARDS
from sanalpos_common.crypto.card import luhn_valid

TODAY = date(2026, 11, 26)


def account(
    behaviour: Behaviour = Behaviour.APPROVE, exp: tuple[int, int] = (12, 2030)
) -> CardAccount:
    return CardAccount("ref", "1111", behaviour, exp[0], exp[1], 1000)


def test_screen_passes_a_healthy_card_to_the_limit_check() -> None:
    assert screen(account(), 12, 2030, TODAY) is None


def test_screen_declines_by_behaviour_and_expiry() -> None:
    assert screen(account(Behaviour.DO_NOT_HONOUR), 12, 2030, TODAY) is ResponseCode.DO_NOT_HONOUR
    assert screen(account(Behaviour.EXPIRED), 12, 2030, TODAY) is ResponseCode.EXPIRED_CARD
    assert screen(account(exp=(10, 2026)), 12, 2030, TODAY) is ResponseCode.EXPIRED_CARD
    assert screen(account(), 10, 2026, TODAY) is ResponseCode.EXPIRED_CARD


def test_card_expires_after_its_month() -> None:
    assert not card_expired(11, 2026, TODAY)
    assert card_expired(10, 2026, TODAY)


def test_response_codes_are_iso8583_style() -> None:
    assert ResponseCode.INSUFFICIENT_FUNDS.value == "51"
    assert ResponseCode.INSUFFICIENT_FUNDS.description == "insufficient funds"


def test_auth_codes_are_six_alphanumerics_and_vary() -> None:
    codes = {new_auth_code() for _ in range(50)}
    assert all(len(c) == 6 and c.isalnum() for c in codes)
    assert len(codes) > 40


def test_documented_test_cards_are_luhn_valid_and_distinct() -> None:
    pans = [c.pan for c in SIMULATOR_CARDS]
    assert len(set(pans)) == len(pans)
    assert all(luhn_valid(p) for p in pans)


def test_unknown_cards_take_their_test_range_behaviour() -> None:
    assert behaviour_for_new_card("4000009912345678", 50_000) == (Behaviour.APPROVE, 10)
    assert behaviour_for_new_card("4000000212345678", 50_000)[0] is Behaviour.DO_NOT_HONOUR
    assert behaviour_for_new_card("4000006912345678", 50_000)[0] is Behaviour.EXPIRED
    assert behaviour_for_new_card("4242424242424242", 50_000) == (Behaviour.APPROVE, 50_000)
