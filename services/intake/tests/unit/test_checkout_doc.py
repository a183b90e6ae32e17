"""docs/checkout.md's verification example, run as a shop would run it, against results
intake's own code signed (and ones a browser edited)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from intake.domain.checkout import ReturnTo
from intake.service_layer.checkout import result_query
from intake.service_layer.checkout_signing import ResultSigner, generate_signing_key_pem

DOC = Path(__file__).resolve().parents[4] / "docs" / "checkout.md"


def example() -> dict[str, Any]:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_the_documented_verification_accepts_intakes_results_only() -> None:
    verify = example()["verify_checkout_result"]
    signer = ResultSigner.from_pem(generate_signing_key_pem())
    jwks = {"keys": [signer.public_jwk()]}
    row = {"merchant_id": "mer_kadikoy_kitap", "id": "cs_" + "a" * 32}
    query = result_query(signer, row, ReturnTo("succeeded", "https://x"), "p-1")
    assert verify(query, "mer_kadikoy_kitap", jwks)
    assert not verify(query, "mer_other", jwks)  # another merchant's result
    assert not verify({**query, "status": "declined"}, "mer_kadikoy_kitap", jwks)
    assert not verify({**query, "payment_id": "p-2"}, "mer_kadikoy_kitap", jwks)
    assert not verify({**query, "key_id": "cse_unknown"}, "mer_kadikoy_kitap", jwks)
    other = ResultSigner.from_pem(generate_signing_key_pem())
    assert not verify(query, "mer_kadikoy_kitap", {"keys": [other.public_jwk()]})
    old = result_query(
        signer, row, ReturnTo("succeeded", "https://x"), "p-1", int(time.time()) - 3600
    )
    assert not verify(old, "mer_kadikoy_kitap", jwks)
    missing = {k: v for k, v in query.items() if k != "signature"}
    assert not verify(missing, "mer_kadikoy_kitap", jwks)
