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


def past_last_commit(lake: wharf.Lakehouse, table: str) -> None:
    """Return once the clock has moved past ``table``'s newest snapshot, so the next one gets a later timestamp.

    Tests of time travel by timestamp need distinct commit times; waiting on the observed commit
    time (not a fixed sleep) is exact however slow or fast the machine is.
    """
    import time

    newest = max((s.timestamp_ms for s in lake.table(table).iceberg.metadata.snapshots), default=0)
    while time.time() * 1000 <= newest:
        time.sleep(0.0005)
