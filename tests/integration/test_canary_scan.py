"""The canary scan: a realistic mix of card traffic through the real running system, then a
search of every database dump, every Kafka topic (internal and dead-letter ones included) and
every log line for the card numbers (in clear and encoded), the security codes next to their
payments, anything card-shaped and Luhn-valid, and unkeyed hashes; and for the webhook
signing secrets of an endpoint registered and replayed with an Idempotency-Key and of the
session merchant. Zero hits allowed.

The scanner itself is tested first, on planted data, so that "zero hits" means something.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwe, jwk

from sanalpos_common.crypto.aad import cvc_aad, pan_aad
from sanalpos_common.crypto.card import luhn_check_digit
from tests.integration.canary import (
    Canary,
    Record,
    card_forms,
    dump_records,
    fresh_number,
    grouped,
    log_records,
    read_all_topics,
    scan,
    scan_secrets,
    secret_forms,
)
from tests.integration.conftest import new_merchant
from tests.integration.support import (
    ROOT,
    SERVICES,
    MailSink,
    ServiceProcess,
    WebhookReceiver,
    eventually,
    pg_dump,
    run_log_dir,
    statuses_with_batches_closing,
)
from tests.integration.test_end_to_end import auth
from tests.unit.test_least_privilege import WITHOUT_KEYS, assert_cannot_decrypt

# Distinctive Luhn-valid numbers, fresh for each run (fraud's velocity windows outlive a run;
# the simulator approves unknown cards), and distinctive security codes. Declines use the
# simulator's documented test cards.
_VALID_BUT_LUHN = fresh_number("491638")
SALE = Canary(fresh_number("492917"), "8317", "sale")
PREAUTH = Canary(fresh_number("541739"), "9064", "pre-authorization")
SAVED = Canary(fresh_number("455671"), "7752", "saved while paying")
SAVED_CIT = Canary(SAVED.number, "6139", "saved card, customer-initiated")
STORED = Canary(fresh_number("371462", 15), "4821", "POST /v1/cards (amex)")
STORED_CIT = Canary(STORED.number, "5390", "stored card, customer-initiated")
ENCRYPTED = Canary(fresh_number("471629", 19), "2648", "client-side encrypted, 19 digits")
ENCRYPTED_STORED = Canary(fresh_number("979217"), "3159", "client-side encrypted stored card")
SHORT = Canary(fresh_number("402847", 13), "947", "13-digit sale")
DO_NOT_HONOUR = Canary("4000000000000002", "7314", "declined 05")
NO_FUNDS = Canary("4000000000009995", "6042", "declined 51")
BAD_LUHN = Canary(
    _VALID_BUT_LUHN[:-1] + str((int(_VALID_BUT_LUHN[-1]) + 5) % 10), "5807", "invalid: fails Luhn"
)
EXPIRED = Canary(fresh_number("422761"), "9183", "invalid: expired")
TAMPERED = Canary(fresh_number("453914"), "2206", "invalid: tampered JWE")
CONFLICT = Canary(fresh_number("515493"), "8652", "invalid: card and card_token")
IN_TEXT = Canary(fresh_number("601100"), None, "invalid: card number in free text")
CHECKOUT = Canary(fresh_number("448590"), "6271", "hosted payment page (JWE made in the page)")
CHECKOUT_SHOPPER = f"canary-{uuid.uuid4().hex[:8]}@shopper.example"
CANARIES = [
    CHECKOUT,
    IN_TEXT,
    SALE,
    PREAUTH,
    SAVED,
    SAVED_CIT,
    STORED,
    STORED_CIT,
    ENCRYPTED,
    ENCRYPTED_STORED,
    SHORT,
    DO_NOT_HONOUR,
    NO_FUNDS,
    BAD_LUHN,
    EXPIRED,
    TAMPERED,
    CONFLICT,
]


# --- the scanner, on planted data ------------------------------------------------------------


def test_scanner_finds_every_planted_encoding() -> None:
    canary = Canary("4929173952864713", "8317", "planted", ["pay_0001"])
    for name, form in card_forms(canary.number).items():
        dump = f"INSERT INTO public.t VALUES (1, 'x {form} y', '2026-11-26');"  # noqa: S608
        hits = scan(dump_records("fake", dump), [canary])
        assert any(h.kind == f"card number ({name})" for h in hits), name
    expected = {"clear", "spaced", "dashed", "hex", "sha256"}
    assert expected | {"base64#0"} <= set(card_forms(canary.number))
    assert card_forms(canary.number)["sha256"] == hashlib.sha256(canary.number.encode()).hexdigest()

    # Inside bigger encodings: base64 of a whole JSON document at any alignment, upper-case
    # hex, and a bytea column (how pg_dump prints outbox payloads) holding JSON.
    for prefix in ("", "a", "ab", "abc"):
        blob = base64.b64encode(f'{{"n":"{prefix}{canary.number}"}}'.encode()).decode()
        assert scan([Record("blob", blob)], [canary]), prefix
        urlsafe = base64.urlsafe_b64encode(f"{prefix}{canary.number}".encode()).decode()
        assert scan([Record("blob", urlsafe)], [canary]), prefix
    assert scan([Record("hex", canary.number.encode().hex().upper())], [canary])
    payload = json.dumps({"card": {"number": canary.number}}).encode().hex()
    bytea = dump_records("fake", f"INSERT INTO public.outbox VALUES (1, '\\x{payload}');")  # noqa: S608
    assert {h.kind for h in scan(bytea, [canary])} >= {"card number (clear)", "card number (hex)"}


@settings(max_examples=200, deadline=None)
@given(
    body=st.text(alphabet="0123456789", min_size=11, max_size=17),
    prefix=st.binary(max_size=5),
    suffix=st.binary(max_size=5),
)
def test_scanner_finds_any_card_inside_encoded_surroundings(
    body: str, prefix: bytes, suffix: bytes
) -> None:
    number = "4" + body
    number += luhn_check_digit(number)
    canary = Canary(number, label="property")
    raw = prefix + number.encode() + suffix
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        f"x{grouped(number, ' ')}y",
    ):
        assert scan([Record("property", text)], [canary]), text
    assert scan([Record("property", f"card: {number}.")], []), "unknown-number rule"


def test_scanner_finds_webhook_secrets_in_every_form() -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(7, 39))).decode()
    for name, form in secret_forms(secret).items():
        hits = scan_secrets([Record("planted", f"x {form} y")], {"planted": secret})
        assert any(h.kind == f"webhook secret ({name})" for h in hits), name
    inside = base64.b64encode(b'{"k":"' + bytes(range(7, 39)) + b'"}').decode()
    assert scan_secrets([Record("blob", inside)], {"planted": secret})
    assert scan_secrets([Record("hex", bytes(range(7, 39)).hex().upper())], {"p": secret})
    other = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
    assert scan_secrets([Record("other", other)], {"planted": secret}) == []


def test_scanner_finds_security_codes_next_to_their_payment_only() -> None:
    canary = Canary("4929173952864713", "8317", "planted", ["7b0c1e52-0000-4000-8000-000000000001"])
    near = Record(
        "log", '{"msg": "cvc 8317", "payment_id": "7b0c1e52-0000-4000-8000-000000000001"}'
    )
    elsewhere = Record("log", '{"msg": "took 8317 ms", "payment_id": "another"}')
    longer = Record("log", '{"n": 183170, "payment_id": "7b0c1e52-0000-4000-8000-000000000001"}')
    kinds = [h.kind for h in scan([near, elsewhere, longer], [canary])]
    assert kinds == ["security code next to its payment"]


def test_scanner_finds_unknown_card_shaped_numbers_and_ignores_legit_digits() -> None:
    unknown = "5105105105105100"  # a Luhn-valid number that is no canary
    for text in (
        f"number={unknown}",
        f'"{unknown}"',
        "5105 1051 0510 5100",
        "5105-1051-0510-5100",
        "3714 496353 98431",
        f"pan{unknown}",
        "922c0426-7464-4602-8004-670f4676328c 5105-1051-0510-5100",  # next to an id, still found
        f"card.{unknown}",  # after a dot, but no number's fraction
        f"{unknown}.25",
    ):
        assert scan([Record("x", text)], []), text
    rng = random.Random(7)
    legit = [
        str(uuid.UUID(int=rng.getrandbits(128))),
        "922c0426-7464-4602-8004-670f4676328c",  # digit groups that look like 4-4-4-4
        "fp1_" + hashlib.sha256(b"x").hexdigest(),
        "sp1.pan.1." + base64.urlsafe_b64encode(rng.randbytes(60)).decode(),
        "2026-11-26 16:25:41.123456+00",
        "1764174341123",  # epoch milliseconds
        "51051051051051001",  # longer digit run: not a card number by itself
        "4111111111111112",  # fails Luhn
        '{"lat": 28.769202000000003, "log_amount": 5.707110264748875}',  # Luhn-valid fractions
    ]
    legit += [hashlib.sha256(rng.randbytes(16)).hexdigest() for _ in range(2000)]
    legit += [base64.b64encode(rng.randbytes(48)).decode() for _ in range(2000)]
    assert scan([Record("legit", text) for text in legit], []) == []


# --- the real system -------------------------------------------------------------------------


def card(canary: Canary, *, cvc: bool = True, exp: tuple[int, int] = (9, 2031)) -> dict[str, Any]:
    body: dict[str, Any] = {"number": canary.number, "exp_month": exp[0], "exp_year": exp[1]}
    if cvc:
        body["cvc"] = canary.cvc
    return body


def seal(key: dict[str, Any], payload: dict[str, Any], aud: str) -> str:
    binding = {"aud": aud, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    protected = {"alg": key["alg"], "enc": key["enc"], "kid": key["kid"], **binding}
    token = jwe.JWE(json.dumps(payload).encode(), recipient=jwk.JWK(**key), protected=protected)
    return str(token.serialize(compact=True))


def payment(amount: int, capture: bool = True, **source: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "TRY",
        "capture": capture,
        "installments": 1,
        "order_id": f"canary-{uuid.uuid4().hex[:8]}",
        **source,
    }


class Traffic:
    """Sends the mix; remembers each accepted payment's expected end states."""

    def __init__(self, intake: httpx.AsyncClient, api_key: str) -> None:
        self.intake, self.api_key = intake, api_key
        self.expected: dict[str, set[str]] = {}
        self.refused = 0
        self.responses: list[Record] = []  # what merchants were told is scanned too
        self.webhook_secrets: dict[str, str] = {}
        self.merchant_id = ""
        self.webhook_endpoints: list[str] = []

    def saw(self, response: httpx.Response) -> httpx.Response:
        request = response.request
        self.responses.append(
            Record(
                f"http:{request.method} {request.url.path} -> {response.status_code}", response.text
            )
        )
        return response

    async def pay(
        self, canary: Canary, body: dict[str, Any], wanted: set[str], **headers: str
    ) -> dict[str, Any]:
        response = self.saw(
            await self.intake.post(
                "/v1/payments", json=body, headers={**auth(self.api_key), **headers}
            )
        )
        assert response.status_code == 202, response.text
        paid = response.json()
        canary.contexts.append(paid["id"])
        self.expected[paid["id"]] = wanted
        return paid

    async def refused_payment(self, body: dict[str, Any], status: int = 422) -> None:
        response = self.saw(
            await self.intake.post("/v1/payments", json=body, headers=auth(self.api_key))
        )
        assert response.status_code == status, response.text
        self.refused += 1

    async def register_webhook_endpoint(self) -> None:
        """A merchant of its own (so no other test's webhooks change) registers an endpoint
        with an Idempotency-Key and replays it: the secret is then in intake's stored
        answer, on the topic and in notification's table, and must be in clear in none.
        Its answers are the one place it may be in clear, so they are not scanned."""
        created = await new_merchant(self.intake, "Canary hooks")
        headers = {**auth(created["api_key"]), "Idempotency-Key": f"canary-{uuid.uuid4()}"}
        body = {"url": "https://canary-hooks.shop.example/hooks"}
        first = await self.intake.post("/v1/webhook-endpoints", json=body, headers=headers)
        assert first.status_code == 201, first.text
        replay = await self.intake.post("/v1/webhook-endpoints", json=body, headers=headers)
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["secret"] == first.json()["secret"]
        self.webhook_secrets["registered and replayed"] = first.json()["secret"]
        self.webhook_endpoints.append(first.json()["id"])

    async def pay_on_the_page(self, key: dict[str, Any], card_data: dict[str, Any]) -> None:
        """The hosted payment page's flow as the page's script runs it: a checkout session
        with a shopper email (so a receipt is sent), the page (CSRF cookie), and a submit of
        the card as a JWE bound to the session."""
        created = self.saw(
            await self.intake.post(
                "/v1/checkout/sessions",
                json={
                    "amount": 9_900,
                    "currency": "TRY",
                    "order_id": f"canary-page-{uuid.uuid4().hex[:8]}",
                    "shopper": {"email": CHECKOUT_SHOPPER, "name": "Canary Shopper"},
                    "success_url": "https://canary.shop.example/paid",
                    "failure_url": "https://canary.shop.example/failed",
                },
                headers=auth(self.api_key),
            )
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        CHECKOUT.contexts.append(session_id)
        page = self.saw(await self.intake.get(f"/checkout/{session_id}"))
        assert page.status_code == 200, page.text
        csrf = page.cookies["cs_csrf"]
        self.intake.cookies.clear()  # the session client is shared by the whole run
        paid = self.saw(
            await self.intake.post(
                f"/checkout/{session_id}/pay",
                json={"encrypted_card": seal(key, card_data, session_id), "installments": 1},
                headers={"X-CSRF-Token": csrf, "Cookie": f"cs_csrf={csrf}"},
            )
        )
        assert paid.status_code == 202, paid.text
        CHECKOUT.contexts.append(paid.json()["payment_id"])
        self.expected[paid.json()["payment_id"]] = {"settled"}

    async def store(self, canary: Canary, body: dict[str, Any]) -> str:
        response = self.saw(
            await self.intake.post("/v1/cards", json=body, headers=auth(self.api_key))
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["id"]
        canary.contexts.append(token)
        return token


async def send_the_mix(intake: httpx.AsyncClient, api_key: str, merchant_id: str) -> Traffic:
    traffic = Traffic(intake, api_key)
    traffic.merchant_id = merchant_id
    key = (await intake.get("/v1/encryption-keys/current")).json()
    done = {"settled"}

    # Sales and a pre-authorization with clear cards; an idempotent retry of the sale.
    idem = f"canary-{uuid.uuid4()}"
    sale = payment(12_500, card=card(SALE))
    await traffic.pay(SALE, sale, done, **{"Idempotency-Key": idem})
    replay = await intake.post(
        "/v1/payments", json=sale, headers={**auth(api_key), "Idempotency-Key": idem}
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    await traffic.pay(PREAUTH, payment(30_000, capture=False, card=card(PREAUTH)), {"authorized"})
    await traffic.pay(SHORT, payment(4_350, card=card(SHORT)), done)

    # Saved while paying, then merchant- and customer-initiated payments with the token.
    saved = await traffic.pay(SAVED, payment(7_000, card=card(SAVED), save_card=True), done)
    token = saved["card_token"]
    SAVED.contexts.append(token)
    SAVED_CIT.contexts.extend([token, *SAVED.contexts])
    await traffic.pay(SAVED, payment(2_100, card_token=token, initiated_by="merchant"), done)
    await traffic.pay(SAVED_CIT, payment(3_300, card_token=token, cvc=SAVED_CIT.cvc), done)

    # Stored through POST /v1/cards (security code given there: validated, dropped).
    stored = await traffic.store(STORED, {"card": card(STORED)})
    STORED_CIT.contexts.append(stored)
    await traffic.pay(
        STORED_CIT,
        payment(5_600, capture=False, card_token=stored, cvc=STORED_CIT.cvc),
        {"authorized"},
    )
    await traffic.pay(STORED, payment(1_900, card_token=stored, initiated_by="merchant"), done)

    # Client-side encrypted: a payment, and a stored card then paid with.
    await traffic.pay(
        ENCRYPTED,
        payment(8_800, encrypted_card=seal(key, card(ENCRYPTED), traffic.merchant_id)),
        done,
    )
    enc_token = await traffic.store(
        ENCRYPTED_STORED, {"encrypted_card": seal(key, card(ENCRYPTED_STORED), traffic.merchant_id)}
    )
    await traffic.pay(
        ENCRYPTED_STORED,
        payment(6_400, card_token=enc_token, cvc=ENCRYPTED_STORED.cvc),
        done,
    )

    # Declines by the issuer.
    await traffic.pay(DO_NOT_HONOUR, payment(2_500, card=card(DO_NOT_HONOUR)), {"declined"})
    # Over the card's 10.00 limit; a small amount keeps fraud's model from sending it to review.
    await traffic.pay(NO_FUNDS, payment(2_500, card=card(NO_FUNDS)), {"declined"})

    # Invalid requests: refused at the door, nothing emitted.
    await traffic.refused_payment(payment(1_000, card=card(BAD_LUHN)))
    await traffic.refused_payment(payment(1_000, card=card(EXPIRED, exp=(1, 2021))))
    sealed = seal(key, card(TAMPERED), traffic.merchant_id).split(".")
    sealed[3] = sealed[3][:10] + ("A" if sealed[3][10] != "A" else "B") + sealed[3][11:]
    await traffic.refused_payment(payment(1_000, encrypted_card=".".join(sealed)))
    await traffic.refused_payment(payment(1_000, card=card(CONFLICT), card_token=token))
    await traffic.refused_payment(
        payment(1_000, card_token=token, initiated_by="merchant", cvc=CONFLICT.cvc)
    )
    await traffic.refused_payment(payment(1_000, card_token="tok_doesnotexist0"), status=404)
    await traffic.refused_payment(
        payment(1_000, card=card(SALE), description=f"card {grouped(IN_TEXT.number, ' ')}")
    )
    await traffic.refused_payment(
        payment(1_000, card=card(SALE), metadata={"customer_card": IN_TEXT.number})
    )
    await traffic.register_webhook_endpoint()
    await traffic.pay_on_the_page(key, card(CHECKOUT))
    truncated = json.dumps(payment(1_000, card=card(IN_TEXT)))[:-20].encode()
    malformed = traffic.saw(
        await intake.post(
            "/v1/payments",
            content=truncated,
            headers={**auth(api_key), "Content-Type": "application/json"},
        )
    )
    assert malformed.status_code == 422, malformed.text
    return traffic


def email_text(data: bytes) -> str:
    """The message as sent, then each text part decoded (quoted-printable, base64)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    parts = [data.decode(errors="replace")]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(str(part.get_content()))
    return "\n".join(parts)


async def outboxes_drained(databases: dict[str, asyncpg.Pool]) -> bool:
    for pool in databases.values():
        if await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            return False
    return True


async def test_no_card_data_in_databases_topics_or_logs(
    intake: httpx.AsyncClient,
    merchant: dict[str, Any],
    services: dict[str, ServiceProcess],
    databases: dict[str, asyncpg.Pool],
    endpoints: dict[str, str],
    webhooks: WebhookReceiver,
    mail: MailSink,
) -> None:
    infra_logs = sorted(
        p
        for p in (Path(os.environ.get("SANALPOS_STATE_DIR", ROOT / ".state")) / "logs").glob("*")
        if p.is_file() and not p.name.endswith(".prev")
    )
    infra_offsets = {p: p.stat().st_size for p in infra_logs}

    traffic = await send_the_mix(intake, merchant["api_key"], merchant["id"])
    # The sales settle when the merchant's end-of-day batch closes: closed here, by hand.
    reached = await statuses_with_batches_closing(
        intake, services["settlement"].url, merchant, traffic.expected
    )
    for payment_id, wanted in traffic.expected.items():
        status = reached[payment_id]["status"]
        assert status in wanted, (payment_id, status, wanted)
        traffic.responses.append(
            Record(f"http:GET /v1/payments/{payment_id}", json.dumps(reached[payment_id]))
        )
    for path in ("/v1/cards?limit=100", *(f"/v1/cards/{t}" for t in STORED.contexts[:1])):
        traffic.saw(await intake.get(path, headers=auth(merchant["api_key"])))
    await eventually(lambda: outboxes_drained(databases), timeout_s=30)

    async def sale_webhooks_delivered() -> bool:
        return len(webhooks.for_payment(SALE.contexts[0])) >= 3

    await eventually(sale_webhooks_delivered, timeout_s=30)

    async def page_receipt_sent() -> bool:
        return bool(mail.to(CHECKOUT_SHOPPER))

    await eventually(page_receipt_sent, timeout_s=45)
    await asyncio.sleep(1.0)  # log lines of the last handlers reach their files

    records: list[Record] = []
    dumps = {s: pg_dump(endpoints[f"{s.upper()}_DATABASE_URL"]) for s in SERVICES}
    for service, dump in dumps.items():
        records += dump_records(service, dump)
    topics, kafka = await read_all_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"])
    records += kafka
    for service in services.values():
        records += log_records(service.name, service.log_text())
    # *.jsonl: the spans every service exported (trace context and attributes too).
    for path in sorted([*run_log_dir().glob("*.log"), *run_log_dir().glob("*.jsonl*")]):
        if path not in {s.log_path for s in services.values()}:
            records += log_records(f"test-logs/{path.name}", path.read_text(errors="replace"))
    records += traffic.responses
    records += [
        Record(f"webhook:{hook.path}#{n}", json.dumps(hook.headers) + "\n" + hook.body.decode())
        for n, hook in enumerate(list(webhooks.received))
    ]
    # The shopper's emails, as the SMTP server received them (MIME: text, HTML, headers).
    records += [
        Record(f"email:{','.join(to)}#{n}", email_text(data))
        for n, (to, data) in enumerate(list(mail.received))
    ]
    for path, offset in infra_offsets.items():
        with open(path, "rb") as handle:
            handle.seek(offset)
            records += log_records(path.name, handle.read().decode(errors="replace"))

    # The scan proves something only if the run's traces are in what was scanned.
    sale_id = SALE.contexts[0]
    for service in ("intake", "fraud", "authorization", "settlement", "notification"):
        assert sale_id in dumps[service], f"the {service} dump does not hold the sale"
    assert any(sale_id in r.text for r in kafka if r.source.startswith("kafka:payment.initiated"))
    assert any(t.startswith("dlq.") for t in topics)
    assert sale_id in services["intake"].log_text()
    intake_rows = [r for r in records if r.source.startswith("db:intake")]
    assert any('"pan_ciphertext"' in r.text for r in intake_rows), "outbox bytea not decoded"
    assert len(kafka) > len(traffic.expected) and traffic.refused >= 8
    assert any(token in dumps["intake"] for token in STORED.contexts)
    page_payment = CHECKOUT.contexts[-1]
    assert page_payment in dumps["intake"] and page_payment in dumps["notification"]
    assert any(r.source.startswith("email:") and "99,00 TL" in r.text for r in records)

    hits = scan(records, CANARIES)
    assert not hits, f"{len(hits)} card data hits:\n" + "\n".join(map(str, hits[:50]))

    # Webhook signing secrets: the session merchant's (signs every delivery) and one
    # registered with an Idempotency-Key and replayed. Their traces must have been scanned.
    secrets = {"session merchant": merchant["webhook_secret"], **traffic.webhook_secrets}
    [endpoint_id] = traffic.webhook_endpoints
    for service in ("intake", "notification"):
        assert endpoint_id in dumps[service], f"the {service} dump does not hold the endpoint"
    assert "idempotency_keys" in dumps["intake"] and endpoint_id in "\n".join(
        line for line in dumps["intake"].splitlines() if "idempotency_keys" in line
    )
    assert any(
        endpoint_id in r.text
        for r in kafka
        if r.source.startswith("kafka:webhook-endpoint.registered")
    )
    secret_hits = scan_secrets(records, secrets)
    assert not secret_hits, f"{len(secret_hits)} webhook secret hits:\n" + "\n".join(
        map(str, secret_hits[:50])
    )

    # And the ciphertexts that did travel open for none of the services without keys.
    row = await databases["intake"].fetchval(
        "SELECT payload FROM outbox WHERE message_key = $1 AND topic = 'payment.initiated.v1'",
        sale_id,
    )
    event = json.loads(row)["payload"]
    for settings_class in WITHOUT_KEYS:
        configured = settings_class()
        assert_cannot_decrypt(
            configured,
            event["card"]["pan_ciphertext"],
            pan_aad(event["merchant_id"], uuid.UUID(sale_id)),
        )
        assert_cannot_decrypt(
            configured,
            event["card"]["cvc_ciphertext"],
            cvc_aad(event["merchant_id"], uuid.UUID(sale_id)),
        )
