"""One vocabulary of refusals: which problem (RFC 9457) each service-layer and domain error
is, whichever entry point it reached. HTTP's exception handlers and Kafka's replies both
render `problem_of(exc)`; field paths here are relative to the request body and each entry
point adds its own prefix (Kafka: `body.`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from intake.domain.merchant import InvalidMerchantField
from intake.domain.payment import OperationNotAllowed
from intake.domain.queries import BadCursor
from intake.service_layer.cards import CardNotFound
from intake.service_layer.checkout import (
    CheckoutAttemptsExhausted,
    CheckoutCsrfRefused,
    CheckoutDisabled,
    CheckoutPageRateLimited,
    CheckoutSessionCompleted,
    CheckoutSessionExpired,
    CheckoutSessionNotFound,
)
from intake.service_layer.client_encryption import UnreadableCardPayload
from intake.service_layer.idempotency import IdempotencyConflict, IdempotencyKeyInProgress
from intake.service_layer.installments import InstallmentsNotAllowed
from intake.service_layer.lifecycle import PaymentNotFound
from intake.service_layer.merchants import KeyNotFound, MerchantExists, MerchantNotFound
from intake.service_layer.operations import CaptureTooLarge, RefundTooLarge
from intake.service_layer.payments import CardTokenNotFound, StoredCardExpired
from intake.service_layer.problems import (
    FieldError,
    ProblemDetails,
    Refused,
    invalid,
    not_found,
)
from intake.service_layer.webhooks import ReplayUnavailable, TooManyEndpoints, UnsafeWebhookUrl


def _state_conflict(exc: OperationNotAllowed) -> ProblemDetails:
    operation = exc.operation.value
    return ProblemDetails(
        409,
        "payment-state-conflict",
        f"Cannot {operation} a payment that is {exc.current_state}",
        exc.detail,
        extra={"current_state": exc.current_state, "operation": operation},
    )


def _refund_too_large(exc: RefundTooLarge) -> ProblemDetails:
    return ProblemDetails(
        409,
        "refund-exceeds-captured",
        "Refund exceeds the refundable amount",
        exc.detail,
        (FieldError("amount", exc.detail, "too_large"),),
        {"available_amount": exc.available},
    )


IDEMPOTENCY_KEY_REUSED = ProblemDetails(
    422,
    "idempotency-key-reused",
    "Idempotency-Key reused with a different request",
    "this key was first used with another body or operation; use a new key for a new request",
)
IDEMPOTENCY_KEY_IN_PROGRESS = ProblemDetails(
    409,
    "idempotency-key-in-progress",
    "A request with this Idempotency-Key is in progress",
    "another request with this key has not finished; retry it shortly to get its response",
)
NO_CARD_TOKEN = ProblemDetails(
    404,
    "card-token-not-found",
    "No such card token",
    "card_token names no stored card of this merchant",
    (FieldError("card_token", "no such card token", "not_found"),),
)
BAD_CURSOR = invalid(FieldError("cursor", "not a cursor this API returned", "bad_cursor"))

PROBLEMS: dict[type[Exception], Callable[[Any], ProblemDetails]] = {
    Refused: lambda exc: exc.problem,
    PaymentNotFound: lambda exc: not_found("payment", str(exc.args[0])),
    OperationNotAllowed: _state_conflict,
    CaptureTooLarge: lambda exc: invalid(FieldError("amount", exc.detail, "too_large")),
    RefundTooLarge: _refund_too_large,
    CardTokenNotFound: lambda _: NO_CARD_TOKEN,
    StoredCardExpired: lambda _: invalid(
        FieldError("card_token", "the stored card has expired", "card_expired")
    ),
    InstallmentsNotAllowed: lambda exc: invalid(
        FieldError("installments", exc.reason, "not_allowed"), allowed_installments=exc.allowed
    ),
    UnreadableCardPayload: lambda exc: invalid(FieldError("encrypted_card", str(exc), exc.code)),
    BadCursor: lambda _: BAD_CURSOR,
    CardNotFound: lambda exc: not_found("card", str(exc.args[0])),
    IdempotencyConflict: lambda _: IDEMPOTENCY_KEY_REUSED,
    IdempotencyKeyInProgress: lambda _: IDEMPOTENCY_KEY_IN_PROGRESS,
    InvalidMerchantField: lambda exc: invalid(FieldError(exc.field, exc.message)),
    MerchantExists: lambda exc: ProblemDetails(
        409, "merchant-exists", "Merchant id already exists", str(exc.args[0] or "")
    ),
    MerchantNotFound: lambda exc: not_found("merchant", str(exc.args[0])),
    KeyNotFound: lambda exc: not_found("API key", str(exc.args[0])),
    UnsafeWebhookUrl: lambda exc: invalid(FieldError("url", str(exc), "url_not_public")),
    TooManyEndpoints: lambda exc: ProblemDetails(
        409,
        "webhook-endpoint-limit",
        "Too many webhook endpoints",
        str(exc),
        extra={"limit": exc.limit},
    ),
    ReplayUnavailable: lambda _: ProblemDetails(
        409,
        "idempotent-replay-unavailable",
        "The stored answer can no longer be replayed",
        "the endpoint was registered, but its stored answer no longer opens (intake's keyring "
        "changed); list your endpoints with GET /v1/merchant and register a new one",
    ),
    # --- hosted payment page (issue 11) ---
    CheckoutSessionNotFound: lambda exc: not_found("checkout session", str(exc.args[0])),
    CheckoutSessionExpired: lambda _: ProblemDetails(
        410, "checkout-session-expired", "The checkout session has expired"
    ),
    CheckoutSessionCompleted: lambda _: ProblemDetails(
        409, "checkout-session-completed", "The checkout session is paid already"
    ),
    CheckoutAttemptsExhausted: lambda _: ProblemDetails(
        409,
        "checkout-attempts-exhausted",
        "The checkout session takes no more card attempts",
        "too many declined attempts: return to the shop",
    ),
    CheckoutCsrfRefused: lambda _: ProblemDetails(
        403, "csrf-refused", "The request did not come from the payment page"
    ),
    CheckoutPageRateLimited: lambda exc: ProblemDetails(
        429,
        "rate-limited",
        "Too many requests for this checkout",
        f"retry in {exc.retry_after} s",
        extra={"retry_after": exc.retry_after},
    ),
    CheckoutDisabled: lambda _: ProblemDetails(
        503,
        "checkout-disabled",
        "Checkout is not configured",
        "this intake has no result-signing key (INTAKE_CHECKOUT_SIGNING_KEY)",
    ),
}
"""Exception type -> its problem. A subclass without an entry takes its base's."""


def problem_of(exc: BaseException) -> ProblemDetails | None:
    """The problem `exc` is, or None when it is not a refusal (a bug, an outage)."""
    for kind in type(exc).__mro__:
        render = PROBLEMS.get(kind)
        if render is not None:
            return render(exc)
    return None


@contextmanager
def refused_under(prefix: str = "") -> Iterator[None]:
    """Errors of the vocabulary raised inside become `Refused`, their field paths under
    `prefix`; a `Refused` already names its paths; anything else propagates."""
    try:
        yield
    except Refused:
        raise
    except Exception as exc:
        problem = problem_of(exc)
        if problem is None:
            raise
        raise Refused(problem.under(prefix)) from None
