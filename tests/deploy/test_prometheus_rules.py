"""The monitoring files: Prometheus rules (promtool check + unit tests with synthetic series),
the Kubernetes PrometheusRule generated from them, every alert's runbook anchor, and the
Grafana dashboard (each query parses and names metrics the services expose)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sanalpos_common.metrics import full_registry

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "sanalpos.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "sanalpos.json"
OPERATIONS = ROOT / "docs" / "operations.md"
sys.path.insert(0, str(ROOT / "scripts"))

import prometheus_rule  # noqa: E402

METRIC = re.compile(r"\b(sanalpos_[a-z0-9_]+|up)\b(?!\s*[(:])")
# Label names and values never count as metric names.
IN_MATCHER = re.compile(r"\{[^}]*\}|\"[^\"]*\"|\bby\s*\([^)]*\)|\bon\s*\([^)]*\)")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool not found: run `bash scripts/infra/prometheus.sh install` (or make test)"
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, check=False)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def exposed_series() -> set[str]:
    """Every sample name the services expose (histograms as _bucket/_sum/_count)."""
    names = {"up"}
    for family in full_registry().collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # Families with labels have no samples until used: add what their type implies.
    for family in full_registry().collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
    return names


def metric_names(expr: str) -> set[str]:
    return set(METRIC.findall(IN_MATCHER.sub(" ", expr)))


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_behave_on_synthetic_series() -> None:
    files = sorted(RULE_TESTS.glob("*.test.yml"))
    assert files
    result = promtool("test", "rules", *(f.name for f in files), cwd=RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_asked_for_alert_exists_and_has_a_unit_test() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    asked = {
        "SanalposServiceDown",
        "SanalposConsumerLagGrowing",
        "SanalposOutboxBacklogOld",
        "SanalposDeadLetter",
        "SanalposApprovalRateDrop",
        "SanalposWebhookFailureRate",
        "SanalposIntakeAvailabilityBudgetBurn",
        "SanalposAuthorizationLatencyBudgetBurn",
    }
    assert asked <= alerts
    tested = {
        case["alertname"]
        for path in RULE_TESTS.glob("*.test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - tested == set(), "alerts without a firing unit test"


def test_every_alert_links_a_runbook_anchor_that_exists() -> None:
    anchors = set(re.findall(r'<a id="([^"]+)"', OPERATIONS.read_text()))
    for rule in rules():
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/operations.md" and anchor in anchors, (rule["alert"], url)
        assert rule["labels"]["severity"] in {"page", "warning", "ticket"}


def test_rules_name_only_metrics_the_services_expose() -> None:
    exposed = exposed_series()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        unknown = metric_names(rule["expr"]) - exposed
        assert not unknown, (rule.get("alert") or rule.get("record"), unknown)
        used = set(re.findall(r"\bsanalpos:[a-z0-9_:]+", rule["expr"]))
        assert used <= recorded, used - recorded


def test_kubernetes_prometheus_rule_is_in_sync_with_the_rules_file() -> None:
    manifest_path = prometheus_rule.MANIFEST
    assert manifest_path.read_text() == prometheus_rule.render(RULES.read_text()), (
        "run scripts/prometheus_rule.py"
    )
    manifest = yaml.safe_load(manifest_path.read_text())
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def dashboard_targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_dashboard_covers_the_pipeline() -> None:
    titles = " | ".join(title.lower() for title, _ in dashboard_targets())
    for needed in (
        "pipeline rate",
        "lag",
        "latency",
        "approval rate",
        "declines by code",
        "dead letters",
        "outbox",
    ):
        assert needed in titles, needed
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and all(p["datasource"]["uid"] for p in dashboard["panels"])


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    generated = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(dashboard_targets())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(generated))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("title", "expr"), dashboard_targets())
def test_dashboard_queries_name_metrics_the_services_expose(title: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{title}: no metric found in {expr}"
    assert names <= exposed_series(), (title, names - exposed_series())


def test_grafana_provisioning_points_at_the_dashboards_and_the_datasource_uid() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} <= uids
    providers = yaml.safe_load((provisioning / "dashboards" / "sanalpos.yml").read_text())
    assert providers["providers"][0]["options"]["path"]


def test_compose_prometheus_scrapes_every_service_with_its_service_label() -> None:
    config_path = ROOT / "deploy" / "prometheus" / "prometheus.compose.yml"
    result = promtool("check", "config", "--syntax-only", str(config_path))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_path.read_text())
    scraped = {
        static["labels"]["service"]: static["targets"]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
    }
    ports = {"intake": 18000, "fraud": 18001, "authorization": 18002}
    ports |= {"settlement": 18003, "notification": 18004}
    assert scraped == {svc: [f"{svc}:{port}"] for svc, port in ports.items()}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["prometheus"]
    mounts = " ".join(compose["volumes"])
    for mounted in ("prometheus.compose.yml", "rules", "consoles", "console_libraries"):
        assert f"./deploy/prometheus/{mounted}:" in mounts
