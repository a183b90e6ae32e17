"""The card-number detector of free text: any Luhn-valid 13-19 digit run, wherever it sits."""

from hypothesis import given
from hypothesis import strategies as st

from sanalpos_common.crypto.card import holds_card_number, luhn_check_digit, luhn_valid

PAN = "4111111111111111"


def test_a_pan_next_to_other_digits_is_found() -> None:
    assert holds_card_number(f"order 20261202{PAN}")
    assert holds_card_number(f"ref{PAN}9")
    assert holds_card_number(f"x 7{PAN}77 y")


def test_a_pan_with_dots_as_separators_is_found() -> None:
    assert holds_card_number("card 4111.1111.1111.1111 thanks")


def test_spaces_and_dashes_still_count_as_separators() -> None:
    assert holds_card_number("4111 1111 1111 1111")
    assert holds_card_number("pan: 4111-1111-1111-1111.")


def test_short_or_non_luhn_runs_and_uuids_are_not_card_numbers() -> None:
    assert not holds_card_number("order 2026-11-26 #1234567890123 (not Luhn)")
    assert not holds_card_number("411111111111")  # 12 digits: below the 13 the detector asks
    assert not holds_card_number("12345678-1234-1234-1234-123456789012")  # a UUID
    assert not holds_card_number("1.5 kg, 3 items, 42 TRY")


def test_runs_of_zeros_are_not_card_numbers() -> None:
    # Luhn-valid, but no card number starts with 0 (ISO/IEC 7812 industry digit)
    assert not holds_card_number("0" * 500)
    assert holds_card_number("0" * 20 + PAN + "0" * 20)


@given(
    st.sampled_from("123456789"),
    st.text(alphabet="0123456789", min_size=11, max_size=17),
    st.text(max_size=20),
)
def test_any_luhn_valid_run_embedded_in_text_is_found(first: str, rest: str, around: str) -> None:
    body = first + rest
    number = body + luhn_check_digit(body)
    assert holds_card_number(f"{around}{number}{around}")


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_a_luhn_valid_run_between_separators_is_found(number: str) -> None:
    if luhn_valid(number) and not number.startswith("0"):
        assert holds_card_number(f"a {number} b")
