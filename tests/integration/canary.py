"""The canary scanner: looks for card data (and webhook signing secrets, `scan_secrets`) in
everything the system wrote down.

Sources are turned into `Record`s (a database row, a Kafka message, a log line); `scan` looks
in each for

- each canary card number in clear and in common encodings: spaced and dashed groups of four,
  base64 of the digits (standard and URL-safe alphabets, at every byte alignment, so it is
  also found inside a longer base64 blob), hex of its ASCII, and an unkeyed SHA-256 hex;
- each canary security code *in the context of its payment*: as a stand-alone number in a
  record that also names one of that card's payment ids or tokens (a bare three- or
  four-digit number is everywhere; next to its payment it is a leak);
- any Luhn-valid run of 13-19 digits not part of a longer digit run, and any Luhn-valid
  number written in groups (4-4-4-4[-1..3] or 4-6-5, spaces or dashes), except two narrow,
  documented shapes of legitimate data: a run inside a long encoded token that also holds
  letters (a hex digest, base64 ciphertext: random data, see `_inside_encoded_blob`) and a
  13-digit epoch-milliseconds timestamp of these years (no 13-digit card number starts with
  1). A canary number is found in those shapes anyway by the exact searches above.

Hits name the source, the kind and where, never the card number itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sanalpos_common.crypto.card import luhn_check_digit, luhn_valid


@dataclass(frozen=True)
class Canary:
    """A card number we sent, its security code, and the ids it travelled under."""

    number: str
    cvc: str | None = None
    label: str = ""
    contexts: list[str] = field(default_factory=list)  # payment ids and tokens, filled in later


@dataclass(frozen=True)
class Record:
    source: str  # e.g. "db:intake line 812", "kafka:payment.initiated.v1[0]@17", "log:intake:44"
    text: str


@dataclass(frozen=True)
class Hit:
    source: str
    kind: str
    canary: str = ""
    where: str = ""

    def __str__(self) -> str:
        who = f" ({self.canary})" if self.canary else ""
        return f"{self.kind}{who} in {self.source} {self.where}".strip()


def fresh_number(prefix: str, length: int = 16) -> str:
    """A Luhn-valid number never used before: fraud's velocity windows outlive a test run
    (they are rebuilt from changelog topics), so a fixed card would be declined by fraud
    after a few runs within the hour."""
    middle = "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return prefix + middle + luhn_check_digit(prefix + middle)


def grouped(number: str, sep: str) -> str:
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def base64_fragments(data: bytes) -> set[str]:
    """The characters of base64(data) that do not depend on neighbouring bytes, for each of
    the three alignments data can have inside a longer encoded value, in both alphabets."""
    found: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = -(-8 * offset // 6)  # first character made only of data bits
        end = (8 * (offset + len(data))) // 6  # one past the last such character
        fragment = encoded[start:end]
        found.add(fragment)
        found.add(fragment.translate(str.maketrans("+/", "-_")))
    return found


def card_forms(number: str) -> dict[str, str]:
    """Every encoding the scan looks for, by name."""
    forms = {
        "clear": number,
        "spaced": grouped(number, " "),
        "dashed": grouped(number, "-"),
        "hex": number.encode().hex(),
        "sha256": hashlib.sha256(number.encode()).hexdigest(),
    }
    if len(number) == 15:  # American Express prints 4-6-5
        forms["spaced-4-6-5"] = f"{number[:4]} {number[4:10]} {number[10:]}"
        forms["dashed-4-6-5"] = f"{number[:4]}-{number[4:10]}-{number[10:]}"
    for i, fragment in enumerate(sorted(base64_fragments(number.encode()))):
        forms[f"base64#{i}"] = fragment
    return forms


_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_GROUPED = re.compile(
    r"(?<!\d)(?<!\d[ -])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{5})(?![\d])"
)
_BLOB_CHARS = re.compile(r"[A-Za-z0-9+/_-]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _inside_uuid(text: str, start: int, end: int) -> bool:
    """UUIDs whose middle groups happen to be all digits look like 4-4-4-4 card numbers
    ('922c0426-7464-4602-8004-670f…'); a match wholly inside a UUID is an id, not a card."""
    lo = max(0, start - 36)
    return any(m.start() <= start and end <= m.end() for m in _UUID.finditer(text, lo, end + 36))


_EPOCH_MS_WINDOW = 10 * 365 * 24 * 3600 * 1000


def _inside_encoded_blob(text: str, start: int, end: int) -> bool:
    """True when the digits sit inside a token of 32+ base64/hex characters that also holds
    letters: a digest, a key or a ciphertext, where digit runs occur by chance."""
    left = start
    while left > 0 and _BLOB_CHARS.match(text, left - 1):
        left -= 1
    right = end
    while right < len(text) and _BLOB_CHARS.match(text, right):
        right += 1
    token = text[left:right]
    return len(token) >= 32 and any(c.isalpha() for c in token)


def _inside_alnum_word(text: str, start: int, end: int) -> bool:
    """Digits glued to letters (an auth code like 'X947AB', a hex run): not a code by itself."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return before.isalpha() or after.isalpha()


def _decimal_fraction(text: str, start: int) -> bool:
    """Digits right after '<digit>.' are the fraction of a number (a coordinate, a model
    feature like 5.707110264748875): floats print up to 17 digits, some of them Luhn-valid."""
    return start >= 2 and text[start - 1] == "." and text[start - 2].isdigit()


def _epoch_millis(digits: str) -> bool:
    return (
        len(digits) == 13
        and digits[0] == "1"
        and abs(int(digits) - time.time() * 1000) < _EPOCH_MS_WINDOW
    )


