"""A handler table routes by payload type and names its topics."""

import uuid
from typing import Any

import pytest

from sanalpos_common import topics
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.schemas.codec import envelope_for
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PaymentExpired, PaymentVoided


def _voided() -> PaymentVoided:
    return PaymentVoided(
        payment_id=uuid.uuid4(), merchant_id="mer_x", amount=5, currency="TRY", after_capture=False
    )


async def test_routes_by_payload_type_and_derives_topics() -> None:
    seen: list[tuple[str, Any]] = []

    async def on_voided(uow: Any, envelope: Envelope[Any]) -> None:
        seen.append(("voided", envelope.payload))

    async def on_expired(uow: Any, envelope: Envelope[Any]) -> None:
        seen.append(("expired", envelope.payload))

    table = HandlerTable({PaymentVoided: on_voided, PaymentExpired: on_expired})
    assert table.topics == (topics.PAYMENT_VOIDED, topics.PAYMENT_EXPIRED)
    voided = _voided()
    await table(object(), topics.PAYMENT_VOIDED, envelope_for(voided, producer="t"))  # type: ignore[arg-type]
    assert seen == [("voided", voided)]


async def test_a_type_without_handler_is_an_error_not_a_silent_skip() -> None:
    table = HandlerTable({})
    with pytest.raises(LookupError, match="no handler for PaymentVoided"):
        await table(object(), topics.PAYMENT_VOIDED, envelope_for(_voided(), producer="t"))  # type: ignore[arg-type]
