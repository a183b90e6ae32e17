"""Schemathesis over every operation of the intake API, in-process, against real PostgreSQL
and Kafka: the default checks plus the authentication checks, failing on any finding.

The real intake (bootstrap + uvicorn) runs in a thread of this test process on a loopback
port, so every request schemathesis sends — including the extra ones its checks make — goes
through the same server."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from schemathesis.specs.openapi.checks import positive_data_acceptance

from intake.config import DEMO_API_KEY
from intake.domain.commands import METADATA_MAX_BYTES
from intake.entrypoints.http.app import build_app
from sanalpos_common.crypto.card import holds_card_number
from sanalpos_common.net import webhook_url_refusal
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import free_port

from .conftest import private_intake

schema = schemathesis.openapi.from_dict(build_app().openapi())
# PostgreSQL cannot store NUL characters: every text field refuses them with a 422 naming the
# field (test_request_validation.py), which the schema does not spell out on each string.
schema.config.generation.update(allow_x00=False)
# Every request body is limited to 64 KiB and a larger one is refused with 413 and a problem
# document (sanalpos_common.http). Generated invalid data is sometimes that
# large, and 413 is then its rejection. A new list: the default one is schemathesis's own.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


class IntakeInThread:
    def __init__(self) -> None:
        self.port = free_port()
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        # A private schema: the outbox rows of the generated requests must never be published
        # by the intake the whole-system tests later run on the same database.
        async with private_intake() as platform:
            config = uvicorn.Config(
                platform.runtime.app, host="127.0.0.1", port=self.port, log_config=None
            )
            self.server = uvicorn.Server(config)
            await self.server.serve()

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not (self.server is not None and self.server.started):
            assert self.thread.is_alive(), "intake failed to start"
            assert time.monotonic() < deadline, "intake did not start within 60 s"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with IntakeInThread() as url:
        yield url


@schema.auth()
class Credentials:
    """The demo merchant's API key, or the admin token on /admin: given to schemathesis as
    auth (not as plain headers) so its authentication checks can take them away or spoil them."""

    def get(self, case: Any, context: Any) -> str:
        return DEV_ADMIN_TOKEN if case.path.startswith("/admin") else DEMO_API_KEY

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Values a schema cannot describe fully: a card number must pass the Luhn check and not be
# expired, a card payload must be a JWE encrypted to our key, a cursor must be one we issued;
# `occurred_at` is accepted only when the operator enables replays (fraud evaluation); free
# text must not hold a card number (a Luhn-valid run of 13-19 digits) and metadata has a total
# size; a checkout basket's lines must add up to its amount; an IBAN must pass its checksum
# and bank-code rules and suit the payout currency. A generated request carrying one of them
# may be refused with 422 although it matches the schema; every other check (and the
# negative-data checks) still applies to it.
SEMANTIC_FIELDS = frozenset({"card", "encrypted_card", "cursor", "occurred_at", "basket", "iban"})


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _over_metadata_size(body: dict[str, Any]) -> bool:
    metadata = body.get("metadata")
    return isinstance(metadata, dict) and sum(len(t.encode()) for t in _texts(metadata)) > (
        METADATA_MAX_BYTES
    )


def _carries_semantic_value(case: Any) -> bool:
    supplied = set(case.query or {})
    if isinstance(case.body, dict):
        supplied |= {name for name, value in case.body.items() if value is not None}
        if any(holds_card_number(t) for t in _texts(case.body)) or _over_metadata_size(case.body):
            return True
    return bool(supplied & SEMANTIC_FIELDS) or _refused_webhook_url(case)


def _refused_webhook_url(case: Any) -> bool:
    """A webhook `url` must be a public address (documented on the field): one the policy
    refuses (an IP literal of a private range, `localhost`, a single-label name, which
    a pattern cannot rule out) is rightly a 422 naming `url`."""
    url = case.body.get("url") if isinstance(case.body, dict) else None
    return isinstance(url, str) and webhook_url_refusal(url) is not None


@schema.parametrize()
def test_every_operation_honours_its_contract(case: Any, base_url: str) -> None:
    if case.headers and "Idempotency-Key" in case.headers:
        # Generated keys repeat across examples with other bodies (rightly a 422): make each
        # example its own request. Replays are tested in test_idempotency_api.py.
        case.headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
    excluded = [positive_data_acceptance] if _carries_semantic_value(case) else []
    case.call_and_validate(base_url=base_url, excluded_checks=excluded)