def luhn_runs(text: str) -> list[tuple[int, str]]:
    """(position, masked) of every card-shaped Luhn-valid number in the text."""
    found = []
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group()
        if not luhn_valid(digits) or _epoch_millis(digits):
            continue
        if _decimal_fraction(text, match.start()):
            continue
        if _inside_encoded_blob(text, match.start(), match.end()):
            continue
        found.append((match.start(), digits[:6] + "…" + digits[-4:]))
    for match in _GROUPED.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if luhn_valid(digits) and not _inside_uuid(text, match.start(), match.end()):
            found.append((match.start(), digits[:6] + "…" + digits[-4:]))
    return found


def scan(records: Iterable[Record], canaries: Sequence[Canary]) -> list[Hit]:
    # Digits and hex compare case-blind (lower-cased needle and text); base64 is case-sensitive.
    needles = [
        (canary, name, form if name.startswith("base64") else form.lower())
        for canary in canaries
        for name, form in card_forms(canary.number).items()
    ]
    cvc_patterns = [
        (canary, re.compile(rf"(?<!\d){re.escape(canary.cvc)}(?!\d)"))
        for canary in canaries
        if canary.cvc
    ]
    hits: list[Hit] = []
    for record in records:
        text, lowered = record.text, record.text.lower()
        for canary, name, needle in needles:
            position = (text if name.startswith("base64") else lowered).find(needle)
            if position >= 0:
                hits.append(
                    Hit(record.source, f"card number ({name})", canary.label, f"@{position}")
                )
        for canary, pattern in cvc_patterns:
            if not any(ctx in text for ctx in canary.contexts):
                continue
            for match in pattern.finditer(text):
                # Three or four digits turn up by chance inside hex digests, base64 ciphertexts,
                # UUIDs and auth codes; a code standing on its own is what would leak.
                if (
                    _inside_encoded_blob(text, match.start(), match.end())
                    or _inside_uuid(text, match.start(), match.end())
                    or _inside_alnum_word(text, match.start(), match.end())
                ):
                    continue
                hits.append(
                    Hit(
                        record.source,
                        "security code next to its payment",
                        canary.label,
                        f"@{match.start()}",
                    )
                )
                break
        for position, masked in luhn_runs(text):
            hits.append(Hit(record.source, "Luhn-valid card-shaped number", masked, f"@{position}"))
    return hits


def secret_forms(secret: str) -> dict[str, str]:
    """A webhook signing secret (`whsec_<base64 key>`) as it could be written down: whole,
    its base64 part alone (with or without padding, either alphabet), the key's hex, and
    base64 fragments of the key inside a longer encoding."""
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    forms = {
        "secret": secret,
        "secret-base64": encoded.rstrip("="),
        "secret-base64url": encoded.rstrip("=").translate(str.maketrans("+/", "-_")),
        "secret-hex": key.hex(),
    }
    for i, fragment in enumerate(sorted(base64_fragments(key))):
        forms[f"secret-key-base64#{i}"] = fragment
    return forms


def scan_secrets(records: Iterable[Record], secrets_: dict[str, str]) -> list[Hit]:
    """Hits for each webhook secret (by label) in any of its forms; hex compares case-blind."""
    hits: list[Hit] = []
    needles = [
        (label, name, form.lower() if name == "secret-hex" else form)
        for label, secret in secrets_.items()
        for name, form in secret_forms(secret).items()
    ]
    for record in records:
        lowered = record.text.lower()
        for label, name, needle in needles:
            position = (lowered if name == "secret-hex" else record.text).find(needle)
            if position >= 0:
                hits.append(Hit(record.source, f"webhook secret ({name})", label, f"@{position}"))
    return hits


# --- turning sources into records ----------------------------------------------------------

_BYTEA = re.compile(r"'\\{1,2}x([0-9a-fA-F]*)'")


def dump_records(service: str, dump: str) -> list[Record]:
    """One record per line of `pg_dump --inserts` (one row each); bytea values (outbox
    payloads) are decoded and searched as text too, within the same record."""
    records = []
    for number, line in enumerate(dump.splitlines(), start=1):
        decoded = [
            bytes.fromhex(m.group(1)).decode("utf-8", errors="replace")
            for m in _BYTEA.finditer(line)
            if len(m.group(1)) % 2 == 0
        ]
        text = line if not decoded else line + "\n" + "\n".join(decoded)
        records.append(Record(f"db:{service} line {number}", text))
    return records


def log_records(name: str, text: str) -> list[Record]:
    return [Record(f"log:{name}:{n}", line) for n, line in enumerate(text.splitlines(), start=1)]


def kafka_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Record:
    parts = [
        (key or b"").decode("utf-8", errors="replace"),
        (value or b"").decode("utf-8", errors="replace"),
        *(f"{k}={(v or b'').decode('utf-8', errors='replace')}" for k, v in headers),
    ]
    return Record(f"kafka:{topic}[{partition}]@{offset}", "\n".join(parts))


async def read_all_topics(bootstrap_servers: str) -> tuple[list[str], list[Record]]:
    """Every topic on the broker (internal and dead-letter topics included), from the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="canary-scan")
    await admin.start()
    try:
        names = sorted(await admin.list_topics())
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",  # aborted transactional writes count too
        client_id="canary-scan",
    )
    await consumer.start()
    records: list[Record] = []
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in names
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        for tp in partitions:
            if tp in remaining and await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)  # everything before the start offset was deleted
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for messages in batch.values():
                for m in messages:
                    records.append(
                        kafka_record(
                            m.topic, m.partition, m.offset, m.key, m.value, list(m.headers or ())
                        )
                    )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise AssertionError(f"could not read to the end of {sorted(map(str, remaining))}")
    finally:
        await consumer.stop()
    return names, records
