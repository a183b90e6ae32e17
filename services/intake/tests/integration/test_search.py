"""GET /v1/payments (search) and GET /v1/payments/export against the real intake database:
filters, newest-first cursor pages with ties, merchant isolation, problem details."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from intake.adapters.payment_search import PaymentFilters
from intake.service_layer.export import export_csv
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN

from .conftest import insert_payment_row

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


async def new_merchant(http: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    response = await http.post(
        "/admin/merchants",
        json={"name": name},
        headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


async def insert_payment(platform: Platform, merchant_id: str, **fields: Any) -> uuid.UUID:
    return await insert_payment_row(platform.pool, merchant_id, T0, **fields)


@pytest.fixture(scope="module")
async def shop(platform: Platform, http: httpx.AsyncClient) -> dict[str, Any]:
    """Ten payments of one merchant (two share a created_at), plus another merchant's."""
    merchant_id, headers = await new_merchant(http, "Search Shop")
    other_id, _ = await new_merchant(http, "Other Shop")
    ids: list[uuid.UUID] = []
    for i in range(10):
        at = T0 + timedelta(minutes=i if i != 5 else 4)  # 4 and 5 tie
        ids.append(
            await insert_payment(
                platform,
                merchant_id,
                amount=1000 * (i + 1),
                currency="USD" if i % 3 == 0 else "TRY",
                status="declined" if i % 4 == 0 else "captured",
                order_id=f"order-{i}",
                card_last4="4242" if i < 3 else "1111",
                card_fingerprint="fp-b" if i >= 7 else "fp-a",
                created_at=at,
                description="=cmd()" if i == 9 else None,
            )
        )
    await insert_payment(platform, other_id, order_id="order-1", created_at=T0)
    created = {pid: T0 + timedelta(minutes=i if i != 5 else 4) for i, pid in enumerate(ids)}
    newest_first = sorted(ids, key=lambda pid: (created[pid], pid), reverse=True)
    return {
        "merchant_id": merchant_id,
        "headers": headers,
        "ids": ids,
        "newest_first": newest_first,
    }


async def all_pages(http: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/v1/payments", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return seen
        cursor = page["next_cursor"]
    raise AssertionError("pagination did not end")


async def test_pages_walk_every_payment_newest_first_with_ties_broken_by_id(
    http: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    seen = await all_pages(http, shop["headers"], limit=3)
    assert seen == [str(pid) for pid in shop["newest_first"]]


def matching(shop: dict[str, Any], keep: Any) -> list[str]:
    return [
        str(pid)
        for i, pid in sorted(enumerate(shop["ids"]), key=lambda t: shop["newest_first"].index(t[1]))
        if keep(i)
    ]


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status": "declined"}, lambda i: i % 4 == 0),
        ({"status": ["declined", "captured"]}, lambda i: True),
        ({"currency": "USD"}, lambda i: i % 3 == 0),
        ({"amount_gte": 3000, "amount_lte": 5000}, lambda i: 2 <= i <= 4),
        ({"order_id": "order-1"}, lambda i: i == 1),
        ({"card_last4": "4242"}, lambda i: i < 3),
        ({"card_fingerprint": "fp-b"}, lambda i: i >= 7),
        (
            {"created_gte": "2026-10-05T09:02:00Z", "created_lt": "2026-10-05T12:06:00+03:00"},
            lambda i: 2 <= i <= 5,
        ),
        (
            {"currency": "TRY", "status": "captured", "card_fingerprint": "fp-a"},
            lambda i: i in (1, 2, 5),
        ),
    ],
)
async def test_filters(
    http: httpx.AsyncClient, shop: dict[str, Any], params: dict[str, Any], keep: Any
) -> None:
    assert await all_pages(http, shop["headers"], limit=2, **params) == matching(shop, keep)


async def test_another_merchants_payments_never_show(
    http: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    seen = await all_pages(http, shop["headers"], order_id="order-1")
    assert seen == [str(shop["ids"][1])]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"created_gte": "yesterday"}, "created_gte"),
        ({"limit": 500}, "limit"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"status": "lost"}, "status.0"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_filters_are_problem_details_naming_the_field(
    http: httpx.AsyncClient, shop: dict[str, Any], params: dict[str, Any], field: str
) -> None:
    response = await http.get("/v1/payments", params=params, headers=shop["headers"])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/validation-error")
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize(
    "params",
    [
        {"created_gte": "2026-10-06T00:00:00Z", "created_lt": "2026-10-05T00:00:00Z"},
        {"amount_gte": 10, "amount_lte": 5},
    ],
)
async def test_an_empty_range_matches_nothing(
    http: httpx.AsyncClient, shop: dict[str, Any], params: dict[str, Any]
) -> None:
    assert await all_pages(http, shop["headers"], **params) == []


async def test_export_streams_csv_of_the_same_filter_with_masked_cards(
    http: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await http.get(
        "/v1/payments/export", params={"card_fingerprint": "fp-a"}, headers=shop["headers"]
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == matching(shop, lambda i: i < 7)
    assert {r["card_number"] for r in rows} == {"411111******4242", "411111******1111"}
    assert "fp-a" not in response.text  # no card data beyond the masked number
    first = rows[-1]  # payment 0: oldest
    assert (first["amount_minor"], first["amount"], first["currency"]) == ("1000", "10.00", "USD")
    newest = await http.get(
        "/v1/payments/export", params={"order_id": "order-9"}, headers=shop["headers"]
    )
    (only,) = csv.DictReader(io.StringIO(newest.text))
    assert only["description"] == "'=cmd()"


async def test_export_is_read_in_pages_one_chunk_each(
    platform: Platform, shop: dict[str, Any]
) -> None:
    chunks = [
        chunk
        async for chunk in export_csv(
            platform.pool, shop["merchant_id"], PaymentFilters(), chunk_rows=3
        )
    ]
    assert len(chunks) == 1 + 4  # header, then 3 + 3 + 3 + 1 rows
    assert [chunk.count("\r\n") for chunk in chunks] == [1, 3, 3, 3, 1]


async def test_export_rejects_a_bad_filter(http: httpx.AsyncClient, shop: dict[str, Any]) -> None:
    response = await http.get(
        "/v1/payments/export", params={"card_last4": "12"}, headers=shop["headers"]
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["card_last4"]
