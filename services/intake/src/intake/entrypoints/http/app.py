"""The merchant-facing HTTP API (versioned under /v1) and the admin API."""

from __future__ import annotations

from fastapi import FastAPI

from intake.entrypoints.http import (
    balance,
    bins,
    cards,
    checkout,
    checkout_page,
    disputes,
    lifecycle,
    merchants,
    payments,
    payouts,
    search,
    signing,
    statements,
)
from intake.entrypoints.http.openapi import install_openapi
from intake.entrypoints.http.problems import install_problem_handlers
from sanalpos_common.http import BodySizeLimit

MAX_BODY_BYTES = 64 * 1024
"""The largest request body any operation takes (the biggest, a payment with full metadata
and an encrypted card, is well under 32 KiB); larger ones get 413 before they are read."""


def build_app() -> FastAPI:
    app = FastAPI(
        title="sanalpos intake",
        version="1.0.0",
        description="Merchant API of the sanalpos virtual POS.",
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    # Search/export come before /v1/payments/{payment_id} so their fixed paths match first.
    app.include_router(search.router)
    app.include_router(payments.router)
    app.include_router(lifecycle.router)
    app.include_router(bins.router)
    app.include_router(merchants.router)
    app.include_router(cards.router)
    app.include_router(signing.router)
    app.include_router(balance.router)
    app.include_router(checkout.router)
    app.include_router(checkout_page.router)  # the hosted payment page (not in the OpenAPI)
    app.include_router(payouts.router)
    app.include_router(statements.router)
    app.include_router(disputes.router)
    install_openapi(app)
    return app
