"""JWE from an independent implementation (jwcrypto) decrypts; anything else is refused."""

from __future__ import annotations

import json
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe, jwk

from intake.config import IntakeSettings
from intake.service_layer.client_encryption import (
    ClientEncryption,
    JweExpired,
    JweNotBound,
    JweReused,
    JweWrongAudience,
    UnreadableCardPayload,
    load_or_create_dev_key,
)
from sanalpos_common.crypto.sealed import SealedKeyring

PAYLOAD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


@pytest.fixture(scope="module")
def platform_key(tmp_path_factory: pytest.TempPathFactory) -> ClientEncryption:
    return ClientEncryption.from_pem(load_or_create_dev_key(tmp_path_factory.mktemp("k") / "k.pem"))


def seal(key: ClientEncryption, payload: object, **header: str) -> str:
    public = jwk.JWK(**key.public_jwk())
    protected = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key.kid, **header}
    token = jwe.JWE(json.dumps(payload).encode(), recipient=public, protected=protected)
    return str(token.serialize(compact=True))


def test_published_jwk_is_public_only(platform_key: ClientEncryption) -> None:
    published = platform_key.public_jwk()
    assert published["alg"] == "RSA-OAEP-256" and published["enc"] == "A256GCM"
    assert published["use"] == "enc" and published["kid"] == platform_key.kid
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(published)


def test_jwcrypto_jwe_decrypts(platform_key: ClientEncryption) -> None:
    assert platform_key.decrypt(seal(platform_key, PAYLOAD)) == PAYLOAD


def test_tampered_wrong_alg_wrong_key_and_non_objects_are_refused(
    platform_key: ClientEncryption,
) -> None:
    good = seal(platform_key, PAYLOAD).split(".")
    ciphertext = good[3]
    middle = len(ciphertext) // 2
    flipped = (
        ciphertext[:middle] + ("A" if ciphertext[middle] != "A" else "B") + ciphertext[middle + 1 :]
    )
    other = ClientEncryption.from_pem(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    bad = [
        ".".join([*good[:3], flipped, good[4]]),
        seal(platform_key, PAYLOAD, alg="RSA-OAEP"),
        seal(platform_key, PAYLOAD, enc="A128GCM"),
        seal(platform_key, PAYLOAD, zip="DEF"),
        seal(other, PAYLOAD),
        seal(platform_key, ["not", "an", "object"]),
        "not-a-jwe",
    ]
    for value in bad:
        with pytest.raises(UnreadableCardPayload) as info:
            platform_key.decrypt(value)
        assert "4111" not in str(info.value)


def test_dev_key_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "key.pem"
    first = load_or_create_dev_key(path)
    assert load_or_create_dev_key(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_small_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(  # noqa: S505 - refused on purpose
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="2048"):
        ClientEncryption.from_pem(small)


def test_production_requires_a_configured_client_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    for name, value in {
        "INTAKE_DATABASE_URL": "postgresql://x@db/x",
        "INTAKE_PAN_KEYRING": '{"id": "pan", "active": 1, "keys": {"1": "' + "A" * 43 + '="}}',
        "INTAKE_CVC_KEYRING": '{"id": "cvc", "active": 1, "keys": {"1": "' + "B" * 43 + '="}}',
        "INTAKE_FINGERPRINT_KEY": "a-real-fingerprint-key",
        "INTAKE_ADMIN_TOKEN": "a-real-admin-token",
        "INTAKE_WEBHOOK_SECRET_KEYRING": SealedKeyring.generate("webhook").public_only().to_json(),
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="client_encryption_key"):
        IntakeSettings()
    monkeypatch.setenv("INTAKE_CLIENT_ENCRYPTION_KEY", "-----BEGIN PRIVATE KEY-----...")
    assert IntakeSettings().client_encryption_key is not None


def test_unwritable_state_folder_falls_back_to_an_ephemeral_dev_key(tmp_path: Path) -> None:
    from intake.bootstrap import client_key_pem

    blocker = tmp_path / "a-file"  # a folder cannot be made under a file, not even by root
    blocker.write_text("")
    settings = IntakeSettings(SANALPOS_STATE_DIR=blocker / "state")  # type: ignore[call-arg]
    first, second = client_key_pem(settings), client_key_pem(settings)
    assert ClientEncryption.from_pem(first).kid != ClientEncryption.from_pem(second).kid


# --- binding: aud, iat, jti -------------------------------------------------------------------

MERCHANT = "mer_bound"


def bound(key: ClientEncryption, **header: Any) -> str:
    claims = {"aud": MERCHANT, "iat": int(time.time()), "jti": uuid.uuid4().hex, **header}
    claims = {k: v for k, v in claims.items() if v is not None}
    public = jwk.JWK(**key.public_jwk())
    protected = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key.kid, **claims}
    token = jwe.JWE(json.dumps(PAYLOAD).encode(), recipient=public, protected=protected)
    return str(token.serialize(compact=True))


def test_a_bound_token_opens_for_its_merchant(platform_key: ClientEncryption) -> None:
    jti = uuid.uuid4().hex
    payload, use = platform_key.open_bound(bound(platform_key, jti=jti), MERCHANT)
    assert payload == PAYLOAD
    assert (use.merchant_id, use.jti) == (MERCHANT, jti)
    use.check_fresh()
    assert use.expires_at.timestamp() == pytest.approx(time.time() + 900 + 60, abs=5)


def test_a_token_made_for_another_merchant_is_refused(platform_key: ClientEncryption) -> None:
    with pytest.raises(JweWrongAudience):
        platform_key.open_bound(bound(platform_key), "mer_someone_else")


@pytest.mark.parametrize(
    "header",
    [
        {"aud": None},
        {"iat": None},
        {"jti": None},
        {"iat": "1700000000"},
        {"iat": True},
        {"jti": "short"},
        {"jti": "has spaces in it, sixteen+"},
        {"aud": ""},
    ],
)
def test_an_unbound_token_is_refused(
    platform_key: ClientEncryption, header: dict[str, Any]
) -> None:
    with pytest.raises(JweNotBound):
        platform_key.open_bound(bound(platform_key, **header), MERCHANT)


def test_stale_and_future_tokens_are_refused_when_used(platform_key: ClientEncryption) -> None:
    now = int(time.time())
    _, old = platform_key.open_bound(bound(platform_key, iat=now - 901), MERCHANT)
    with pytest.raises(JweExpired):
        old.check_fresh(now)
    _, ahead = platform_key.open_bound(bound(platform_key, iat=now + 61), MERCHANT)
    with pytest.raises(JweExpired):
        ahead.check_fresh(now)
    _, fine = platform_key.open_bound(bound(platform_key, iat=now - 899), MERCHANT)
    fine.check_fresh(now)
    _, skewed = platform_key.open_bound(bound(platform_key, iat=now + 59), MERCHANT)
    skewed.check_fresh(now)


def test_binding_refusals_name_the_encrypted_card_field(platform_key: ClientEncryption) -> None:
    from intake.service_layer.errors import problem_of

    for exc in (JweWrongAudience("x"), JweExpired("x"), JweReused("x"), JweNotBound("x")):
        problem = problem_of(exc)
        assert problem is not None and problem.status == 422
        [error] = problem.errors
        assert error.field == "encrypted_card" and error.code == exc.code
