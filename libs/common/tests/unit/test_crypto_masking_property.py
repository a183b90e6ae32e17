"""Property tests for PAN masking (PCI DSS v4 3.4.1: at most BIN and last four displayed)."""

from hypothesis import given
from hypothesis import strategies as st

from sanalpos_common.crypto.card import mask

digits = st.text(alphabet="0123456789", min_size=0, max_size=19)


@given(digits, st.sampled_from([6, 8]))
def test_mask_shows_at_most_bin_and_last_four(number: str, first: int) -> None:
    masked = mask(number, first=first)
    assert len(masked) == len(number)
    allowed_first = first if len(number) >= 16 else 6
    shown_first = len(masked) - len(masked.lstrip("0123456789"))
    shown_last = len(masked) - len(masked.rstrip("0123456789"))
    middle = masked[shown_first : len(masked) - shown_last]
    assert set(middle) <= {"*"}
    if len(number) < 7:
        assert masked == "*" * len(number)
        return
    assert shown_first <= allowed_first
    assert shown_last == 4
    assert len(number) - shown_first - shown_last >= 3  # never fewer than 3 hidden digits
    assert masked[:shown_first] == number[:shown_first]
    assert masked[-4:] == number[-4:]


@given(digits.filter(lambda n: len(n) >= 12))
def test_masked_value_never_contains_the_pan(number: str) -> None:
    assert number not in mask(number)
    assert number not in mask(number, first=8)
