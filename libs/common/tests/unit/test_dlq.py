"""Dead-letter records as `sanalpos dlq` reads them: selection, what can be replayed, and the
headers a replay keeps."""

from __future__ import annotations

import json
import uuid

import pytest

from sanalpos_common.dlq import DeadLetter, Selection, consumers_of


def record(offset: int, **headers: str) -> DeadLetter:
    message_id = str(uuid.uuid4())
    return DeadLetter(
        consumer="settlement",
        topic="dlq.settlement.v1",
        partition=1,
        offset=offset,
        timestamp_ms=0,
        key=b"mer_1",
        value=json.dumps({"message_id": message_id}).encode(),
        headers=[("trace", b"abc"), *((k, v.encode()) for k, v in headers.items())],
    )


def test_selection_needs_every_given_criterion() -> None:
    dead = record(
        7,
        **{
            "dlq.error": "non-retryable: unknown fee plan 'x'",
            "dlq.original.topic": "merchant.updated.v1",
        },
    )
    assert Selection(refs=frozenset({"1:7"})).matches(dead)
    assert Selection(reason_contains="fee plan", original_topic="merchant.updated.v1").matches(dead)
    assert not Selection(reason_contains="fee plan", original_topic="payment.captured.v1").matches(
        dead
    )
    assert Selection(message_ids=frozenset({dead.message_id or ""})).matches(dead)
    assert not Selection(keys=frozenset({"mer_2"})).matches(dead)
    assert Selection().empty and not Selection(every=True).empty


def test_a_replay_keeps_the_original_headers_only() -> None:
    dead = record(1, **{"dlq.error": "boom", "dlq.original.topic": "payment.captured.v1"})
    assert dead.original_headers() == [("trace", b"abc")]
    assert dead.replayable


def test_a_record_whose_value_was_dropped_cannot_be_replayed() -> None:
    dropped = record(
        2,
        **{
            "dlq.original.topic": "merchant.payment-requests.v1",
            "dlq.value-dropped": "card data in clear",
        },
    )
    assert not dropped.replayable


def test_a_service_names_its_consumers() -> None:
    assert consumers_of("intake", None) == ("intake", "intake-requests")
    assert consumers_of(None, "custom") == ("custom",)
    with pytest.raises(ValueError, match="unknown service"):
        consumers_of("nope", None)
