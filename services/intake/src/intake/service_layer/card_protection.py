"""Turns card input into what may be stored and sent: ciphertexts, fingerprint, BIN, last 4."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.card import bin_of, card_brand, fingerprint
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.keyring import Keyring
from sanalpos_common.schemas.events import EncryptedCard


@dataclass(frozen=True)
class CardProtection:
    pan_keyring: Keyring
    cvc_keyring: Keyring
    fingerprint_key: bytes

    def protect(
        self,
        merchant_id: str,
        payment_id: uuid.UUID,
        pan: str,
        cvc: str,
        exp_month: int,
        exp_year: int,
    ) -> EncryptedCard:
        return EncryptedCard(
            pan_ciphertext=encrypt(
                self.pan_keyring, pan.encode(), pan_aad(merchant_id, payment_id)
            ),
            cvc_ciphertext=encrypt(
                self.cvc_keyring, cvc.encode(), cvc_aad(merchant_id, payment_id)
            ),
            fingerprint=fingerprint(self.fingerprint_key, pan),
            bin=bin_of(pan),
            last4=pan[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
            brand=card_brand(pan),
        )
