"""`Prefer: wait=N` on POST /v1/payments: hold the answer until the payment has an outcome."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Header

from intake.adapters.payments import PaymentRepository
from intake.domain.read_models import PaymentOut
from intake.entrypoints.http.deps import Container
from intake.service_layer.outcome_waiters import (
    format_wait,
    remember_answer,
    requested_wait,
    wait_for_outcome,
)
from intake.service_layer.views import payment_view

PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer",
        max_length=200,
        description=(
            "RFC 7240. `wait=N`: answer 201 once the payment has an outcome (authorized, "
            "captured, declined, requires_action), waiting at most N seconds (capped by the "
            "server, 10 by default); without an outcome by then, 202 as usual. "
            "`Preference-Applied` echoes the wait used."
        ),
        examples=["wait=5"],
    ),
]

SYNC_RESPONSE: dict[int | str, dict[str, Any]] = {
    201: {
        "model": PaymentOut,
        "description": "With `Prefer: wait=N`: the payment reached an outcome within N seconds",
        "headers": {
            "Preference-Applied": {
                "description": "The wait honoured, e.g. `wait=5`",
                "schema": {"type": "string", "example": "wait=5"},
            }
        },
    }
}


async def sync_answer(
    c: Container,
    merchant_id: str,
    status: int,
    body: dict[str, Any],
    prefer: str | None,
    idempotency_key: str | None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers): unchanged unless a wait was asked for and can be woken."""
    wait_s = requested_wait(prefer, c.max_wait_s)
    if wait_s is None or c.waiters is None or not c.waiters.listening:
        return status, body, {}
    payment_id = uuid.UUID(str(body["id"]))
    payments = PaymentRepository(c.pool)
    row, reached = await wait_for_outcome(
        c.waiters, payment_id, wait_s, lambda: payments.get(merchant_id, payment_id)
    )
    headers = {"Preference-Applied": f"wait={format_wait(wait_s)}"}
    if row is None:
        return status, body, headers
    view = payment_view(row, [])
    if not reached:
        return 202, view, headers
    if idempotency_key is not None:
        await remember_answer(c.pool, merchant_id, idempotency_key, view)
    return 201, view, headers
