"""The simulated directory server and issuer ACS (EMV 3-D Secure 2), on the issuer
simulator's side. It decides from the card's 3DS test range (`domain/three_ds.py`); the ACS of
the `unavailable` range never answers, and the call gives up after a bounded timeout."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from authorization.domain.three_ds import AcsAnswer, CardProfile, acs_answer, card_profile
from sanalpos_common.settings import DEV_ISSUER_KEY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcsSimulator:
    public_url: str = "http://127.0.0.1:18002"
    """Where shoppers reach this service's ACS challenge pages (the `next_action_url` base)."""
    key: bytes = DEV_ISSUER_KEY.encode()
    """Derives the one-time codes and CSRF tokens, and keys the stored code hashes."""
    challenge_ttl: timedelta = timedelta(minutes=10)
    max_attempts: int = 3
    timeout_s: float = 2.0
    """How long the directory server waits for the ACS before answering `unavailable`."""
    show_code: bool = False
    """Development: the challenge page shows the one-time code (a real ACS would text it)."""
    _never: asyncio.Event = field(default_factory=asyncio.Event, compare=False, repr=False)

    def challenge_url(self, challenge_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/acs/challenges/{challenge_id}"

    async def authenticate(
        self, pan: str, *, challenge_mandated: bool
    ) -> tuple[CardProfile, AcsAnswer]:
        """The authentication request (AReq) and the ACS's answer (ARes)."""
        profile = card_profile(pan)
        answer = acs_answer(profile, challenge_mandated)
        if answer is AcsAnswer.UNAVAILABLE:
            try:
                # This ACS never answers: the bounded wait is the real part of the simulation.
                await asyncio.wait_for(self._never.wait(), timeout=self.timeout_s)
            except TimeoutError:
                log.warning("the ACS did not answer within %.1f s", self.timeout_s)
        return profile, answer
