"""Small manifests are merged as Iceberg merges them, and nothing a merge touches changes what is read.

A stream of small commits adds one manifest per commit. Appends and merge-on-read commits merge
the small data manifests once ``commit.manifest.min-count-to-merge`` of them accumulate
(``commit.manifest-merge.enabled``, on by default as in Iceberg); the merged manifest keeps each
file's sequence number, so positional deletes committed before the merge still apply after it,
and other readers (PyIceberg) read the same rows.
"""

from __future__ import annotations

from pyiceberg.manifest import ManifestContent

import wharf

MOR = "'write.delete.mode' = 'merge-on-read', 'write.update.mode' = 'merge-on-read'"


def data_manifests(lake: wharf.Lakehouse, table: str) -> int:
    t = lake.table(table).iceberg
    snapshot = t.current_snapshot()
    assert snapshot is not None
    return sum(m.content == ManifestContent.DATA for m in snapshot.manifests(t.io))


def rows(lake: wharf.Lakehouse, table: str) -> list[tuple]:
    return [tuple(r) for r in lake.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()]


def test_appends_merge_small_manifests(lake: wharf.Lakehouse) -> None:
    lake.sql("CREATE TABLE t (id BIGINT) TBLPROPERTIES ('commit.manifest.min-count-to-merge' = '4')")
    counts = []
    for i in range(9):
        lake.sql(f"INSERT INTO t VALUES ({i})")
        counts.append(data_manifests(lake, "t"))
    assert counts[:3] == [1, 2, 3]  # below the minimum: fast appends
    assert max(counts) < 4 and counts[3] == 1  # the fourth commit merged the four into one
    assert rows(lake, "t") == [(i,) for i in range(9)]
    iceberg = lake.table("t").iceberg
    assert sorted(iceberg.scan().to_arrow()["id"].to_pylist()) == list(range(9))  # PyIceberg reads the same


def test_merge_can_be_turned_off(lake: wharf.Lakehouse) -> None:
    lake.sql(
        "CREATE TABLE t (id BIGINT) TBLPROPERTIES ('commit.manifest.min-count-to-merge' = '2', "
        "'commit.manifest-merge.enabled' = 'false')"
    )
    for i in range(4):
        lake.sql(f"INSERT INTO t VALUES ({i})")
    assert data_manifests(lake, "t") == 4


def test_deletes_still_apply_after_a_merge(lake: wharf.Lakehouse) -> None:
    lake.sql(f"CREATE TABLE t (id BIGINT, v VARCHAR) TBLPROPERTIES ('commit.manifest.min-count-to-merge' = '3', {MOR})")
    lake.sql("INSERT INTO t SELECT range, 'a' FROM range(10)")
    lake.sql("DELETE FROM t WHERE id < 3")  # a positional delete file against the first data file
    lake.sql("UPDATE t SET v = 'b' WHERE id = 5")
    for i in range(10, 15):  # appends merge the data manifests, the first file's entry among them
        lake.sql(f"INSERT INTO t VALUES ({i}, 'c')")
    assert data_manifests(lake, "t") < 5
    expected = [(i, "b" if i == 5 else "a") for i in range(3, 10)] + [(i, "c") for i in range(10, 15)]
    assert rows(lake, "t") == expected
    iceberg = lake.table("t").iceberg
    assert sorted(iceberg.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == [{"id": i, "v": v} for i, v in expected]
