"""The rendered manifests of the base and of every overlay: schemas (core and operator kinds),
and that the pieces fit: autoscalers, disruption budgets, network policies, monitoring, the
CVC rotation job, and in production Kafka (Strimzi) and PostgreSQL (CloudNativePG) wired to
the services with the ACLs the code needs."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from fraud.bootstrap import FEEDBACK_HANDLERS
from fraud.entrypoints.stream_topology import stream_topics
from intake.service_layer.consumed import CONSUMER_HANDLERS
from sanalpos_common import topics
from sanalpos_common.messaging.security import KafkaSecurity
from sanalpos_common.schemas.events import EVENT_MODELS
from tests.deploy.k8s_support import ROOT, doc_name, render, schema_errors

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "production": K8S / "overlays" / "production",
}
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
# fraud runs as a StatefulSet (a volume claim per replica for faust's RocksDB tables).
STATEFUL_SERVICES = ("fraud",)
FAUST_DATA_DIR = "/var/lib/sanalpos/faust"
PRODUCTION_PARTITIONS = 12


@functools.cache
def kafka_resources_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "kafka_resources", ROOT / "scripts" / "deploy" / "kafka_resources.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workload_kind(svc: str) -> str:
    return "StatefulSet" if svc in STATEFUL_SERVICES else "Deployment"


def workload(docs: tuple[dict[str, Any], ...], svc: str) -> dict[str, Any]:
    """The Deployment or StatefulSet that runs a service's pods."""
    return by_kind(docs, workload_kind(svc))[f"sanalpos-{svc}"]


def every_overlay_doc() -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name, path in OVERLAYS.items() for doc in render(path)]


@pytest.mark.parametrize(
    "item", every_overlay_doc(), ids=lambda item: f"{item[0]}:{doc_name(item[1])}"
)
def test_rendered_manifest_matches_its_schema(item: tuple[str, dict[str, Any]]) -> None:
    _, doc = item
    errors = schema_errors(doc)
    assert not errors, "; ".join(errors)


def test_schema_check_rejects_unknown_and_misspelled_fields() -> None:
    """The validator is strict for both kinds of schema (a guard on the guard)."""
    topic = by_kind(render(OVERLAYS["production"]), "KafkaTopic")[topics.PAYMENT_INITIATED]
    bad_topic = {**topic, "spec": {**topic["spec"], "replicationFactor": 3}}
    assert any("replicationFactor" in e for e in schema_errors(bad_topic))
    monitor = by_kind(render(OVERLAYS["base"]), "ServiceMonitor")["sanalpos"]
    bad_monitor = {**monitor, "spec": {**monitor["spec"], "endpoints": [{"interval": "15 s"}]}}
    assert schema_errors(bad_monitor)
    pdb = by_kind(render(OVERLAYS["base"]), "PodDisruptionBudget")["sanalpos-intake"]
    assert schema_errors({**pdb, "spec": {**pdb["spec"], "maxUnavailabe": 1}})
    fraud = workload(render(OVERLAYS["base"]), "fraud")
    assert fraud["kind"] == "StatefulSet" and not schema_errors(fraud)
    policy = {"whenScaled": "Retain", "whenDelete": "Retain"}
    bad_fraud = {**fraud, "spec": {**fraud["spec"], "persistentVolumeClaimRetentionPolicy": policy}}
    assert any("whenDelete" in e for e in schema_errors(bad_fraud))


