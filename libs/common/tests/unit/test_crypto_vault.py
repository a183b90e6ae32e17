"""Vault transit as KEK, over real HTTP through hvac, against a small fake Vault on 127.0.0.1.

The fake answers the transit endpoints the way Vault does (paths, JSON bodies, `vault:vN:`
ciphertexts, AES-256-GCM with associated data, min_decryption_version, token header, error
bodies); only the key storage is in memory.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.envelope import decrypt, encrypt, key_version, parse, rewrap
from sanalpos_common.crypto.keyring import Keyring, KeyringError, KeyVersionUnavailable
from sanalpos_common.crypto.vault import VaultTransitKeyring, VaultTransitProvider
from sanalpos_common.crypto.wrapping import DecryptionError

TOKEN = "s.test-root-token"
PAN = b"4111111111111111"


class FakeTransit:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def create(self, name: str) -> None:
        self.keys[name] = {"versions": {1: os.urandom(32)}, "min_decryption_version": 1}

    def rotate(self, name: str) -> None:
        versions = self.keys[name]["versions"]
        versions[max(versions) + 1] = os.urandom(32)

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] != ["v1", "transit"] or len(parts) < 4:
            return 404, {"errors": []}
        op, name, rest = parts[2], parts[3], parts[4:]
        with self.lock:
            self.calls.append((op, name))
            key = self.keys.get(name)
            if key is None:
                return (404 if method == "GET" else 400), {"errors": ["encryption key not found"]}
            if op == "keys" and method == "GET" and not rest:
                latest = max(key["versions"])
                return 200, {
                    "data": {
                        "name": name,
                        "type": "aes256-gcm96",
                        "latest_version": latest,
                        "min_decryption_version": key["min_decryption_version"],
                        "min_encryption_version": 0,
                        "keys": {str(v): 1764000000 for v in key["versions"]},
                    }
                }
            if op == "keys" and rest == ["rotate"]:
                self.rotate(name)
                return 204, None
            if op == "keys" and rest == ["config"]:
                key["min_decryption_version"] = int(body["min_decryption_version"])
                return 204, None
            aad = base64.b64decode(body.get("associated_data") or "")
            if op == "encrypt":
                version = max(key["versions"])
                nonce = os.urandom(12)
                plaintext = base64.b64decode(body["plaintext"])
                sealed = AESGCM(key["versions"][version]).encrypt(nonce, plaintext, aad)
                ciphertext = f"vault:v{version}:" + base64.b64encode(nonce + sealed).decode()
                return 200, {"data": {"ciphertext": ciphertext, "key_version": version}}
            if op == "decrypt":
                _, v, payload = str(body["ciphertext"]).split(":", 2)
                version = int(v.removeprefix("v"))
                if version < key["min_decryption_version"]:
                    return 400, {
                        "errors": [
                            "ciphertext or signature version is disallowed by policy (too old)"
                        ]
                    }
                raw = base64.b64decode(payload)
                try:
                    plain = AESGCM(key["versions"][version]).decrypt(raw[:12], raw[12:], aad)
                except (InvalidTag, KeyError):
                    return 400, {"errors": ["cipher: message authentication failed"]}
                return 200, {"data": {"plaintext": base64.b64encode(plain).decode()}}
        return 405, {"errors": ["unsupported operation"]}


@pytest.fixture()
def vault() -> Iterator[tuple[FakeTransit, str]]:
    fake = FakeTransit()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            if self.headers.get("X-Vault-Token") != TOKEN:
                status, doc = 403, {"errors": ["permission denied"]}
            else:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, doc = fake.handle(self.command, self.path, body)
            payload = b"" if doc is None else json.dumps(doc).encode()
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, token: str = TOKEN) -> hvac.Client:
    return hvac.Client(url=url, token=token)


def test_round_trip_kek_stays_in_vault(vault: tuple[FakeTransit, str]) -> None:
    fake, url = vault
    fake.create("pan")
    ring = VaultTransitProvider(client(url)).keyring("pan")
    aad = pan_aad("mer_a", __import__("uuid").UUID(int=1))
    token = encrypt(ring, PAN, aad)
    assert token.startswith("sp2.pan.1.")
    assert parse(token).wrapped.startswith(b"vault:v1:")
    assert PAN.decode() not in token
    assert decrypt(ring, token, aad) == PAN
    assert ("encrypt", "pan") in fake.calls and ("decrypt", "pan") in fake.calls


def test_wrapped_key_is_bound_to_the_record(vault: tuple[FakeTransit, str]) -> None:
    fake, url = vault
    fake.create("pan")
    ring = VaultTransitKeyring(client(url), "pan")
    token = encrypt(ring, PAN, b"record-a")
    with pytest.raises(DecryptionError):
        decrypt(ring, token, b"record-b")
    # a header that lies about the version is caught before Vault is asked
    forged = token.replace("sp2.pan.1.", "sp2.pan.2.", 1)
    with pytest.raises(DecryptionError, match="disagree"):
        decrypt(ring, forged, b"record-a")


def test_rotation_in_vault_new_writes_newest_old_decrypt_rewrap_moves_forward(
    vault: tuple[FakeTransit, str],
) -> None:
    fake, url = vault
    fake.create("pan")
    provider = VaultTransitProvider(client(url))
    ring = provider.keyring("pan")
    old = encrypt(ring, PAN, b"a")
    client(url).secrets.transit.rotate_key("pan")
    provider.reload()
    assert ring.active_version == 2
    new = encrypt(ring, PAN, b"a")
    assert key_version(new) == ("pan", 2)
    assert decrypt(ring, old, b"a") == PAN
    moved = rewrap(old, ring, b"a")
    assert key_version(moved) == ("pan", 2)
    assert parse(moved).data == parse(old).data
    assert rewrap(moved, ring, b"a") == moved
    # Vault's min_decryption_version plays "disabled/destroyed" for v1
    client(url).secrets.transit.update_key_configuration("pan", min_decryption_version=2)
    with pytest.raises(KeyVersionUnavailable):
        decrypt(ring, old, b"a")
    assert decrypt(ring, moved, b"a") == PAN


def test_sp1_tokens_are_not_confused_with_sp2(vault: tuple[FakeTransit, str]) -> None:
    fake, url = vault
    fake.create("pan")
    ring = VaultTransitKeyring(client(url), "pan")
    local = encrypt(Keyring.generate("pan"), PAN, b"a")
    with pytest.raises(DecryptionError, match="sp1:'pan'"):
        decrypt(ring, local, b"a")


def test_vault_errors_are_not_mistaken_for_bad_ciphertexts(vault: tuple[FakeTransit, str]) -> None:
    fake, url = vault
    fake.create("pan")
    token = encrypt(VaultTransitKeyring(client(url), "pan"), PAN, b"a")
    with pytest.raises(hvac.exceptions.Forbidden):
        decrypt(VaultTransitKeyring(client(url, "wrong-token"), "pan"), token, b"a")
    with pytest.raises(KeyringError, match="not found"):
        VaultTransitKeyring(client(url), "missing").refresh()


def test_provider_from_spec_reads_vault_address_and_token_from_env(
    vault: tuple[FakeTransit, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sanalpos_common.crypto.providers import LiveKeyring, provider_from_spec

    fake, url = vault
    fake.create("sanalpos-pan")
    monkeypatch.setenv("VAULT_ADDR", url)
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    live = LiveKeyring(provider_from_spec("pan", "vault-transit:transit/sanalpos-pan"), "pan")
    token = encrypt(live, PAN, b"a")
    assert token.startswith("sp2.sanalpos-pan.1.")
    assert decrypt(live, token, b"a") == PAN
