"""The public API is what ``wharf.__all__`` says; changing it is a deliberate act that updates this test."""

from __future__ import annotations

import importlib.metadata

import wharf
from wharf import errors


def test_all_is_the_public_api() -> None:
    assert sorted(wharf.__all__) == sorted(
        ["Lakehouse", "Result", "Table", "WharfError", "__version__", "connect", "errors", "events"]
    )
    for name in wharf.__all__:
        assert hasattr(wharf, name), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from wharf import *", namespace)  # noqa: S102
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(wharf.__all__)


def test_version_matches_the_distribution() -> None:
    assert wharf.__version__ == importlib.metadata.version("wharf-lakehouse")


def test_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("wharf") == "wharf.cli:main"


def test_error_tree_has_one_root() -> None:
    assert wharf.WharfError is errors.WharfError
    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, errors.WharfError) for c in classes)
    for name in ("SqlParseError", "NotFound", "AlreadyExists", "SchemaMismatch", "ConflictError", "UnsupportedStatement"):
        assert name in errors.__all__
    assert issubclass(errors.SqlParseError, errors.SqlError)
