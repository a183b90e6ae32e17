"""Least privilege: fraud, settlement and notification hold no card keys and cannot decrypt.

Their settings classes declare no key fields, and a card ciphertext made the way intake makes
it does not open with *any* material those services are configured with, read literally, as
a keyring, or decoded (base64, hex) or hashed into a 32-byte key. Positive controls: intake's
and authorization's settings are caught by the same checks, and their keyrings do decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from authorization.config import AuthorizationSettings
from fraud.config import FraudSettings
from intake.config import IntakeSettings
from intake.service_layer.card_protection import CardProtection
from notification.config import NotificationSettings
from sanalpos_common.crypto import DecryptionError, Keyring, KeyringError, decrypt
from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.sealed import key_wrapper_from_json
from sanalpos_common.crypto.wrapping import KeyWrapper
from sanalpos_common.schemas.events import token_pan_aad
from sanalpos_common.settings import ServiceSettings
from settlement.config import SettlementSettings

WITHOUT_KEYS: tuple[type[ServiceSettings], ...] = (
    FraudSettings,
    SettlementSettings,
    NotificationSettings,
)
KEY_FIELD = re.compile(r"keyring|(^|_)key($|_)|kek|dek|pem|private|fingerprint_key|issuer", re.I)


def key_fields(settings: type[BaseModel]) -> list[str]:
    found = []
    for name, info in settings.model_fields.items():
        annotation = str(info.annotation)
        if KEY_FIELD.search(name) or "Keyring" in annotation:
            found.append(name)
    return found


def strings(value: Any) -> Iterator[str]:
    """Every configured string, secrets revealed, nested lists and models included."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from strings(getattr(value, name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings(item)


def candidate_keyrings(settings: BaseModel, key_id: str, version: int) -> list[KeyWrapper]:
    """Any way a configured value could serve as the key for a ciphertext of key_id/version."""
    candidates: list[KeyWrapper] = []
    for text in strings(settings):
        with contextlib.suppress(KeyringError):
            candidates.append(key_wrapper_from_json(text))
        raw: list[bytes] = [text.encode(), hashlib.sha256(text.encode()).digest()]
        stripped = text.removeprefix("whsec_")
        padded = stripped + "=" * (-len(stripped) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError, binascii.Error):
                raw.append(decode(padded))
        with contextlib.suppress(ValueError):
            raw.append(bytes.fromhex(stripped))
        for key in raw:
            if len(key) == 32:
                candidates.append(
                    Keyring(key_id=key_id, active_version=version, keys={version: key})
                )
    return candidates


def assert_cannot_decrypt(settings: BaseModel, ciphertext: str, aad: bytes) -> int:
    """Tries every candidate; returns how many were tried (so a test can see it tried some)."""
    _, key_id, version, *_ = ciphertext.split(".")
    tried = 0
    for keyring in candidate_keyrings(settings, key_id, int(version)):
        tried += 1
        with pytest.raises((DecryptionError, KeyringError)):
            decrypt(keyring, ciphertext, aad)
    return tried


def intake_ciphertexts() -> tuple[dict[str, tuple[str, bytes]], IntakeSettings]:
    settings = IntakeSettings()
    protection = CardProtection(
        pan_keyring=key_wrapper_from_json(settings.pan_keyring.get_secret_value()),
        cvc_keyring=rotate_cvc_keys(None, datetime.now(UTC)),  # settings: a key file spec
        fingerprint_key=settings.fingerprint_key.get_secret_value().encode(),
    )
    payment_id = uuid.uuid4()
    card = protection.protect("mer_lp", payment_id, "4000056655665556", "918", 12, 2031)
    stored = protection.tokenize("mer_lp", "4000056655665556", 12, 2031, datetime.now(UTC))
    assert card.cvc_ciphertext is not None
    return {
        "pan": (card.pan_ciphertext, pan_aad("mer_lp", payment_id)),
        "cvc": (card.cvc_ciphertext, cvc_aad("mer_lp", payment_id)),
        "stored pan": (stored["pan_ciphertext"], token_pan_aad("mer_lp", stored["token"])),
    }, settings


# Keys that protect no card data: notification opens the webhook signing secrets sealed to
# it (docs/security.md §11). The ciphertext check below still runs over them.
NON_CARD_KEYS: dict[type[ServiceSettings], set[str]] = {
    NotificationSettings: {"webhook_secret_keyring"},
}


@pytest.mark.parametrize("settings", WITHOUT_KEYS, ids=lambda s: s.__name__)
def test_settings_declare_no_key_material(settings: type[ServiceSettings]) -> None:
    assert set(key_fields(settings)) == NON_CARD_KEYS.get(settings, set())


def test_the_field_check_sees_the_services_that_do_hold_keys() -> None:
    assert {"pan_keyring", "cvc_keyring", "fingerprint_key"} <= set(key_fields(IntakeSettings))
    assert {"pan_keyring", "cvc_keyring"} <= set(key_fields(AuthorizationSettings))


@pytest.mark.parametrize("settings", WITHOUT_KEYS, ids=lambda s: s.__name__)
def test_a_payment_ciphertext_does_not_decrypt_with_their_configuration(
    settings: type[ServiceSettings],
) -> None:
    ciphertexts, _ = intake_ciphertexts()
    configured = settings()
    for ciphertext, aad in ciphertexts.values():
        assert_cannot_decrypt(configured, ciphertext, aad)


def test_intake_cannot_decrypt_the_card_numbers_it_encrypts() -> None:
    """intake holds only the public half of the sealed (sp3) card-number keyring."""
    ciphertexts, intake_settings = intake_ciphertexts()
    ciphertext, aad = ciphertexts["pan"]
    assert ciphertext.startswith("sp3.")
    assert assert_cannot_decrypt(intake_settings, ciphertext, aad) > 0


def test_the_harness_would_notice_a_key() -> None:
    """Positive control: the same search over authorization's settings finds the key."""
    from authorization.config import AuthorizationSettings

    ciphertexts, _ = intake_ciphertexts()
    ciphertext, aad = ciphertexts["pan"]
    _, key_id, version, *_ = ciphertext.split(".")
    opened = []
    for keyring in candidate_keyrings(AuthorizationSettings(), key_id, int(version)):
        with contextlib.suppress(DecryptionError, KeyringError):
            opened.append(decrypt(keyring, ciphertext, aad))
    assert opened == [b"4000056655665556"]
