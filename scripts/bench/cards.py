"""Card numbers the issuer simulator approves: Luhn-valid, outside its declining test ranges
(README, "Test cards"), a fresh one per payment so fraud's per-card velocity never declines."""

from __future__ import annotations

import random

from authorization.domain.issuer import TEST_RANGES
from authorization.domain.seed_cards import SIMULATOR_CARDS

# What the simulator declines (or limits to 10.00), from its own tables: one source of truth.
DECLINING_PREFIXES = tuple(TEST_RANGES) + tuple(
    card.pan for card in SIMULATOR_CARDS if card.note != "approves"
)
APPROVING_PREFIX = "4111"  # Visa test BIN; never one of the declining ranges


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:  # doubled: it becomes an odd position once the check digit is added
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def approving_card(rng: random.Random, length: int = 16) -> str:
    body = APPROVING_PREFIX + "".join(
        rng.choice("0123456789") for _ in range(length - 1 - len(APPROVING_PREFIX))
    )
    return body + luhn_check_digit(body)


def approves(number: str) -> bool:
    """True when the simulator approves this number (Luhn-valid, no declining prefix)."""
    return luhn_valid(number) and not number.startswith(DECLINING_PREFIXES)
