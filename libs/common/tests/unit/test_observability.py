import json
import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from sanalpos_common.observability import (
    Health,
    JsonFormatter,
    Metrics,
    instrument_http,
    ops_router,
)


def build_app(records: list[logging.LogRecord]) -> FastAPI:
    app = FastAPI()
    metrics = Metrics("test")
    app.include_router(ops_router("test", Health(), metrics))
    instrument_http(app, metrics)
    formatter = JsonFormatter("test")

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
        records.append(json.loads(formatter.format(record)))  # type: ignore[arg-type]
        return {"ok": "yes"}

    return app


def test_request_id_is_taken_from_the_caller_logged_and_returned() -> None:
    logged: list = []
    client = TestClient(build_app(logged))
    response = client.get("/hello", headers={"X-Request-Id": "merchant-req-42"})
    assert response.headers["X-Request-Id"] == "merchant-req-42"
    assert logged[-1]["request_id"] == "merchant-req-42"


def test_request_id_is_generated_when_missing_or_malformed() -> None:
    logged: list = []
    client = TestClient(build_app(logged))
    generated = client.get("/hello").headers["X-Request-Id"]
    assert generated.startswith("req_") and logged[-1]["request_id"] == generated
    odd = client.get("/hello", headers={"X-Request-Id": "bad id with spaces\\n"}).headers[
        "X-Request-Id"
    ]
    assert odd.startswith("req_")


def test_metrics_count_requests_by_route_template() -> None:
    client = TestClient(build_app([]))
    client.get("/hello")
    body = client.get("/metrics").text
    assert 'sanalpos_http_requests_total{method="GET",route="/hello",status="200"} 1.0' in body


def test_readiness_reports_each_check() -> None:
    app = FastAPI()
    health = Health()

    async def broken() -> tuple[bool, str]:
        raise OSError("db down 4111111111111111")

    health.add("database", broken)
    app.include_router(ops_router("test", health, Metrics("test")))
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503
    detail = response.json()["checks"]["database"]
    assert detail["ok"] is False and "4111111111111111" not in detail["detail"]


def test_requests_are_counted_by_route_template_and_status() -> None:
    app = FastAPI()
    metrics = Metrics("test")
    instrument_http(app, metrics)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    client = TestClient(app)
    assert client.get("/items/secret-123").status_code == 200
    assert client.get("/nowhere").status_code == 404
    counted = metrics.http_requests.labels("GET", "/items/{item_id}", "200")._value.get()
    assert counted == 1
    assert metrics.http_requests.labels("GET", "unmatched", "404")._value.get() == 1
