"""Imports point downward only (DESIGN.md's layers): a module never imports a layer above its own at run time.

Type-only imports (under ``if TYPE_CHECKING:``) are allowed: they create no run-time dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wharf"

# Top to bottom; a module may import its own layer and the layers below it.
LAYERS: list[set[str]] = [
    {"cli", "demo", "server", "web", "__init__", "__main__"},
    {"optimizer"},
    {"lakehouse", "table"},
    {"sql", "governance", "quality", "lineage", "metrics", "ingest", "search", "auth"},
    {"tables"},
    {"catalog"},
    {"engine", "events", "errors", "identifiers", "principal", "statement", "pyiceberg_compat", "result", "storage"},
]


def _layer(part: str) -> int:
    for depth, names in enumerate(LAYERS):
        if part in names:
            return depth
    raise AssertionError(f"wharf.{part} is in no layer: add it to LAYERS (and to DESIGN.md's diagram)")


def _runtime_imports(tree: ast.Module) -> list[str]:
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            if node.module == "wharf":
                found.extend(f"wharf.{a.name}" for a in node.names if not a.name.startswith("__"))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_downward(path: Path) -> None:
    own = _layer(path.relative_to(SRC).parts[0].removesuffix(".py"))
    for name in _runtime_imports(ast.parse(path.read_text())):
        parts = name.split(".")
        if parts[0] != "wharf" or len(parts) < 2:
            continue
        target = _layer(parts[1])
        assert target >= own, f"{path.relative_to(SRC)} imports {name}, a layer above its own"
