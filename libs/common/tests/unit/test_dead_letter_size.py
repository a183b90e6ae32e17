"""Dead-letter copies always fit under the producer's limit, whatever the original carried."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from sanalpos_common.messaging.deadletter import fit_dead_letter
from sanalpos_common.messaging.producer import MAX_MESSAGE_BYTES


def message(value: bytes | None, key: bytes | None = b"k", headers: Any = ()) -> Any:
    return SimpleNamespace(
        topic="merchant.payment-requests.v1",
        partition=0,
        offset=9,
        key=key,
        value=value,
        headers=list(headers),
    )


def size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def test_a_small_message_is_copied_whole_without_truncation_headers() -> None:
    key, value, headers = fit_dead_letter(message(b"{}", headers=[("a", b"1")]), "c", "err", 1)
    assert (key, value) == (b"k", b"{}")
    names = dict(headers)
    assert names["a"] == b"1" and "dlq.value-truncated" not in names


def test_a_near_max_value_keeps_a_prefix_with_its_length_and_digest() -> None:
    original = bytes(range(256)) * (MAX_MESSAGE_BYTES // 256)
    key, value, headers = fit_dead_letter(message(original), "c", "e" * 10_000, 3)
    found = dict(headers)
    assert size(key, value, headers) <= MAX_MESSAGE_BYTES
    assert value is not None and original.startswith(value) and len(value) > 900_000
    assert found["dlq.original.value-length"] == str(len(original)).encode()
    assert found["dlq.original.value-sha256"] == hashlib.sha256(original).hexdigest().encode()


def test_a_huge_key_is_replaced_by_its_digest() -> None:
    big_key = b"k" * 500_000
    key, _, headers = fit_dead_letter(message(b"v" * 600_000, key=big_key), "c", "e", 1)
    assert key == hashlib.sha256(big_key).hexdigest().encode()
    assert dict(headers)["dlq.original.key-sha256"] == key


def test_huge_original_headers_are_dropped_and_counted() -> None:
    many = [(f"h{i}", b"x" * 10_000) for i in range(100)]
    key, value, headers = fit_dead_letter(message(b"v", headers=many), "c", "e", 1)
    assert size(key, value, headers) <= MAX_MESSAGE_BYTES
    dropped = int(dict(headers)["dlq.original.headers-dropped"])
    assert 0 < dropped < 100 and len([h for h in headers if h[0].startswith("h")]) == 100 - dropped


@settings(max_examples=30, deadline=None)
@given(
    value_size=st.integers(0, 2 * MAX_MESSAGE_BYTES),
    key_size=st.integers(0, 300_000),
    header_count=st.integers(0, 40),
    header_size=st.integers(0, 40_000),
    error_size=st.integers(0, 20_000),
)
def test_every_copy_fits(
    value_size: int, key_size: int, header_count: int, header_size: int, error_size: int
) -> None:
    original = message(
        b"v" * value_size,
        key=b"k" * key_size,
        headers=[(f"h{i}", b"x" * header_size) for i in range(header_count)],
    )
    key, value, headers = fit_dead_letter(original, "consumer", "e" * error_size, 1)
    assert size(key, value, headers) <= MAX_MESSAGE_BYTES
