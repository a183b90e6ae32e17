#!/usr/bin/env python3
"""Writes the Kubernetes PrometheusRule (prometheus-operator) from the repository's rules.
#   part of the kustomize base (needs the prometheus-operator CRDs)
    python scripts/prometheus_rule.py           rewrite deploy/k8s/base/prometheus-rule.yaml
    python scripts/prometheus_rule.py --check   exit 1 when the manifest is out of date

deploy/prometheus/rules/sanalpos.rules.yml is the source; the manifest carries the same
groups, unchanged (tests/deploy/test_prometheus_rules.py checks they stay in sync).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "sanalpos.rules.yml"
MANIFEST = ROOT / "deploy" / "k8s" / "base" / "prometheus-rule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/rules/sanalpos.rules.yml by scripts/prometheus_rule.py;\n"
    "# edit the rules file and rerun the script. Needs the prometheus-operator CRDs:\n"
    "#   kubectl apply -f deploy/k8s/base/prometheus-rule.yaml\n"
)


class _Literal(str):
    """A multi-line string, written as a YAML block (`|`) so expressions stay readable."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def _blocks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _blocks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blocks(v) for v in value]
    if isinstance(value, str) and "\n" in value:
        return _Literal(value)
    return value


def manifest(rules_text: str) -> dict[str, Any]:
    groups = yaml.safe_load(rules_text)["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sanalpos",
            "namespace": "sanalpos",
            "labels": {
                "app.kubernetes.io/name": "sanalpos-alerts",
                "app.kubernetes.io/part-of": "sanalpos",
                "app.kubernetes.io/component": "monitoring",
            },
        },
        "spec": {"groups": groups},
    }


def render(rules_text: str) -> str:
    body = yaml.safe_dump(_blocks(manifest(rules_text)), sort_keys=False, width=1000)
    return HEADER + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    wanted = render(RULES.read_text())
    if args.check:
        current = MANIFEST.read_text() if MANIFEST.exists() else ""
        if current != wanted:
            sys.exit(f"{MANIFEST.relative_to(ROOT)} is out of date: run scripts/prometheus_rule.py")
        return
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(wanted)
    print(f"wrote {MANIFEST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
