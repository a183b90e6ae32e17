"""The layering every service keeps, checked on the source: a failing test names the import.

- A domain module imports no adapter and no entry point of its service (it is pure logic).
- A service-layer module imports no entry point (entry points call the service layer).
- No service imports another service (they talk only through Kafka).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
FORBIDDEN_BELOW = {
    "domain": ("adapters", "entrypoints", "service_layer", "bootstrap"),
    "service_layer": ("entrypoints", "bootstrap"),
}


def _package_root(service: str) -> Path:
    return ROOT / "services" / service / "src" / service


def _imported_modules(path: Path, package: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module or ""]).rstrip(".")
            elif node.module:
                yield node.lineno, node.module


def _modules(service: str, layer: str | None = None) -> Iterator[tuple[Path, str]]:
    root = _package_root(service)
    folder = root / layer if layer else root
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        yield path, ".".join(relative.parts[:-1])


def _violations(service: str, layer: str, forbidden: tuple[str, ...]) -> list[str]:
    banned = tuple(f"{service}.{name}" for name in forbidden)
    found = []
    for path, package in _modules(service, layer):
        for line, module in _imported_modules(path, package):
            if module in banned or module.startswith(tuple(b + "." for b in banned)):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("layer", sorted(FORBIDDEN_BELOW))
def test_inner_layers_do_not_import_outer_ones(service: str, layer: str) -> None:
    assert _violations(service, layer, FORBIDDEN_BELOW[layer]) == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service: str) -> None:
    others = tuple(s for s in SERVICES if s != service)
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, package in _modules(service)
        for line, module in _imported_modules(path, package)
        if module.split(".")[0] in others
    ]
    assert found == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The scanner itself must catch both absolute and relative imports."""
    module = tmp_path / "m.py"
    module.write_text("from intake.entrypoints.http import x\nfrom ..adapters import y\n")
    found = list(_imported_modules(module, "intake.domain"))
    assert (1, "intake.entrypoints.http") in found
    assert (2, "intake.adapters") in found
