"""The manifest cache: each manifest is decoded once per process, and the cache stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.manifest import ManifestFile

import wharf
from wharf.tables import manifest_cache


def test_statements_decode_only_new_manifests(lake: wharf.Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest_cache.clear()
    decoded: list[str] = []
    real = ManifestFile.fetch_manifest_entry

    def counting(self: ManifestFile, io: Any, discard_deleted: bool = True) -> Any:
        decoded.append(self.manifest_path)
        return real(self, io, discard_deleted)

    monkeypatch.setattr(ManifestFile, "fetch_manifest_entry", counting)
    lake.sql("CREATE TABLE t (id BIGINT)")
    for i in range(5):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    assert lake.sql("SELECT count(*) FROM t").fetchall() == [(5,)]
    first = len(decoded)
    assert first == len(set(decoded)) == 5  # one manifest per append, each decoded once
    lake.sql("INSERT INTO t VALUES (5)")
    assert lake.sql("SELECT sum(id) FROM t").fetchall() == [(15,)]
    assert len(decoded) == first + 1  # only the new manifest


def test_cache_is_bounded(lake: wharf.Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest_cache.clear()
    monkeypatch.setattr(manifest_cache, "MAX_ENTRIES", 3)
    lake.sql("CREATE TABLE t (id BIGINT)")
    for i in range(6):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    assert lake.sql("SELECT count(*) FROM t").fetchall() == [(6,)]
    assert manifest_cache._size <= 3
    assert len(manifest_cache._cache) <= 3