# --------------------------------------------------------------------------- base


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_has_a_budget_and_an_autoscaler(svc: str) -> None:
    docs = render(OVERLAYS["base"])
    pods = workload(docs, svc)
    pod_labels = pods["spec"]["template"]["metadata"]["labels"]
    pdb = by_kind(docs, "PodDisruptionBudget")[f"sanalpos-{svc}"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items(), "the budget must select the service's pods"
    assert pdb["spec"].get("maxUnavailable") == 1
    hpa = by_kind(docs, "HorizontalPodAutoscaler")[f"sanalpos-{svc}"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": workload_kind(svc),
        "name": f"sanalpos-{svc}",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # More consumers than partitions would stand idle.
    assert hpa["spec"]["maxReplicas"] <= PRODUCTION_PARTITIONS
    (container,) = pods["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"], "CPU utilization needs a CPU request"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_target_rendered_workloads(overlay: str) -> None:
    """Every autoscaler's target exists, of that kind and apiVersion (an HPA naming a
    Deployment that is now a StatefulSet would scale nothing)."""
    docs = render(OVERLAYS[overlay])
    rendered = {(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs}
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"], ref["name"]) in rendered, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fraud_is_a_stateful_set_with_a_faust_data_claim(overlay: str) -> None:
    """faust's RocksDB dir on a ReadWriteOnce claim per replica, in every overlay; the other
    services stay Deployments."""
    docs = render(OVERLAYS[overlay])
    assert set(by_kind(docs, "StatefulSet")) == {f"sanalpos-{s}" for s in STATEFUL_SERVICES}
    assert set(by_kind(docs, "Deployment")) == {
        f"sanalpos-{s}" for s in SERVICES if s not in STATEFUL_SERVICES
    }
    fraud = workload(docs, "fraud")
    spec = fraud["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "faust-data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "4Gi"
    assert "storageClassName" not in claim["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == FAUST_DATA_DIR]
    assert mount["name"] == "faust-data" and not mount.get("readOnly")
    assert "faust-data" not in {v["name"] for v in pod["volumes"]}, "a pod volume (emptyDir)"
    data = by_kind(docs, "ConfigMap")["sanalpos-fraud-config"]["data"]
    assert data["FRAUD_FAUST_DATADIR"] == FAUST_DATA_DIR
    assert pod["securityContext"]["fsGroup"] == 10001, "the claim must be writable by uid 10001"
    # The governing Service exists and selects the set's pods.
    service = by_kind(docs, "Service")[spec["serviceName"]]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenScaled": "Retain",
        "whenDeleted": "Retain",
    }


def egress_peers(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"].get("egress", []) for peer in rule.get("to", [])]


def test_namespace_denies_by_default_and_allows_dns() -> None:
    policies = by_kind(render(OVERLAYS["base"]), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    dns = policies["allow-dns"]["spec"]
    assert dns["podSelector"] == {}
    (rule,) = dns["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}
    assert rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_reaches_kafka_its_database_and_the_collector_only(svc: str) -> None:
    docs = render(OVERLAYS["base"])
    policy = by_kind(docs, "NetworkPolicy")[f"sanalpos-{svc}"]
    pod_labels = workload(docs, svc)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    selected = [p["podSelector"]["matchLabels"] for p in egress_peers(policy) if "podSelector" in p]
    assert selected == [
        {"sanalpos.io/kafka": "broker"},
        {"sanalpos.io/database": svc},
        {"app.kubernetes.io/name": "opentelemetry-collector"},
    ]
    ip_blocks = [p["ipBlock"] for p in egress_peers(policy) if "ipBlock" in p]
    if svc == "notification":
        assert {b["cidr"] for b in ip_blocks} == {"0.0.0.0/0", "::/0"}
        v4 = next(b for b in ip_blocks if b["cidr"] == "0.0.0.0/0")
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
            v4["except"]
        ), "webhooks must not reach private addresses or the metadata service"
    else:
        assert ip_blocks == [], f"{svc} must not reach the internet"
    rules_without_peers = [r for r in policy["spec"]["egress"] if not r.get("to")]
    assert rules_without_peers == [], "an egress rule without `to` allows every destination"


def test_only_notification_and_the_rotation_job_leave_the_pod_network() -> None:
    policies = by_kind(render(OVERLAYS["base"]), "NetworkPolicy")
    open_egress = {
        name
        for name, p in policies.items()
        if any("ipBlock" in peer for peer in egress_peers(p))
        or any(not r.get("to") for r in p["spec"].get("egress", []))
    }
    assert open_egress == {"sanalpos-notification", "sanalpos-cvc-key-rotation"}
    job_rules = policies["sanalpos-cvc-key-rotation"]["spec"]["egress"]
    assert {p["port"] for r in job_rules for p in r["ports"]} == {443, 6443}


def test_service_monitor_scrapes_every_service() -> None:
    docs = render(OVERLAYS["base"])
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    services = by_kind(docs, "Service")
    assert set(services) == {f"sanalpos-{s}" for s in SERVICES}
    for name, service in services.items():
        assert selector.items() <= service["metadata"]["labels"].items(), name
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}, name


def test_cvc_rotation_job_updates_only_the_mounted_secret() -> None:
    docs = render(OVERLAYS["base"])
    (job,) = by_kind(docs, "CronJob").values()
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (rotate,) = pod["initContainers"]
    assert rotate["image"].startswith("sanalpos/intake:")
    script = " ".join(rotate["args"])
    assert "keys_cli cvc-rotate" in script and "--ttl 7200" in script
    (update,) = pod["containers"]
    assert update["args"][-4:] == [
        "secret",
        "sanalpos-cvc-keys",
        "--type=merge",
        "--patch-file=/work/patch.json",
    ]
    work = next(v for v in pod["volumes"] if v["name"] == "work")
    assert work["emptyDir"]["medium"] == "Memory", "key material must stay off the node's disk"
    mounted = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    for svc in ("intake", "authorization"):
        volumes = workload(docs, svc)["spec"]["template"]["spec"]["volumes"]
        assert mounted <= {v["secret"]["secretName"] for v in volumes if "secret" in v}
    (role,) = by_kind(docs, "Role").values()
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["sanalpos-cvc-keys"],
            "verbs": ["get", "patch"],
        }
    ]
    (binding,) = by_kind(docs, "RoleBinding").values()
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


# --------------------------------------------------------------------------- production


def test_generated_kafka_resources_are_current() -> None:
    assert kafka_resources_module().main(["--check"]) == 0


def test_production_topics_cover_every_topic_with_replication_3_min_isr_2() -> None:
    docs = render(OVERLAYS["production"])
    kafka_topics = by_kind(docs, "KafkaTopic")
    module = kafka_resources_module()
    assert set(kafka_topics) == set(module.ALL_SERVICE_TOPICS)
    assert set(topics.ALL_TOPICS) <= set(kafka_topics)
    for name, topic in kafka_topics.items():
        assert topic["spec"]["topicName"] == name
        assert topic["spec"]["replicas"] == 3, name
        assert topic["spec"]["partitions"] == PRODUCTION_PARTITIONS, name
        assert topic["spec"]["config"]["min.insync.replicas"] == 2, name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "sanalpos"
    (kafka,) = by_kind(docs, "Kafka").values()
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    pools = by_kind(docs, "KafkaNodePool")
    assert {r for p in pools.values() for r in p["spec"]["roles"]} == {"controller", "broker"}
    assert all(p["spec"]["replicas"] >= 3 for p in pools.values())
    broker_labels = pools["broker"]["spec"]["template"]["pod"]["metadata"]["labels"]
    assert broker_labels == {"sanalpos.io/kafka": "broker"}, "NetworkPolicies select this label"


def acl_topics(user: dict[str, Any], operation: str) -> set[str]:
    return {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic"
        and acl["resource"]["patternType"] == "literal"
        and operation in acl["operations"]
    }


def constructed_events(svc: str) -> set[str]:
    """Topics of the event types a service's source code constructs (what it emits)."""
    source = "\n".join(p.read_text() for p in (ROOT / "services" / svc / "src").rglob("*.py"))
    return {t for t, model in EVENT_MODELS.items() if re.search(rf"\b{model.__name__}\(", source)}


@pytest.mark.parametrize("svc", SERVICES)
def test_service_writes_exactly_what_its_code_emits(svc: str) -> None:
    user = by_kind(render(OVERLAYS["production"]), "KafkaUser")[f"sanalpos-{svc}"]
    writes = acl_topics(user, "Write")
    dead_letters = {t for t in writes if t.startswith("dlq.")}
    assert topics.dead_letter_topic(svc) in dead_letters
    extra = {topics.MERCHANT_REPLIES} if svc == "intake" else set()
    assert writes - dead_letters == constructed_events(svc) | extra
    assert acl_topics(user, "Describe") >= set(topics.ALL_TOPICS), "ensure_topics lists them all"


def test_reads_cover_the_consumers_and_have_writers() -> None:
    users = by_kind(render(OVERLAYS["production"]), "KafkaUser")
    reads = {svc: acl_topics(users[f"sanalpos-{svc}"], "Read") for svc in SERVICES}
    assert set(CONSUMER_HANDLERS.topics) <= reads["intake"]
    assert topics.MERCHANT_REQUESTS in reads["intake"]
    assert {*FEEDBACK_HANDLERS.topics, stream_topics("sanalpos-fraud")[0]} <= reads["fraud"]
    written = set().union(*(acl_topics(u, "Write") for u in users.values()))
    for svc, read in reads.items():
        orphans = read - written - {topics.MERCHANT_REQUESTS}  # merchants write requests
        assert not orphans, f"{svc} reads topics nobody may write: {sorted(orphans)}"
    fraud_prefixes = [
        acl["resource"]["name"]
        for acl in users["sanalpos-fraud"]["spec"]["authorization"]["acls"]
        if acl["resource"]["patternType"] == "prefix" and acl["resource"]["type"] == "topic"
    ]
    assert fraud_prefixes == ["sanalpos-fraud-"], "faust creates its internal topics"
    assert stream_topics("sanalpos-fraud")[1].startswith(fraud_prefixes[0])


def test_no_service_user_may_create_or_delete_shared_topics() -> None:
    for name, user in by_kind(render(OVERLAYS["production"]), "KafkaUser").items():
        for acl in user["spec"]["authorization"]["acls"]:
            if acl["resource"]["patternType"] == "literal":
                assert not {"Create", "Delete", "All"} & set(acl["operations"]), (name, acl)
            assert acl["resource"]["type"] != "cluster", (name, acl)


@pytest.mark.parametrize("svc", SERVICES)
def test_production_service_kafka_client_settings(svc: str) -> None:
    docs = render(OVERLAYS["production"])
    data = by_kind(docs, "ConfigMap")[f"sanalpos-{svc}-config"]["data"]
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == "sanalpos-kafka-bootstrap.sanalpos.svc:9093"
    assert data["SANALPOS_KAFKA_REPLICATION_FACTOR"] == "3"
    assert data["SANALPOS_KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    username = data["SANALPOS_KAFKA_SASL_USERNAME"]
    assert username in by_kind(docs, "KafkaUser")
    pod = workload(docs, svc)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    password = next(e for e in container["env"] if e["name"] == "SANALPOS_KAFKA_SASL_PASSWORD")
    # Strimzi's User Operator writes the password to a Secret named like the user.
    assert password["valueFrom"]["secretKeyRef"] == {"name": username, "key": "password"}
    cafile = Path(data["SANALPOS_KAFKA_SSL_CAFILE"])
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-ca")
    assert cafile.parent == Path(mount["mountPath"])
    volume = next(v for v in pod["volumes"] if v["name"] == "kafka-ca")
    assert volume["secret"]["secretName"] == "sanalpos-cluster-ca-cert"
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": cafile.name}]
    # The names are the ones the code reads: build the settings from them.
    prefix = "SANALPOS_KAFKA_"
    values = {
        k.removeprefix(prefix).lower(): v
        for k, v in data.items()
        if k.startswith(prefix) and k.removeprefix(prefix).lower() in KafkaSecurity.model_fields
    }
    values.pop("ssl_cafile")  # a path inside the pod
    security = KafkaSecurity(**values, sasl_password="from-the-secret")
    assert security.security_protocol == "SASL_SSL"
    assert security.sasl_mechanism == "SCRAM-SHA-512"


@pytest.mark.parametrize("svc", SERVICES)
def test_production_database_per_service(svc: str) -> None:
    docs = render(OVERLAYS["production"])
    cluster = by_kind(docs, "Cluster")[f"sanalpos-pg-{svc}"]
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    assert spec["bootstrap"]["initdb"]["database"] == f"sanalpos_{svc}"
    assert spec["bootstrap"]["initdb"]["owner"] == f"sanalpos_{svc}"
    assert spec["bootstrap"]["initdb"]["secret"]["name"] == f"sanalpos-{svc}-db"
    assert spec["enableSuperuserAccess"] is False
    # The label the service's NetworkPolicy allows is on this cluster's pods only.
    policy = by_kind(docs, "NetworkPolicy")[f"sanalpos-{svc}"]
    allowed = [
        p["podSelector"]["matchLabels"]
        for p in egress_peers(policy)
        if "sanalpos.io/database" in p.get("podSelector", {}).get("matchLabels", {})
    ]
    assert allowed == [spec["inheritedMetadata"]["labels"]]
    others = [c for c in by_kind(docs, "Cluster").values() if c is not cluster]
    assert all(c["spec"]["inheritedMetadata"]["labels"] != allowed[0] for c in others)


def test_production_resources_all_in_the_namespace() -> None:
    for doc in render(OVERLAYS["production"]):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "sanalpos", doc_name(doc)


@pytest.mark.parametrize("svc", SERVICES)
def test_services_export_traces_to_the_collectors_otlp_http_port(svc: str) -> None:
    """The SDK's exporter is OTLP/HTTP (sanalpos_common.tracing): 4318, not gRPC's 4317."""
    docs = render(OVERLAYS["base"])
    config = by_kind(docs, "ConfigMap")
    data = config[f"sanalpos-{svc}-config"]["data"]
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    exporter = (ROOT / "libs/common/src/sanalpos_common/tracing.py").read_text()
    assert "exporter.otlp.proto.http" in exporter
