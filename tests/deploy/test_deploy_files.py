"""Static checks of the deployment files: Dockerfiles, docker-compose.yml, deploy/k8s.

No network, no Docker engine, no cluster: YAML is parsed with PyYAML and the Kubernetes
manifests are validated against the JSON schemas that the kubernetes-validate package ships
(operator kinds: the CRD schemas in tests/deploy/crd_schemas/, see tests/deploy/k8s_support.py).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.k8s_support import doc_name, render, schema_errors

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEV_SECRETS_FILE = ROOT / "deploy" / "compose" / "dev-secrets.env"
POSTGRES_INIT = ROOT / "deploy" / "compose" / "postgres-init.sh"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
K8S_DEV_OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "dev"

SERVICES: dict[str, int] = {
    "intake": 18000,
    "fraud": 18001,
    "authorization": 18002,
    "settlement": 18003,
    "notification": 18004,
}
# The secrets each service must get (besides <P>DATABASE_URL), and no others.
SERVICE_SECRETS: dict[str, set[str]] = {
    "intake": {
        "INTAKE_PAN_KEYRING",
        "INTAKE_CVC_KEYRING",
        "INTAKE_FINGERPRINT_KEY",
        "INTAKE_ADMIN_TOKEN",
        "INTAKE_CLIENT_ENCRYPTION_KEY",
        "INTAKE_CHECKOUT_SIGNING_KEY",
        "INTAKE_SIGNING_KEYRING",
        "INTAKE_WEBHOOK_SECRET_KEYRING",
    },
    "fraud": {"FRAUD_ADMIN_TOKEN"},
    "authorization": {
        "AUTHORIZATION_PAN_KEYRING",
        "AUTHORIZATION_CVC_KEYRING",
        "AUTHORIZATION_ISSUER_KEY",
        "AUTHORIZATION_ADMIN_TOKEN",
    },
    "settlement": {"SETTLEMENT_ADMIN_TOKEN"},
    "notification": {"NOTIFICATION_WEBHOOK_SECRET_KEYRING", "NOTIFICATION_SMTP_PASSWORD"},
}
# The kind each service runs as: fraud a StatefulSet (a volume claim per replica for faust's
# RocksDB tables), the others Deployments.
WORKLOAD_KINDS: dict[str, str] = {svc: "Deployment" for svc in SERVICES} | {"fraud": "StatefulSet"}
FAUST_DATA_DIR = "/var/lib/sanalpos/faust"
SETTINGS_CLASSES = {
    "intake": "intake.config:IntakeSettings",
    "fraud": "fraud.config:FraudSettings",
    "authorization": "authorization.config:AuthorizationSettings",
    "settlement": "settlement.config:SettlementSettings",
    "notification": "notification.config:NotificationSettings",
}
CARD_KEY_PATTERN = re.compile(r"(PAN_KEYRING|CVC_KEYRING|FINGERPRINT_KEY|ISSUER_KEY)$")
SECRET_NAME_PATTERN = re.compile(r"(KEY|KEYRING|TOKEN|SECRET|PASSWORD)$")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def prefix(svc: str) -> str:
    return f"{svc.upper()}_"


def secret_settings(svc: str) -> set[str]:
    """The environment names of a service's secret settings (SecretStr fields, the database
    URL aside): production refuses to start while any of them is missing or a dev default."""
    module_name, _, class_name = SETTINGS_CLASSES[svc].partition(":")
    settings_class = getattr(importlib.import_module(module_name), class_name)
    return {
        f"{prefix(svc)}{name.upper()}"
        for name, field in settings_class.model_fields.items()
        if "SecretStr" in repr(field.annotation) and name != "database_url"
    }


# --------------------------------------------------------------------------- loading


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's `environment`, in either of its two forms, as a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def k8s_manifest_files() -> list[Path]:
    return sorted(
        p
        for p in K8S_BASE.rglob("*")
        if p.suffix in {".yaml", ".yml"} and p.name != "kustomization.yaml"
    )


def k8s_documents() -> list[tuple[str, int, dict[str, Any]]]:
    docs = []
    for path in k8s_manifest_files():
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                docs.append((str(path.relative_to(ROOT)), index, doc))
    return docs


K8S_DOCS = k8s_documents()
# The services' pods, whatever runs them (a Deployment or a StatefulSet).
WORKLOADS = [(f, d) for f, _, d in K8S_DOCS if d.get("kind") in set(WORKLOAD_KINDS.values())]


def doc_id(item: tuple[str, int, dict[str, Any]]) -> str:
    path, index, doc = item
    return f"{path}#{index}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def service_of(doc: dict[str, Any]) -> str:
    name = doc["metadata"]["labels"]["app.kubernetes.io/name"]
    assert name in SERVICES, f"unknown service label {name!r}"
    return str(name)


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def env_entries(node: Any) -> Iterator[dict[str, Any]]:
    """Every entry of every `env:` list anywhere in a manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from (e for e in value if isinstance(e, dict))
            else:
                yield from env_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_entries(item)


QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
QUANTITY_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity ("250m", "512Mi", 1) as a number."""
    match = QUANTITY.fullmatch(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * QUANTITY_FACTORS[match.group(2)]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("svc", SERVICES)
def test_every_secret_setting_is_deployed(svc: str) -> None:
    """A secret setting the deployments do not pass would stop the service in production
    (dev defaults are refused there), so each one must be in SERVICE_SECRETS, which the
    compose and Kubernetes checks below hold the files to."""
    missing = secret_settings(svc) - SERVICE_SECRETS[svc]
    assert not missing, f"{svc}: secret settings not deployed: {sorted(missing)}"


# --------------------------------------------------------------------------- compose


def test_compose_has_services_kafka_and_postgres() -> None:
    services = load_compose().get("services", {})
    missing = {*SERVICES, "kafka", "postgres"} - set(services)
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_compose_infrastructure() -> None:
    services = load_compose()["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    assert str(kafka["image"]).startswith("apache/kafka:4."), kafka["image"]
    assert "controller" in compose_env(kafka)["KAFKA_PROCESS_ROLES"], "Kafka must run KRaft"
    assert str(postgres["image"]).startswith("postgres:16"), postgres["image"]
    for infra in (kafka, postgres):
        assert infra.get("healthcheck", {}).get("test"), "infrastructure needs a healthcheck"
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    mounts = [str(v) for v in postgres.get("volumes", [])]
    assert any(
        v.startswith("./deploy/compose/postgres-init.sh:/docker-entrypoint-initdb.d/")
        for v in mounts
    ), mounts
    assert POSTGRES_INIT.is_file()
    assert POSTGRES_INIT.stat().st_mode & 0o111, "postgres-init.sh must be executable"
    init = POSTGRES_INIT.read_text()
    for svc in SERVICES:
        assert svc in init, f"postgres-init.sh does not create the {svc} database"


@pytest.mark.parametrize("svc", SERVICES)
def test_compose_service_health_and_dependencies(svc: str) -> None:
    service = load_compose()["services"][svc]
    healthcheck = service.get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{svc}: no healthcheck"
    assert not healthcheck.get("disable"), f"{svc}: healthcheck disabled"
    assert "/healthz" in str(healthcheck["test"]), f"{svc}: healthcheck does not hit /healthz"
    depends_on = service.get("depends_on")
    assert isinstance(depends_on, dict), f"{svc}: depends_on must be the long form"
    for dependency in ("kafka", "postgres"):
        assert depends_on.get(dependency, {}).get("condition") == "service_healthy", (
            f"{svc}: must wait for {dependency} to be healthy"
        )


@pytest.mark.parametrize("svc", SERVICES)
def test_compose_service_env(svc: str) -> None:
    env = compose_env(load_compose()["services"][svc])
    p = prefix(svc)
    assert env.get(f"{p}HTTP_PORT") == str(SERVICES[svc])
    assert env.get(f"{p}HTTP_HOST") == "0.0.0.0", f"{svc} must listen beyond loopback"
    assert env.get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092"
    assert env.get("SANALPOS_ENV") == "development"
    assert env.get(f"{p}DATABASE_URL", "").startswith(f"postgresql://sanalpos_{svc}:")
    assert env[f"{p}DATABASE_URL"].endswith(f"@postgres:5432/sanalpos_{svc}")
    secrets = {name for name in env if SECRET_NAME_PATTERN.search(name)}
    assert secrets == SERVICE_SECRETS[svc], f"{svc} gets exactly its own secrets"


def test_compose_secrets_are_never_inlined() -> None:
    for name, service in load_compose()["services"].items():
        for key, value in compose_env(service).items():
            if SECRET_NAME_PATTERN.search(key) and not value.startswith("file:/"):
                # A `file:` key source names where the keys live (a volume), not the keys.
                assert re.fullmatch(r"\$\{[A-Za-z0-9_]+(:?[?-][^}]*)?\}", value), (
                    f"{name}: {key} must be a ${{...}} reference to dev-secrets.env"
                )
            if key.endswith("DATABASE_URL"):
                password = value.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
                assert password.startswith("${"), f"{name}: {key} inlines a password"


def test_compose_interpolations_come_from_dev_secrets() -> None:
    text = DEV_SECRETS_FILE.read_text()
    assert "DEVELOPMENT KEYS ONLY" in text, "dev-secrets.env must be marked as dev-only"
    defined = {
        line.split("=", 1)[0].strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and "=" in line
    }
    used = set(INTERPOLATION.findall(COMPOSE_FILE.read_text()))
    assert used, "docker-compose.yml takes no secret from dev-secrets.env"
    assert used <= defined, f"not defined in dev-secrets.env: {sorted(used - defined)}"


@pytest.mark.parametrize("svc", SERVICES)
def test_compose_builds_from_repo_root(svc: str) -> None:
    build = load_compose()["services"][svc].get("build")
    assert isinstance(build, dict), f"{svc}: build must give context and dockerfile"
    assert build.get("context") == ".", f"{svc}: build context must be the repo root"
    assert build.get("dockerfile") == f"services/{svc}/Dockerfile"
    assert (ROOT / build["dockerfile"]).is_file()


# --------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile_runs_as_non_root(svc: str) -> None:
    dockerfile = ROOT / load_compose()["services"][svc]["build"]["dockerfile"]
    instructions = dockerfile_instructions(dockerfile)
    froms = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert len(froms) >= 2, f"{dockerfile}: expected a multi-stage build"
    final_stage = instructions[froms[-1] :]
    users = [args.split(":")[0] for kw, args in final_stage if kw == "USER"]
    assert users, f"{dockerfile}: the final stage has no USER line"
    assert users[-1] not in {"root", "0"}, f"{dockerfile}: ends as USER {users[-1]}"
    assert users[-1] == "10001"
    last_user = max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")
    assert instructions[last_user][1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile_port_healthcheck_and_command(svc: str) -> None:
    instructions = dockerfile_instructions(ROOT / "services" / svc / "Dockerfile")
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in instructions:
        by_keyword.setdefault(keyword, []).append(args)
    assert by_keyword.get("EXPOSE") == [str(SERVICES[svc])]
    env = " ".join(by_keyword.get("ENV", []))
    assert f"{prefix(svc)}HTTP_HOST=0.0.0.0" in env, "the settings default to 127.0.0.1"
    assert f"{prefix(svc)}HTTP_PORT={SERVICES[svc]}" in env
    assert any("/healthz" in hc and "urllib" in hc for hc in by_keyword.get("HEALTHCHECK", []))
    assert by_keyword.get("CMD", [""])[-1] == f'["sanalpos-{svc}"]'
    assert any(f"--package sanalpos-{svc}" in run for run in by_keyword.get("RUN", []))
    assert any("--frozen" in run and "--no-dev" in run for run in by_keyword.get("RUN", []))


def test_dockerignore_keeps_context_small_and_secret_free() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore must be an allow-list starting with '*'"
    assert not any(line.startswith("!deploy") for line in lines)
    assert not any(line.startswith("!.") for line in lines)


# --------------------------------------------------------------------------- Kubernetes


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    assert kustomization.get("namespace") == "sanalpos"
    listed = kustomization.get("resources", [])
    files = [str(p.relative_to(K8S_BASE)) for p in k8s_manifest_files()]
    assert files, "no manifests under deploy/k8s/base"
    assert sorted(set(files) - set(listed)) == [], "manifests missing from resources"
    assert sorted(set(listed) - set(files)) == [], "resources naming missing files"
    assert len(listed) == len(set(listed)), "duplicate resources"


@pytest.mark.parametrize("item", K8S_DOCS, ids=doc_id)
def test_manifest_matches_kubernetes_schema(item: tuple[str, int, dict[str, Any]]) -> None:
    """Core kinds against Kubernetes' schemas, operator kinds against their CRDs' schemas."""
    path, index, doc = item
    errors = schema_errors(doc)
    assert not errors, f"{path}#{index} invalid: " + "; ".join(errors)


def test_base_has_namespace_and_each_service_resources() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, _, d in K8S_DOCS}
    assert ("Namespace", "sanalpos") in kinds
    for svc in SERVICES:
        for kind, name in (
            (WORKLOAD_KINDS[svc], f"sanalpos-{svc}"),
            ("Service", f"sanalpos-{svc}"),
            ("ConfigMap", f"sanalpos-{svc}-config"),
        ):
            assert (kind, name) in kinds, f"missing {kind}/{name}"
    assert not any(d["kind"] == "Secret" for _, _, d in K8S_DOCS), "Secrets are never committed"
    for path, _, doc in K8S_DOCS:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "sanalpos", path
        assert "app.kubernetes.io/name" in labels, path


def test_each_service_runs_as_its_workload_kind() -> None:
    """fraud is a StatefulSet, the other four are Deployments, one workload per service (the
    workload checks below run over all of them)."""
    kinds = {service_of(d): d["kind"] for _, d in WORKLOADS}
    assert len(WORKLOADS) == len(SERVICES), [doc_name(d) for _, d in WORKLOADS]
    assert kinds == WORKLOAD_KINDS
    assert {Path(path).name for path, _ in WORKLOADS} == {
        f"{svc}-{kind.lower()}.yaml" for svc, kind in WORKLOAD_KINDS.items()
    }


@pytest.mark.parametrize("item", WORKLOADS, ids=lambda item: item[0])
def test_workload_probes_and_resources(item: tuple[str, dict[str, Any]]) -> None:
    path, workload = item
    for container in containers(workload):
        name = f"{path}:{container['name']}"
        liveness = container.get("livenessProbe", {}).get("httpGet", {})
        readiness = container.get("readinessProbe", {}).get("httpGet", {})
        assert liveness.get("path") == "/healthz", f"{name}: livenessProbe must GET /healthz"
        assert readiness.get("path") == "/readyz", f"{name}: readinessProbe must GET /readyz"
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            assert request and limit, f"{name}: needs requests and limits for {resource}"
            assert quantity(request) <= quantity(limit), f"{name}: {resource} request > limit"


@pytest.mark.parametrize("item", WORKLOADS, ids=lambda item: item[0])
def test_workload_security_context(item: tuple[str, dict[str, Any]]) -> None:
    path, workload = item
    pod = workload["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext", {})
    tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in containers(workload):
        name = f"{path}:{container['name']}"
        sc = container.get("securityContext", {})

        def effective(key: str, sc: dict[str, Any] = sc) -> Any:
            return sc.get(key, pod_sc.get(key))

        assert effective("runAsNonRoot") is True, f"{name}: runAsNonRoot"
        assert effective("runAsUser") == 10001, f"{name}: runAsUser 10001"
        assert sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation"
        assert sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem"
        assert sc.get("privileged", False) is False, f"{name}: privileged"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: drop ALL"
        assert not sc.get("capabilities", {}).get("add"), f"{name}: adds capabilities"
        assert effective("seccompProfile") == {"type": "RuntimeDefault"}, f"{name}: seccomp"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        tmp = "/tmp"  # noqa: S108 - a mount path in the manifest, no file is created
        assert mounts.get(tmp) in tmp_volumes, f"{name}: /tmp must be an emptyDir"
    assert pod.get("automountServiceAccountToken") is False, f"{path}: no API token needed"
    assert pod.get("enableServiceLinks") is False, f"{path}: service links env vars"


@pytest.mark.parametrize("item", WORKLOADS, ids=lambda item: item[0])
def test_workload_volume_mounts_resolve(item: tuple[str, dict[str, Any]]) -> None:
    """Every mount names a pod volume or (StatefulSet) a volume claim template, and never
    both: the schema cannot tell."""
    path, workload = item
    volumes = [v["name"] for v in workload["spec"]["template"]["spec"].get("volumes", [])]
    claims = [c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])]
    assert not set(volumes) & set(claims), f"{path}: a volume and a claim share a name"
    assert len(volumes) + len(claims) == len({*volumes, *claims}), f"{path}: duplicate names"
    for container in containers(workload):
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in {*volumes, *claims}, f"{path}: {mount['name']} undefined"


def test_fraud_keeps_faust_data_on_a_claim_per_replica() -> None:
    """faust's RocksDB dir is a ReadWriteOnce claim per replica, not an emptyDir: a replaced
    pod (rescheduled, drained, rolled out) reads only the changelog written since."""
    ((path, fraud),) = [(f, d) for f, d in WORKLOADS if service_of(d) == "fraud"]
    spec = fraud["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume_name = mounts.get(FAUST_DATA_DIR)
    assert volume_name == "faust-data", f"{path}: nothing mounted at {FAUST_DATA_DIR}"
    claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates", [])}
    assert volume_name in claims, f"{path}: faust-data must be a volume claim template"
    claim = claims[volume_name]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert quantity(claim["resources"]["requests"]["storage"]) > 0
    assert "storageClassName" not in claim, "the cluster's default storage class applies"
    pod_volumes = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
    assert volume_name not in pod_volumes, f"{path}: faust-data must not be a pod volume"
    config = next(
        d
        for _, _, d in K8S_DOCS
        if (d["kind"], d["metadata"]["name"]) == ("ConfigMap", "sanalpos-fraud-config")
    )
    assert config["data"]["FRAUD_FAUST_DATADIR"] == FAUST_DATA_DIR
    services = {d["metadata"]["name"] for _, _, d in K8S_DOCS if d["kind"] == "Service"}
    assert spec.get("serviceName") in services, f"{path}: serviceName names no Service"
    assert spec.get("podManagementPolicy") == "Parallel"
    assert spec.get("updateStrategy") == {"type": "RollingUpdate"}
    assert spec.get("persistentVolumeClaimRetentionPolicy") == {
        "whenScaled": "Retain",
        "whenDeleted": "Retain",
    }, "a replica that comes back must find its data dir"


@pytest.mark.parametrize("item", WORKLOADS, ids=lambda item: item[0])
def test_workload_wiring(item: tuple[str, dict[str, Any]]) -> None:
    path, workload = item
    svc = service_of(workload)
    p = prefix(svc)
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith(f"sanalpos/{svc}:"), path
    assert [port["containerPort"] for port in container["ports"]] == [SERVICES[svc]], path
    assert {"configMapRef": {"name": f"sanalpos-{svc}-config"}} in container.get("envFrom", [])
    secret_env = {}
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == f"sanalpos-{svc}-secrets", f"{path}: {entry['name']}"
            secret_env[entry["name"]] = ref["key"]
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            assert source["secretRef"]["name"] == f"sanalpos-{svc}-secrets", path
    expected = {f"{p}DATABASE_URL", *SERVICE_SECRETS[svc]}
    assert set(secret_env) == expected, f"{path}: {svc} gets exactly its own secrets"
    assert not any(CARD_KEY_PATTERN.search(n) for n in secret_env if not n.startswith(p))


def test_services_and_configmaps_match_ports() -> None:
    for path, _, doc in K8S_DOCS:
        if doc["kind"] == "Service":
            svc = service_of(doc)
            assert [p["port"] for p in doc["spec"]["ports"]] == [SERVICES[svc]], path
            assert all(p["targetPort"] == "http" for p in doc["spec"]["ports"]), path
        if doc["kind"] == "ConfigMap":
            svc = service_of(doc)
            data = doc.get("data", {})
            assert data.get(f"{prefix(svc)}HTTP_PORT") == str(SERVICES[svc]), path
            assert data.get(f"{prefix(svc)}HTTP_HOST") == "0.0.0.0", path
            assert data.get("SANALPOS_ENV") == "production", path
            # Production start-up refuses to run without them (ServiceSettings).
            assert int(data.get("SANALPOS_KAFKA_REPLICATION_FACTOR", 0)) >= 3, path
            assert 2 <= int(data.get("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", 0)) < 3, path
            assert "KAFKA_BOOTSTRAP_SERVERS" in data, path
            leaked = [k for k in data if SECRET_NAME_PATTERN.search(k) or "DATABASE_URL" in k]
            assert not leaked, f"{path}: secrets in a ConfigMap: {leaked}"


@pytest.mark.parametrize("item", K8S_DOCS, ids=doc_id)
def test_no_literal_secret_values(item: tuple[str, int, dict[str, Any]]) -> None:
    path, _, doc = item
    for entry in env_entries(doc):
        name = str(entry.get("name", ""))
        if SECRET_NAME_PATTERN.search(name.upper()) or name.upper().endswith("DATABASE_URL"):
            assert "value" not in entry, f"{path}: {name} has a literal value"
            assert "valueFrom" in entry, f"{path}: {name} must use valueFrom"


def test_dev_overlay_renders() -> None:
    docs = render(K8S_DEV_OVERLAY)
    workloads = [d for d in docs if d["kind"] in set(WORKLOAD_KINDS.values())]
    assert {service_of(d): d["kind"] for d in workloads} == WORKLOAD_KINDS
    assert len(workloads) == len(SERVICES)
    for doc in docs:
        assert not schema_errors(doc), (doc_name(doc), schema_errors(doc))
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "sanalpos"
    for workload in workloads:
        assert workload["spec"]["replicas"] == 1, doc_name(workload)
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert container["image"].endswith(":dev")
    for hpa in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] == 1, doc_name(hpa)
