"""Rendering (kustomize) and schema validation of the Kubernetes manifests, offline.

Core kinds: the JSON schemas kubernetes-validate ships (strict: unknown fields fail).
Operator kinds (Strimzi, CloudNativePG, Prometheus Operator): the CRD schemas vendored in
tests/deploy/crd_schemas/, closed the same way.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
K8S_VERSION = "1.34"
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
OPERATOR_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io", "monitoring.coreos.com")


def kustomize_command() -> list[str]:
    """kubectl's built-in kustomize (every machine image of this project has kubectl), else a
    standalone kustomize, e.g. the one `make install-kustomize` builds into .state/bin."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    for candidate in (shutil.which("kustomize"), ROOT / ".state" / "bin" / "kustomize"):
        if candidate and os.access(candidate, os.X_OK):
            return [str(candidate), "build"]
    raise AssertionError(
        "neither kubectl nor kustomize found: install kubectl, or run `make install-kustomize`"
    )


@functools.cache
def render(overlay: Path) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [*kustomize_command(), str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize {overlay.relative_to(ROOT)}: {result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def _closed(schema: Any) -> Any:
    """The schema with every object that lists properties closed to others, and the
    Kubernetes extensions turned into JSON Schema."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, _, version = api_version.partition("/")
    path = CRD_SCHEMAS / f"{group}_{version}_{kind}.yaml"
    assert path.is_file(), f"no vendored schema for {api_version} {kind} ({path.name})"
    schema = _closed(yaml.safe_load(path.read_text()))
    schema["properties"]["metadata"] = METADATA_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Every schema violation of one manifest, as 'path: message' strings."""
    api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
    if api_version.split("/")[0] in OPERATOR_GROUPS:
        validator = jsonschema.Draft7Validator(crd_schema(api_version, kind))
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
        metadata = doc.get("metadata", {})
        name = str(metadata.get("name", ""))
        if not DNS_SUBDOMAIN.fullmatch(name):
            errors.append(f"metadata.name: {name!r} is not a DNS subdomain")
        for key, value in (metadata.get("labels") or {}).items():
            if not (isinstance(value, str) and len(value) <= 63 and LABEL_VALUE.fullmatch(value)):
                errors.append(f"metadata.labels.{key}: {value!r} is not a label value")
        return errors
    try:
        used = kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(str(p) for p in e.path)}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"no schema for {api_version} {kind}: {e}"]
    return [] if used == K8S_VERSION else [f"validated against {used}, not {K8S_VERSION}"]


def doc_name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
