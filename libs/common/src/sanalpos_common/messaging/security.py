"""How every Kafka client of sanalpos authenticates to the brokers.

Read from the environment (the same for every service, so not under a service prefix):

| variable | values | default |
| --- | --- | --- |
| `SANALPOS_KAFKA_SECURITY_PROTOCOL` | `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` | `PLAINTEXT` |
| `SANALPOS_KAFKA_SASL_MECHANISM` | `SCRAM-SHA-512`, `SCRAM-SHA-256`, `PLAIN` | `SCRAM-SHA-512` |
| `SANALPOS_KAFKA_SASL_USERNAME` | the Kafka user (a Strimzi `KafkaUser` name) | none |
| `SANALPOS_KAFKA_SASL_PASSWORD` | its password (from a Secret) | none |
| `SANALPOS_KAFKA_SSL_CAFILE` | PEM file of the CA that signed the brokers' certificates | the system CAs |

With the default (`PLAINTEXT`) `kafka_client_kwargs()` returns nothing, so a client is built
exactly as before; local runs and tests are unaffected.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSecurity(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANALPOS_KAFKA_", extra="ignore")

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(default=None, repr=False)
    ssl_cafile: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.uses_sasl:
            missing = [
                f"SANALPOS_KAFKA_{name.upper()}"
                for name, value in (
                    ("sasl_username", self.sasl_username),
                    ("sasl_password", self.sasl_password and self.sasl_password.get_secret_value()),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"SANALPOS_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                    + ", ".join(missing)
                )
        if self.ssl_cafile is not None:
            if not self.uses_tls:
                raise ValueError(
                    "SANALPOS_KAFKA_SSL_CAFILE is set but SANALPOS_KAFKA_SECURITY_PROTOCOL="
                    f"{self.security_protocol} does not use TLS"
                )
            if not self.ssl_cafile.is_file():
                raise ValueError(f"SANALPOS_KAFKA_SSL_CAFILE: no such file {self.ssl_cafile}")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (hostname checked) when the protocol uses TLS, else None."""
        if not self.uses_tls:
            return None
        cafile = str(self.ssl_cafile) if self.ssl_cafile is not None else None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def kafka_client_kwargs(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient.

    Every client in sanalpos is built with `**kafka_client_kwargs()`; `security` defaults to
    the environment. PLAINTEXT gives `{}` so the clients keep aiokafka's own defaults."""
    security = security if security is not None else KafkaSecurity()
    if security.security_protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": security.security_protocol}
    context = security.ssl_context()
    if context is not None:
        kwargs["ssl_context"] = context
    if security.uses_sasl:
        assert security.sasl_password is not None  # checked by the validator
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        # aiokafka takes the SCRAM credentials under the PLAIN names too.
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return kwargs
