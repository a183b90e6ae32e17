"""Turns card input into what may be stored and sent: ciphertexts, fingerprint, BIN, last 4.

Intake only ever encrypts card data; decrypting is authorization's job. The keyrings are
usually `LiveKeyring`s (reloaded in the background); the security code is encrypted under the
current hour's CVC key (`encrypt_cvc`), which is destroyed after its TTL.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from sanalpos_common.crypto.aad import cvc_aad, pan_aad, token_pan_aad
from sanalpos_common.crypto.card import bin_of, card_brand, fingerprint, mask
from sanalpos_common.crypto.cvc import encrypt_cvc
from sanalpos_common.crypto.envelope import encrypt
from sanalpos_common.crypto.wrapping import KeyWrapper
from sanalpos_common.schemas.events import EncryptedCard

P = ParamSpec("P")
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_card_token() -> str:
    return "tok_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class CardProtection:
    pan_keyring: KeyWrapper
    cvc_keyring: KeyWrapper
    fingerprint_key: bytes
    offload: bool = False
    """True when a keyring calls out (Vault transit): `run` then uses a worker thread."""
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call one of the methods below from async code without blocking the event loop
        on a Vault round trip."""
        if self.offload:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

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
            cvc_ciphertext=self.encrypt_cvc(merchant_id, payment_id, cvc),
            fingerprint=fingerprint(self.fingerprint_key, pan),
            bin=bin_of(pan),
            last4=pan[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
            brand=card_brand(pan),
        )

    def encrypt_cvc(self, merchant_id: str, payment_id: uuid.UUID, cvc: str) -> str:
        """Under the current period's CVC key; refuses (CvcExpiredError) a stale keyring."""
        return encrypt_cvc(
            self.cvc_keyring, cvc, cvc_aad(merchant_id, payment_id), now=self.clock()
        )

    def tokenize(
        self, merchant_id: str, pan: str, exp_month: int, exp_year: int, now: datetime
    ) -> dict[str, Any]:
        """A card_tokens row: the PAN encrypted and bound to (merchant, token)."""
        token = new_card_token()
        return {
            "token": token,
            "merchant_id": merchant_id,
            "pan_ciphertext": encrypt(
                self.pan_keyring, pan.encode(), token_pan_aad(merchant_id, token)
            ),
            "fingerprint": fingerprint(self.fingerprint_key, pan),
            "brand": card_brand(pan),
            "bin": bin_of(pan),
            "last4": pan[-4:],
            "masked_number": mask(pan),
            "exp_month": exp_month,
            "exp_year": exp_year,
            "created_at": now,
        }

    def for_token_payment(
        self,
        merchant_id: str,
        payment_id: uuid.UUID,
        stored: Any,
        cvc: str | None,
    ) -> EncryptedCard:
        """The stored card's own ciphertext (token-scoped) travels; intake never opens it."""
        return EncryptedCard(
            pan_ciphertext=stored["pan_ciphertext"],
            cvc_ciphertext=None if cvc is None else self.encrypt_cvc(merchant_id, payment_id, cvc),
            fingerprint=stored["fingerprint"],
            bin=stored["bin"],
            last4=stored["last4"],
            exp_month=stored["exp_month"],
            exp_year=stored["exp_year"],
            brand=stored["brand"],
            aad_scope="token",
            token_id=stored["token"],
        )
