"""Endpoint secrets sealed to the `webhook` keyring: sealed for the table, opened to sign.

Opened secrets are kept in memory (by ciphertext, bounded) so a busy endpoint does not pay
an X25519 exchange per delivery; the table and the topic only ever hold ciphertexts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sanalpos_common.crypto.keyring import KeyringError
from sanalpos_common.crypto.webhook_secrets import open_webhook_secret, seal_webhook_secret
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper

log = logging.getLogger(__name__)
_CACHE_SIZE = 4096


@dataclass
class EndpointSecrets:
    keyring: KeyWrapper
    _opened: dict[str, str] = field(default_factory=dict, repr=False)

    def seal(self, secret: str, merchant_id: str, endpoint_id: uuid.UUID) -> str:
        return seal_webhook_secret(self.keyring, secret, merchant_id, endpoint_id)

    def open(self, ciphertext: str, merchant_id: str, endpoint_id: uuid.UUID) -> str:
        """Raises DecryptionError or KeyringError."""
        key = f"{merchant_id}|{endpoint_id}|{ciphertext}"
        found = self._opened.get(key)
        if found is None:
            found = open_webhook_secret(self.keyring, ciphertext, merchant_id, endpoint_id)
            if len(self._opened) >= _CACHE_SIZE:
                self._opened.pop(next(iter(self._opened)))
            self._opened[key] = found
        return found

    def open_or_empty(
        self, ciphertext: str | None, merchant_id: str, endpoint_id: uuid.UUID
    ) -> str:
        """The secret, or "" (which signs nothing: the delivery fails with InvalidSecret)
        when there is none or it does not open; logged by endpoint id, never the value."""
        if ciphertext is None:
            return ""
        try:
            return self.open(ciphertext, merchant_id, endpoint_id)
        except (DecryptionError, KeyringError) as exc:
            log.error("secret of webhook endpoint %s does not open: %s", endpoint_id, exc)
            return ""
