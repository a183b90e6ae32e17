"""Authorization's keys: providers built from settings and their reload loops.

Each keyring setting is a provider spec (`provider_from_spec`): inline keyring JSON, `env:VAR`,
`file:/path` (a mounted Kubernetes Secret), `local:/dir` or `vault-transit:[mount/]name`.
Authorization only decrypts; it never rotates the CVC keyring beyond making sure, in
development, that the shared file exists and is current at start-up (intake maintains it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sanalpos_common.crypto.cvc import cvc_key_file, rotate_cvc_key_file
from sanalpos_common.crypto.providers import (
    KeyProvider,
    LiveKeyring,
    provider_from_spec,
    reload_periodically,
)
from sanalpos_common.runtime import Runtime


@dataclass
class CardKeys:
    pan_provider: KeyProvider
    pan: LiveKeyring
    cvc_provider: KeyProvider
    cvc: LiveKeyring
    offload: bool
    """True when a keyring calls out on every unwrap (Vault): decrypt in a worker thread."""

    def add_loops(self, runtime: Runtime, interval_s: float) -> None:
        for name, provider in (("pan", self.pan_provider), ("cvc", self.cvc_provider)):
            runtime.add_forever(
                f"keys:{name}-reload",
                lambda provider=provider: reload_periodically(provider, interval_s),  # type: ignore[misc]
            )


def load_card_keys(pan_spec: str, cvc_spec: str, *, rotate_cvc_file: bool) -> CardKeys:
    cvc_file = cvc_key_file(cvc_spec) if rotate_cvc_file else None
    if cvc_file is not None:
        rotate_cvc_key_file(cvc_file)  # idempotent under a lock; creates the file if missing
    pan_provider = provider_from_spec("pan", pan_spec)
    cvc_provider = provider_from_spec("cvc", cvc_spec)
    remote = any(s.strip().startswith("vault-transit:") for s in (pan_spec, cvc_spec))
    return CardKeys(
        pan_provider=pan_provider,
        pan=LiveKeyring(pan_provider, "pan"),
        cvc_provider=cvc_provider,
        cvc=LiveKeyring(cvc_provider, "cvc"),
        offload=remote,
    )
