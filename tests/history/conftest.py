"""The product example of docs/history.md, built in every way a table can record its changes.

Products 00001–00005 are created; one MERGE changes the price of 00001 from 250 to 500 and adds
00006; then 00003 is deleted. ``build`` makes that history with copy-on-write rewrites, with
Wharf's merge-on-read positional deletes, with equality deletes (as Flink or Spark write an
upsert), on a branch, or followed by a compaction snapshot.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

import wharf
from tests.conftest import past_last_commit
from tests.tables.delete_files import commit_delete_files, equality_delete_file
from wharf.tables.commit import write_data_files

MOR = {"write.delete.mode": "merge-on-read", "write.update.mode": "merge-on-read", "write.merge.mode": "merge-on-read"}
MODES = ("copy-on-write", "merge-on-read", "equality-deletes", "branch", "compacted")

CREATE = "CREATE TABLE products (product_id VARCHAR NOT NULL, name VARCHAR, price INT)"
FIRST = (
    "INSERT INTO products VALUES ('00001', 'desk', 250), ('00002', 'lamp', 40), ('00003', 'chair', 120), "
    "('00004', 'shelf', 80), ('00005', 'rug', 60)"
)
MERGE = """MERGE INTO {t} t USING (SELECT '00001' AS product_id, 'desk' AS name, 500 AS price
                               UNION ALL SELECT '00006', 'stool', 30) s
ON t.product_id = s.product_id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"""
DELETE = "DELETE FROM {t} WHERE product_id = '00003'"


def build(lake: wharf.Lakehouse, mode: str) -> str:
    """Make the product history in ``mode``; returns the name to read its changes from."""
    lake.sql(CREATE)
    lake.sql("ALTER TABLE products SET IDENTIFIER FIELDS product_id")
    if mode == "merge-on-read":
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in MOR.items())
        lake.sql(f"ALTER TABLE products SET TBLPROPERTIES ({pairs})")
    lake.sql(FIRST)
    target = "products"
    if mode == "branch":
        lake.sql("ALTER TABLE products CREATE BRANCH dev")
        target = "products.branch_dev"
    past_last_commit(lake, "products")
    if mode == "equality-deletes":
        _upsert_with_equality_deletes(lake)
    else:
        lake.sql(MERGE.format(t=target))
    past_last_commit(lake, "products")
    if mode == "equality-deletes":
        table = lake.table("products").iceberg
        commit_delete_files(table, [equality_delete_file(table, ["product_id"], [("00003",)])])
        lake.loader.forget("default", "products")
    else:
        lake.sql(DELETE.format(t=target))
    if mode == "compacted":
        past_last_commit(lake, "products")
        lake.sql("CALL system.rewrite_data_files(table => 'products', options => map('min-input-files', '1'))")
    return "default." + target


def _upsert_with_equality_deletes(lake: wharf.Lakehouse) -> None:
    """The MERGE as a streaming writer commits it: an equality delete of the key plus the new rows."""
    table = lake.table("products").iceberg
    rows = pa.table({"product_id": ["00001", "00006"], "name": ["desk", "stool"], "price": pa.array([500, 30], pa.int32())})
    added = write_data_files(table, rows)
    commit_delete_files(table, [equality_delete_file(table, ["product_id"], [("00001",)])], added_data=added)
    lake.loader.forget("default", "products")


def rows(lake: wharf.Lakehouse, sql: str) -> list[tuple[Any, ...]]:
    return sorted(lake.sql(sql).fetchall(), key=repr)
