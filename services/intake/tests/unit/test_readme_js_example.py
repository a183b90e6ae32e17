"""The browser example in README.md really produces a JWE intake accepts (Node's Web Crypto)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from intake.service_layer.client_encryption import (
    ClientEncryption,
    JweWrongAudience,
    load_or_create_dev_key,
)

README = Path(__file__).resolve().parents[2] / "README.md"
MERCHANT = "mer_demo"
CARD = {"number": "4111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_readme_web_crypto_example_round_trips(tmp_path: Path) -> None:
    block = re.search(r"```javascript\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README lost its JavaScript example"
    key = ClientEncryption.from_pem(load_or_create_dev_key(tmp_path / "k.pem"))
    script = (
        f"const KEY = {json.dumps(key.public_jwk())};\n"
        "globalThis.fetch = async () => ({ json: async () => KEY });\n"
        + block.group(1)
        + f"\nencryptCard('http://unused', '{MERCHANT}', {json.dumps(CARD)})"
        + ".then((jwe) => console.log(jwe));\n"
    )
    (tmp_path / "example.mjs").write_text(script)
    result = subprocess.run(
        [shutil.which("node") or "node", str(tmp_path / "example.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    card, use = key.open_bound(result.stdout.strip(), MERCHANT)
    assert card == CARD
    use.check_fresh()  # made just now
    with pytest.raises(JweWrongAudience):
        key.open_bound(result.stdout.strip(), "mer_someone_else")
