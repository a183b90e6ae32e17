"""The pure parts of `sanalpos trace` / `sanalpos status`: which spans belong to a payment,
the timeline's order and hops, which service owns a dead-letter topic, where things are."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sanalpos_common import ops_cli, timeline, tracing


def span(
    span_id: str, parent: str | None, payment: str | None, start: int, trace: str = "t1"
) -> dict[str, Any]:
    attributes = {tracing.PAYMENT_ID: payment} if payment else {}
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": span_id,
        "service": "intake",
        "start_ns": start,
        "end_ns": start + 10,
        "status": "UNSET",
        "attributes": attributes,
    }


def test_payment_spans_are_the_tagged_ones_and_their_ancestors_by_trace() -> None:
    spans = [
        span("close", None, None, 0, trace="t2"),  # a batch close: many payments under it
        span("settled-p", "close", "p", 5, trace="t2"),
        span("settled-q", "close", "q", 6, trace="t2"),
        span("http", None, None, 1),
        span("fraud", "http", "p", 3),
        span("other", None, "q", 2, trace="t3"),
    ]
    traces = ops_cli.payment_spans(spans, "p")
    assert {t: [s["span_id"] for s in found] for t, found in traces.items()} == {
        "t1": ["http", "fraud"],
        "t2": ["close", "settled-p"],
    }


def test_trace_table_rows_follow_the_tree_with_hops_after_the_parent() -> None:
    spans = [
        span("root", None, "p", 0),
        span("child", "root", "p", 25),
        span("late", "root", "p", 15),
    ]
    ordered = ops_cli._tree(spans)
    assert [(s["span_id"], depth) for s, depth in ordered] == [
        ("root", 0),
        ("late", 1),
        ("child", 1),
    ]


def test_timeline_orders_entries_and_measures_each_hop_from_the_producers_outbox_row() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    message = uuid.uuid4()
    entries = [
        timeline.ServiceEntry(
            "fraud", timeline.Entry(at + timedelta(milliseconds=40), "consumed x", "", message)
        ),
        timeline.ServiceEntry("intake", timeline.Entry(at, "emitted x", "", message)),
        timeline.ServiceEntry(
            "intake", timeline.Entry(at + timedelta(milliseconds=1), "payment accepted")
        ),
    ]
    rows = [(e.service, e.entry.what, since, hop) for e, since, hop in timeline.ordered(entries)]
    assert rows == [
        ("intake", "emitted x", 0.0, None),
        ("intake", "payment accepted", 1.0, None),
        ("fraud", "consumed x", 40.0, 40.0),
    ]


def test_dead_letter_topics_belong_to_the_service_of_their_consumer() -> None:
    assert ops_cli.owner_of_dead_letter_topic("dlq.fraud-feedback.v1") == "fraud"
    assert ops_cli.owner_of_dead_letter_topic("dlq.intake-requests.v1") == "intake"
    assert ops_cli.owner_of_dead_letter_topic("dlq.settlement.v1") == "settlement"


def test_endpoints_come_from_the_services_own_environment() -> None:
    env = {"INTAKE_HTTP_PORT": "19000", "FRAUD_HTTP_HOST": "0.0.0.0", "SANALPOS_PG_PORT": "1234"}
    assert ops_cli.service_url("intake", env) == "http://127.0.0.1:19000"
    assert ops_cli.service_url("fraud", env) == "http://127.0.0.1:18001"
    assert ":1234/sanalpos_settlement" in ops_cli.database_url("settlement", env)
    assert (
        ops_cli.database_url("intake", {"INTAKE_DATABASE_URL": "postgresql://x/y"})
        == "postgresql://x/y"
    )
    assert ops_cli.kafka_servers({"SANALPOS_KAFKA_PORT": "9"}) == "127.0.0.1:9"
    assert str(ops_cli.trace_file({"SANALPOS_STATE_DIR": "/s"})) == "/s/traces.jsonl"
    assert str(ops_cli.trace_file({"SANALPOS_TRACE_FILE": "/f.jsonl"})) == "/f.jsonl"
