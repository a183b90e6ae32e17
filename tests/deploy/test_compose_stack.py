"""docker-compose.yml as a whole stack (no Docker engine here, so `docker compose config`
cannot run): the same set as Kubernetes plus observability, every container health-checked,
services waiting for the infrastructure, environment names the code reads, host ports that do
not clash and mounts of files that exist."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from sanalpos_common.messaging.security import KafkaSecurity
from sanalpos_common.settings import ServiceSettings
from tests.deploy.k8s_support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
INFRA = ("kafka", "postgres", "otel-collector")
EXPECTED = {*SERVICES, *INFRA, "prometheus", "grafana", "mailpit"}
# The collector's image is distroless: nothing inside can run a probe (see the file's comment).
NO_HEALTHCHECK = {"otel-collector"}
# Environment the services read outside their own prefix: ServiceSettings' aliases, the Kafka
# client security (SANALPOS_KAFKA_*), and the OpenTelemetry SDK's standard variables.
SDK_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def shared_names() -> set[str]:
    names = {
        str(field.validation_alias)
        for field in ServiceSettings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    prefix = str(KafkaSecurity.model_config.get("env_prefix", ""))
    return names | {f"{prefix}{name.upper()}" for name in KafkaSecurity.model_fields}


@cache
def settings_names(svc: str) -> frozenset[str]:
    """Every variable a service's settings classes read under its prefix (INTAKE_...), found by
    importing the service's modules and collecting their BaseSettings subclasses."""
    prefix = f"{svc.upper()}_"
    package = importlib.import_module(svc)
    for module in pkgutil.walk_packages(package.__path__, f"{svc}."):
        importlib.import_module(module.name)
    names: set[str] = set()
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.model_config.get("env_prefix") == prefix:
            names |= {
                str(f.validation_alias)
                if isinstance(f.validation_alias, str)
                else prefix + n.upper()
                for n, f in cls.model_fields.items()
            }
    assert names, f"no settings class with prefix {prefix}"
    return frozenset(names)


def test_the_stack_has_every_part() -> None:
    assert set(compose()["services"]) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_container_is_health_checked(name: str) -> None:
    service = compose()["services"][name]
    if name in NO_HEALTHCHECK:
        assert "healthcheck" not in service
        dependents = [
            s for s in compose()["services"].values() if name in (s.get("depends_on") or {})
        ]
        assert all(d["depends_on"][name]["condition"] == "service_started" for d in dependents)
        return
    check = service.get("healthcheck") or {}
    assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    assert check.get("interval") and check.get("retries"), f"{name}: healthcheck without timing"


@pytest.mark.parametrize("svc", SERVICES)
def test_services_wait_for_the_infrastructure(svc: str) -> None:
    depends_on = compose()["services"][svc]["depends_on"]
    assert set(INFRA) <= set(depends_on)
    for dependency in ("kafka", "postgres"):
        assert depends_on[dependency]["condition"] == "service_healthy"


def test_grafana_waits_for_its_datasource_and_mail() -> None:
    depends_on = compose()["services"]["grafana"]["depends_on"]
    assert depends_on["prometheus"]["condition"] == "service_healthy"
    assert depends_on["mailpit"]["condition"] == "service_healthy"


@pytest.mark.parametrize("svc", SERVICES)
def test_service_environment_is_what_the_code_reads(svc: str) -> None:
    env = env_of(compose()["services"][svc])
    known = settings_names(svc) | shared_names() | SDK_VARIABLES
    unknown = sorted(set(env) - known)
    assert not unknown, f"{svc}: no setting reads {unknown} (typo, or a setting that is gone)"
    assert env["OTEL_SERVICE_NAME"] == svc
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_settings_names_are_found() -> None:
    """The collector of setting names sees nested settings classes (a guard on the guard)."""
    assert {"INTAKE_HTTP_PORT", "INTAKE_SIGNING_KEYRING"} <= settings_names("intake")
    assert "NOTIFICATION_DELIVERY_TIMEOUT_S" in settings_names("notification")
    assert "SANALPOS_KAFKA_SECURITY_PROTOCOL" in shared_names()


def host_ports() -> list[tuple[str, str, str]]:
    ports = []
    for name, service in compose()["services"].items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            assert len(parts) == 3, f"{name}: {mapping} must bind a host address (127.0.0.1)"
            ports.append((name, parts[0], parts[1]))
    return ports


def test_host_ports_are_loopback_and_unique() -> None:
    ports = host_ports()
    assert all(address == "127.0.0.1" for _, address, _ in ports)
    numbers = [port for _, _, port in ports]
    clashes = sorted({p for p in numbers if numbers.count(p) > 1})
    assert not clashes, f"host ports used twice: {clashes}"
    # Nor the ports of `make run` / `make test`'s own Kafka and PostgreSQL.
    assert not {"25432", "29192", "29193", "25532"} & set(numbers)


def test_every_mount_exists() -> None:
    data = compose()
    declared = set(data.get("volumes") or {})
    used: set[str] = set()
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"


def test_prometheus_scrapes_the_services_by_their_compose_names() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text())
    targets = {
        target
        for job in config.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }
    services = compose()["services"]
    for svc in SERVICES:
        port = env_of(services[svc])[f"{svc.upper()}_HTTP_PORT"]
        assert f"{svc}:{port}" in targets, f"prometheus does not scrape {svc}"
