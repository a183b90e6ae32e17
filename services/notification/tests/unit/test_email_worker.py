"""The email worker's decisions after an attempt, with an in-memory outbox and a scripted
SMTP sender: retry with backoff, give up after the last attempt or at once on a 5xx refusal,
and log lines without the address or the body."""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from notification.adapters.shopper_emails import ClaimedEmail, EmailAttempt
from notification.adapters.smtp_sender import SmtpResult
from notification.domain.retry import RetryPolicy
from notification.service_layer.email_worker import EmailMetrics, EmailWorker

ADDRESS = "ayse.secret@example.com"
BODY = "Merhaba Ayse, Visa **** **** **** 1111 body text"


@dataclass
class FakeOutbox:
    attempts: list[EmailAttempt] = field(default_factory=list)
    accept: bool = True

    async def record(self, attempt: EmailAttempt) -> bool:
        self.attempts.append(attempt)
        return self.accept


@dataclass
class ScriptedSender:
    results: list[SmtpResult]

    async def send(self, email: ClaimedEmail) -> SmtpResult:
        return self.results.pop(0)


def _email(attempt: int) -> ClaimedEmail:
    return ClaimedEmail(
        id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        kind="receipt",
        locale="tr",
        to_address=ADDRESS,
        to_name="Ayse",
        subject="Kitap Evi ödeme dekontunuz",
        text_body=BODY,
        html_body=f"<p>{BODY}</p>",
        attempt=attempt,
        created_at=datetime.now(UTC),
    )


def _worker(outbox: FakeOutbox, *results: SmtpResult) -> EmailWorker:
    return EmailWorker(
        outbox=outbox,  # type: ignore[arg-type]
        sender=ScriptedSender(list(results)),  # type: ignore[arg-type]
        policy=RetryPolicy(base_s=10, cap_s=40, max_attempts=3),
        metrics=EmailMetrics(CollectorRegistry()),
        rng=random.Random(7),
    )


DOWN = SmtpResult(False, None, "SMTPConnectError: connection refused", 3)
SENT = SmtpResult(True, 250, None, 12)
REFUSED = SmtpResult(False, 550, "recipient refused (550)", 5, permanent=True)


async def test_a_failed_attempt_is_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    outbox = FakeOutbox()
    worker = _worker(outbox, DOWN)
    before = datetime.now(UTC)
    with caplog.at_level(logging.INFO):
        await worker._deliver(_email(attempt=2))
    [attempt] = outbox.attempts
    assert attempt.status == "pending" and attempt.attempt == 2
    assert attempt.error == DOWN.error and attempt.smtp_code is None
    assert attempt.next_attempt_at is not None
    # Second retry: ceiling min(40, 10 * 2) = 20 s, waited in [10, 20].
    assert before + timedelta(seconds=10) <= attempt.next_attempt_at
    assert attempt.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=20)
    assert "retry at" in caplog.text


async def test_the_last_attempt_gives_up_with_the_reason_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FakeOutbox()
    worker = _worker(outbox, DOWN)
    with caplog.at_level(logging.INFO):
        await worker._deliver(_email(attempt=3))
    [attempt] = outbox.attempts
    assert attempt.status == "failed" and attempt.next_attempt_at is None
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "given up after 3 attempts" in record.getMessage()
    assert "connection refused" in record.getMessage()


async def test_a_refused_recipient_is_given_up_at_once() -> None:
    outbox = FakeOutbox()
    await _worker(outbox, REFUSED)._deliver(_email(attempt=1))
    [attempt] = outbox.attempts
    assert (attempt.status, attempt.smtp_code, attempt.next_attempt_at) == ("failed", 550, None)


async def test_a_sent_email_counts_and_logs_neither_address_nor_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FakeOutbox()
    worker = _worker(outbox, DOWN, SENT)
    with caplog.at_level(logging.DEBUG):
        await worker._deliver(_email(attempt=1))
        await worker._deliver(_email(attempt=2))
    assert [a.status for a in outbox.attempts] == ["pending", "sent"]
    assert worker.sent == 1
    assert caplog.records, "the worker logs its attempts"
    for record in caplog.records:
        text = record.getMessage()
        assert ADDRESS not in text and "body text" not in text and "dekont" not in text


async def test_an_attempt_that_lost_its_lease_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = FakeOutbox(accept=False)
    worker = _worker(outbox, SENT)
    with caplog.at_level(logging.INFO):
        await worker._deliver(_email(attempt=1))
    assert worker.sent == 0
    assert "outlived its lease" in caplog.text
