"""HTTP-only response bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EncryptionKeyOut(BaseModel):
    """A JSON Web Key (RFC 7517): the public key to encrypt card data to in the browser."""

    kty: str = Field(description="Key type, always `RSA`", examples=["RSA"])
    kid: str = Field(
        description="Key id: goes in the JWE header so we know which key to decrypt with",
        examples=["card-2026-11"],
    )
    use: str = Field(description="Always `enc` (encryption)", examples=["enc"])
    alg: str = Field(description="Key management algorithm for the JWE", examples=["RSA-OAEP-256"])
    enc: str = Field(description="Content encryption algorithm for the JWE", examples=["A256GCM"])
    n: str = Field(
        description="RSA modulus, base64url",
        examples=[
            "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
        ],
    )
    e: str = Field(description="RSA public exponent, base64url", examples=["AQAB"])
