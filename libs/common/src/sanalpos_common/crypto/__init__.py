from sanalpos_common.crypto.card import (
    bin_of,
    card_brand,
    fingerprint,
    fingerprint_version,
    fingerprints,
    luhn_valid,
    mask,
)
from sanalpos_common.crypto.envelope import decrypt, encrypt, key_version, rewrap
from sanalpos_common.crypto.keyring import (
    Keyring,
    KeyringError,
    KeyState,
    KeyVersionUnavailable,
)
from sanalpos_common.crypto.providers import (
    KeyProvider,
    LiveKeyring,
    LocalKeyringFileProvider,
    SecretKeyProvider,
    StaticKeyProvider,
    provider_from_spec,
    reload_periodically,
)
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper, WrappedKey

__all__ = [
    "DecryptionError",
    "KeyProvider",
    "KeyState",
    "KeyVersionUnavailable",
    "KeyWrapper",
    "Keyring",
    "KeyringError",
    "LiveKeyring",
    "LocalKeyringFileProvider",
    "SecretKeyProvider",
    "StaticKeyProvider",
    "WrappedKey",
    "bin_of",
    "card_brand",
    "decrypt",
    "encrypt",
    "fingerprint",
    "fingerprint_version",
    "fingerprints",
    "key_version",
    "luhn_valid",
    "mask",
    "provider_from_spec",
    "reload_periodically",
    "rewrap",
]
