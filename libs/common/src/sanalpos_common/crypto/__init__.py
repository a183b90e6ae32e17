from sanalpos_common.crypto.card import bin_of, card_brand, fingerprint, luhn_valid, mask
from sanalpos_common.crypto.envelope import DecryptionError, decrypt, encrypt
from sanalpos_common.crypto.keyring import Keyring, KeyringError

__all__ = [
    "DecryptionError",
    "Keyring",
    "KeyringError",
    "bin_of",
    "card_brand",
    "decrypt",
    "encrypt",
    "fingerprint",
    "luhn_valid",
    "mask",
]
