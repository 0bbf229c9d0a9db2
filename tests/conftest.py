"""Shared fixtures: a fresh lake per test, on a real SQLite catalog in a temp directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import wharf


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[wharf.Lakehouse]:
    """An empty lake in a temporary directory."""
    with wharf.connect(tmp_path / "lake", user="tester") as lh:
        yield lh
